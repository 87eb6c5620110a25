package stateengine_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/state/statetest"
)

// TestTasksInParallel runs several tasks at once on one engine, each with
// its own cached stores of every kind, as the runtime's workers do; the race
// detector checks the shared parts (the Pebble database, the budget
// counters, the read cache, the engine's store map).
func TestTasksInParallel(t *testing.T) {
	ctx := context.Background()
	e := testEngine(t, nil)
	const tasks = 6
	var wg sync.WaitGroup
	errs := make(chan error, tasks)
	for p := range int32(tasks) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- runTask(ctx, e, p)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func runTask(ctx context.Context, e *stateengine.Engine, p int32) error {
	c := e.NewCache()
	kvRaw, err := e.OpenKeyValue(ctx, state.Spec{Name: "counts", ReadCache: p%2 == 0}, p, statetest.NewChangelog("counts", p))
	if err != nil {
		return err
	}
	kv, err := c.KeyValue(kvRaw, nil)
	if err != nil {
		return err
	}
	defer kv.Close()
	wRaw, err := e.OpenWindow(ctx, state.Spec{Name: "win"}, p, statetest.NewChangelog("win", p))
	if err != nil {
		return err
	}
	w, err := c.Window(wRaw, nil)
	if err != nil {
		return err
	}
	defer w.Close()
	sRaw, err := e.OpenSession(ctx, state.Spec{Name: "sess", InMemory: true}, p, statetest.NewChangelog("sess", p))
	if err != nil {
		return err
	}
	s, err := c.Session(sRaw, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	for i := range 2000 {
		k := []byte(fmt.Sprintf("k%d", i%50))
		if err := kv.Put(k, []byte(fmt.Sprint(i))); err != nil {
			return err
		}
		if _, err := kv.Get(k); err != nil {
			return err
		}
		if err := w.Put(k, int64(i/100)*1000, []byte("w")); err != nil {
			return err
		}
		if err := s.Put(k, int64(i), int64(i+5), []byte("s")); err != nil {
			return err
		}
		if i%300 == 0 {
			for _, st := range []state.Store{kv, w, s} {
				if err := st.Flush(ctx); err != nil {
					return err
				}
			}
		}
	}
	for _, st := range []state.Store{kv, w, s} {
		if err := st.Flush(ctx); err != nil {
			return err
		}
	}
	got, err := kv.Get([]byte("k49"))
	if err != nil || string(got) != "1999" {
		return fmt.Errorf("task %d: k49 = %q, %v", p, got, err)
	}
	return nil
}

func TestTypedKeyValue(t *testing.T) {
	e := testEngine(t, nil)
	raw, err := e.OpenKeyValue(context.Background(), state.Spec{Name: "orders"}, 0, statetest.NewChangelog("c", 0))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	type order struct{ Amount int64 }
	typed := state.NewTypedKeyValue(raw, serde.String(), state.Timestamped(serde.Msgpack[order]()))
	if err := typed.Put("o1", state.ValueAndTimestamp[order]{Value: order{5}, Timestamp: 99}); err != nil {
		t.Fatal(err)
	}
	v, ok, err := typed.Get("o1")
	if err != nil || !ok {
		t.Fatalf("get: %v %v", ok, err)
	}
	if d := cmp.Diff(state.ValueAndTimestamp[order]{Value: order{5}, Timestamp: 99}, v); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	if _, ok, _ := typed.Get("absent"); ok {
		t.Fatal("absent key found")
	}
	// A value that does not decode names the store and the key.
	if err := raw.Put([]byte("bad"), []byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	_, _, err = typed.Get("bad")
	if !serde.IsDecode(err) || !strings.Contains(err.Error(), `"orders"`) || !strings.Contains(err.Error(), `"bad"`) {
		t.Fatalf("decode error %v does not name store and key", err)
	}
	var keys []string
	if err := typed.Each(false, func(k string, v state.ValueAndTimestamp[order]) bool { keys = append(keys, k); return true }); err == nil {
		t.Fatalf("Each over a bad value succeeded: %v", keys)
	}
}
