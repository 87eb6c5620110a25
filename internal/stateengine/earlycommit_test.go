package stateengine_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/state"
)

// unackedChangelog takes appends that are never acknowledged: Flush waits
// until its context ends, as a producer that cannot reach the broker makes
// a changelog writer wait. It keeps the contexts Flush was given.
type unackedChangelog struct {
	next  state.Offset
	flush chan context.Context
}

func (c *unackedChangelog) Append(key, value []byte) error { c.next++; return nil }
func (c *unackedChangelog) Flush(ctx context.Context) (state.Offset, error) {
	c.flush <- ctx
	<-ctx.Done()
	return state.NoOffset, ctx.Err()
}

type earlyKey struct{}

// TestEarlyCommitUsesOwnersContext: a store whose uncommitted batch passes
// its share of the memory budget commits early, and the changelog flush
// that commit makes gets the context Options.EarlyCommitContext returns,
// not one that never ends: with the acknowledgements never coming, the
// write returns once that context ends (before the fix it waited for ever).
func TestEarlyCommitUsesOwnersContext(t *testing.T) {
	attempt, cancel := context.WithCancel(context.WithValue(context.Background(), earlyKey{}, "attempt"))
	defer cancel()
	e, err := stateengine.Open(stateengine.Options{Dir: "/", FS: vfs.NewMem(), MemoryBudget: stateengine.MinMemoryBudget,
		NoSync: true, Logger: quietLogger(), EarlyCommitContext: func() context.Context { return attempt }})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	cl := &unackedChangelog{flush: make(chan context.Context, 1)}
	s, err := e.OpenKeyValue(context.Background(), state.Spec{Name: "agg"}, 0, cl)
	if err != nil {
		t.Fatal(err)
	}
	// The batches' share of the minimum budget is 1.6 MiB: 8 MiB of
	// writes pass it many times over.
	written := make(chan error, 1)
	go func() {
		v := make([]byte, 1<<10)
		for i := range 8 << 10 {
			if err := s.Put([]byte(fmt.Sprintf("k%06d", i)), v); err != nil {
				written <- err
				return
			}
		}
		written <- nil
	}()
	var got context.Context
	select {
	case got = <-cl.flush:
	case err := <-written:
		t.Fatalf("8 MiB written without an early commit (err %v)", err)
	case <-time.After(time.Minute):
		t.Fatal("no early commit within a minute")
	}
	if got.Value(earlyKey{}) != "attempt" {
		t.Fatalf("early commit flushed the changelog with %v, not the owner's context", got)
	}
	cancel() // the attempt ends: the write that committed early must return
	select {
	case err := <-written:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("write during an early commit: got %v, want the attempt's context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the write is still waiting a minute after its owner's context ended")
	}
}
