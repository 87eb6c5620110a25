package exec

import (
	"testing"

	"github.com/weir-dev/weir/streams"
)

// TestQueueThatNeverDrainsKeepsItsArray feeds a partition queue the way a
// join's input is fed (records added while earlier ones wait, the queue
// never empty) and checks that records come out in the order they went in,
// that the array stops growing once it holds what is live, and that the
// processed records' slots are cleared when the live ones move to the front.
func TestQueueThatNeverDrainsKeepsItsArray(t *testing.T) {
	q := &partitionQueue{}
	task := &Task{}
	var next, want streams.Offset
	add := func(n int) {
		task.room(q, n)
		for range n {
			q.recs = append(q.recs, streams.RawRecord{Offset: next, Key: []byte("k")})
			next++
		}
	}
	take := func(n int) {
		for range n {
			if q.head == len(q.recs) {
				t.Fatalf("queue empty, want offset %d", want)
			}
			if got := q.recs[q.head].Offset; got != want {
				t.Fatalf("took offset %d, want %d", got, want)
			}
			q.head++
			want++
		}
	}
	add(100)
	maxCap := 0
	for round := range 2000 {
		add(10 + round%7)
		take(10 + round%7)
		if round > 100 {
			maxCap = max(maxCap, cap(q.recs))
		}
	}
	take(100)
	if q.head != len(q.recs) {
		t.Fatalf("%d records left", len(q.recs)-q.head)
	}
	// At most 100 + 16 records are live: the array stays within a few
	// doublings of that.
	if maxCap > 512 {
		t.Fatalf("array grew to %d records for at most 116 live", maxCap)
	}
	for i, r := range q.recs[len(q.recs):cap(q.recs)] {
		if r.Key != nil {
			t.Fatalf("slot %d past the end still holds a record's key", len(q.recs)+i)
		}
	}
}
