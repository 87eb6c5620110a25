package app

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/state"
)

// BenchmarkGlobalGet compares a stream task's read of a global store
// through the locked read-only view with a plain read of the same store:
// the view's lock and value copy are the price of sharing the store with
// the global goroutine.
func BenchmarkGlobalGet(b *testing.B) {
	eng, err := stateengine.Open(stateengine.Options{Dir: "/", FS: vfs.NewMem(), NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	kv, err := eng.OpenKeyValue(context.Background(), state.Spec{Name: "g", Unlogged: true}, -1, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer kv.Close()
	const n = 10_000
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "customer-%05d", i)
		if err := kv.Put(keys[i], []byte("a value of some thirty bytes..")); err != nil {
			b.Fatal(err)
		}
	}
	if err := kv.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	for _, k := range keys { // warm the caches for both peers alike
		if _, err := kv.Get(k); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		s    state.KeyValueStore
	}{
		{"store", kv},
		{"global-view", &globalKV{mu: &sync.Mutex{}, kv: kv}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := c.s.Get(keys[i%n]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
