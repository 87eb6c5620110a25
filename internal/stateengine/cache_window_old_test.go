package stateengine_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/state/statetest"
)

// The old value a cached window store's flush reports is the value the
// store held before the flush, also when the flush skips reading it (keys
// of windows newer than anything stored) and when other keys of the same
// window start were written earlier in the same flush. A seeded random
// run against a map of what each flush wrote.
func TestCacheWindowFlushOldValues(t *testing.T) {
	for _, inMem := range []bool{false, true} {
		t.Run(fmt.Sprintf("inMemory=%v", inMem), func(t *testing.T) {
			seed := testSeed(t)
			rng := rand.New(rand.NewPCG(seed, 7))
			ctx := context.Background()
			e := testEngine(t, nil)
			spec := state.Spec{Name: "w", InMemory: inMem, Retention: 10 * time.Minute, WindowSize: time.Minute}
			raw, err := e.OpenWindow(ctx, spec, 0, statetest.NewChangelog("w", 0))
			if err != nil {
				t.Fatal(err)
			}
			type wk struct {
				K     string
				Start int64
			}
			type report struct {
				K        string
				Start    int64
				New, Old uint64
				OldNil   bool
			}
			stored := map[wk]uint64{} // what the store holds after each flush
			var got []report
			s, err := e.NewCache().Window(raw, func(k []byte, start int64, nv, ov []byte) error {
				got = append(got, report{string(k), start, u64(nv), u64(ov), ov == nil})
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			now := int64(0) // minutes of event time; advances slowly, never past retention
			for round := range 30 {
				written := map[wk]uint64{}
				var order []wk
				for range 1 + rng.IntN(40) {
					if rng.IntN(4) == 0 && now < 8 {
						now++
					}
					k := wk{fmt.Sprintf("k%d", rng.IntN(6)), (now - int64(rng.IntN(3))) * 60_000}
					if k.Start < 0 {
						k.Start = 0
					}
					v, err := s.Get([]byte(k.K), k.Start)
					if err != nil {
						t.Fatal(err)
					}
					n := u64(v) + 1
					if err := s.Put([]byte(k.K), k.Start, binary.BigEndian.AppendUint64(nil, n)); err != nil {
						t.Fatal(err)
					}
					if _, ok := written[k]; ok {
						for i, o := range order {
							if o == k {
								order = append(order[:i], order[i+1:]...)
								break
							}
						}
					}
					order = append(order, k)
					written[k] = n
				}
				var want []report
				for _, k := range order {
					old, had := stored[k]
					want = append(want, report{k.K, k.Start, written[k], old, !had})
					stored[k] = written[k]
				}
				got = got[:0]
				if err := s.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(want, got); d != "" {
					t.Fatalf("round %d, flush reports (-want +got):\n%s", round, d)
				}
			}
		})
	}
}
