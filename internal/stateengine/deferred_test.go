package stateengine_test

import (
	"context"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"

	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/state/statetest"
)

// txnChangelog is a transactional changelog: records of an aborted flush
// stay in the log (they have offsets) but a read skips them, as a
// read_committed consumer skips an aborted transaction.
type txnChangelog struct {
	*statetest.Changelog
	aborted map[state.Offset]bool
}

func (c *txnChangelog) Transactional() bool { return true }

// abortSince marks every record from off on as aborted.
func (c *txnChangelog) abortSince(off state.Offset) {
	for _, r := range c.Records() {
		if r.Offset >= off {
			c.aborted[r.Offset] = true
		}
	}
}

func (c *txnChangelog) Read(ctx context.Context, from, to state.Offset, fn func([]state.ChangelogRecord) error) error {
	return c.Changelog.Read(ctx, from, to, func(b []state.ChangelogRecord) error {
		var keep []state.ChangelogRecord
		for _, r := range b {
			if !c.aborted[r.Offset] {
				keep = append(keep, r)
			}
		}
		if len(keep) == 0 {
			return nil
		}
		return fn(keep)
	})
}

// TestDeferredCommit: a store whose changelog is transactional writes
// nothing to Pebble on Flush; Persist (the transaction committed) does.
// Closed after an aborted transaction, it reopens with the state of the
// last committed one; after a crash between the commit and Persist, the
// restore replays the committed records.
func TestDeferredCommit(t *testing.T) {
	for _, im := range []impl{{name: "pebble"}, {name: "pebble-cached", cached: true}} {
		t.Run(im.name, func(t *testing.T) {
			ctx := context.Background()
			fs := vfs.NewMem()
			cl := &txnChangelog{Changelog: statetest.NewChangelog("c", 0), aborted: map[state.Offset]bool{}}
			var e *stateengine.Engine
			open := func() state.KeyValueStore {
				t.Helper()
				e = testEngine(t, fs)
				s, err := e.OpenKeyValue(ctx, im.spec("kv", state.KindKeyValue), 0, cl)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := stateengine.Restore(ctx, s, cl); err != nil {
					t.Fatal(err)
				}
				if im.cached {
					if s, err = e.NewCache().KeyValue(s, nil); err != nil {
						t.Fatal(err)
					}
				}
				return s
			}
			reopen := func(s state.KeyValueStore) state.KeyValueStore {
				t.Helper()
				_ = s.Close()
				if err := e.Close(); err != nil {
					t.Fatal(err)
				}
				return open()
			}
			put := func(s state.KeyValueStore, k, v string) {
				t.Helper()
				if err := s.Put([]byte(k), []byte(v)); err != nil {
					t.Fatal(err)
				}
			}
			check := func(s state.KeyValueStore, want []kvPair, wantCheckpoint state.Offset) {
				t.Helper()
				got := drainKV(t)(s.All(false))
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("store (-want +got):\n%s", d)
				}
				cp, err := stateengine.Checkpoint(s)
				if err != nil {
					t.Fatal(err)
				}
				if cp != wantCheckpoint {
					t.Errorf("checkpoint %d, want %d", cp, wantCheckpoint)
				}
			}

			s := open()
			put(s, "a", "1")
			if err := s.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			cp, _ := stateengine.Checkpoint(s)
			if cp != state.NoOffset && cp != 0 {
				t.Fatalf("checkpoint %d after a Flush without Persist: Flush committed", cp)
			}
			if err := stateengine.Persist(s); err != nil {
				t.Fatal(err)
			}
			check(s, []kvPair{{"a", "1"}}, 1)

			// A transaction that aborts: its changelog records are
			// skipped by reads, the store is closed without Persist.
			put(s, "a", "2")
			put(s, "b", "1")
			if err := s.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			cl.abortSince(1)
			s = reopen(s)
			// The restore read past the aborted records.
			check(s, []kvPair{{"a", "1"}}, 3)

			// A transaction that commits, then a crash before Persist:
			// the restore replays its records from the checkpoint.
			put(s, "c", "1")
			if err := s.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			s = reopen(s)
			check(s, []kvPair{{"a", "1"}, {"c", "1"}}, 4)
			_ = s.Close()
		})
	}
}
