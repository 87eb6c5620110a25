package dsl

import (
	"strconv"
	"testing"
	"time"
)

// The pending table returns each key's latest record once, and sweeps the
// slots of keys no longer updated so it does not grow with every key ever
// seen.
func TestPendingTableTakesLatestOnceAndSweeps(t *testing.T) {
	pt := newPendingTable[string]()
	kb := func(i int) []byte { return []byte("k" + strconv.Itoa(i)) }
	for round := 0; round < 50; round++ {
		// 1,000 new keys a round (windows moving on), each put twice.
		for i := round * 1000; i < (round+1)*1000; i++ {
			pt.put(kb(i), int64(round), 0, "old", time.UnixMilli(1), nil)
			pt.put(kb(i), int64(round), 0, strconv.Itoa(i), time.UnixMilli(int64(i)), nil)
		}
		for i := round * 1000; i < (round+1)*1000; i++ {
			pr, ok := pt.take(kb(i), int64(round), 0)
			if !ok || pr.key != strconv.Itoa(i) || pr.ts.UnixMilli() != int64(i) {
				t.Fatalf("round %d key %d: take = %+v, %v; want the latest put", round, i, pr, ok)
			}
			if _, ok := pt.take(kb(i), int64(round), 0); ok {
				t.Fatalf("round %d key %d: taken twice", round, i)
			}
		}
		if _, ok := pt.take(kb(round*1000), int64(round+1), 0); ok {
			t.Fatalf("round %d: took a window never put", round)
		}
	}
	if n := len(pt.m); n > 5000 {
		t.Fatalf("pending table holds %d slots after 50 rounds of 1,000 keys; want the old ones swept", n)
	}
}

// Slots whose result never came back (never taken) are swept too.
func TestPendingTableSweepsAbandonedSlots(t *testing.T) {
	pt := newPendingTable[string]()
	for i := 0; i < 100_000; i++ {
		pt.put([]byte("k"+strconv.Itoa(i)), 0, 0, "", time.UnixMilli(0), nil)
	}
	// Unused slots go two sweeps after their last put, so the table stays
	// within a few times the keys put in the latest sweep periods.
	if n := len(pt.m); n >= 100_000 {
		t.Fatalf("%d slots held after 100,000 puts never taken; want the abandoned ones swept", n)
	}
}
