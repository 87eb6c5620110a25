package state

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"
)

// The Pebble backend, which keeps range deletions out of its batch until a
// commit or a write into a deleted range, reads exactly as the in-memory
// backend (which applies every write at once) under a seeded random mix of
// sets, deletes, range deletions, reads, scans and commits.
func TestPebbleBackendMatchesMemory(t *testing.T) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 11))
	db, err := pebble.Open("/db", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	pb := newPebbleBackend(db, nil, 1, true, nil)
	other := newPebbleBackend(db, nil, 2, true, nil) // a neighbour whose keys must survive
	if err := other.set([]byte("k05"), []byte("neighbour")); err != nil {
		t.Fatal(err)
	}
	if err := other.commit(zeroMeta); err != nil {
		t.Fatal(err)
	}
	mb := newMemBackend()
	key := func() []byte { return fmt.Appendf(nil, "k%02d", rng.IntN(30)) }
	scan := func(b backend, reverse bool) []string {
		t.Helper()
		it, err := b.iter(nil, nil, reverse)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for it.next() {
			out = append(out, string(it.key())+"="+string(it.value()))
		}
		if err := it.close(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for step := range 3000 {
		switch op := rng.IntN(10); {
		case op < 4:
			k, v := key(), fmt.Appendf(nil, "v%d", step)
			if err := pb.set(k, v); err != nil {
				t.Fatal(err)
			}
			_ = mb.set(k, v)
		case op < 5:
			k := key()
			if err := pb.del(k); err != nil {
				t.Fatal(err)
			}
			_ = mb.del(k)
		case op < 6:
			var from []byte
			if rng.IntN(2) == 0 {
				from = key()
			}
			to := key()
			if err := pb.delRange(from, to); err != nil {
				t.Fatal(err)
			}
			_ = mb.delRange(from, to)
		case op < 8:
			k := key()
			pv, err := pb.get(k)
			if err != nil {
				t.Fatal(err)
			}
			mv, _ := mb.get(k)
			if string(pv) != string(mv) || (pv == nil) != (mv == nil) {
				t.Fatalf("step %d: get %s = %q, want %q", step, k, pv, mv)
			}
		case op < 9:
			reverse := rng.IntN(2) == 0
			if d := cmp.Diff(scan(mb, reverse), scan(pb, reverse)); d != "" {
				t.Fatalf("step %d: scan (reverse %v) (-want +got):\n%s", step, reverse, d)
			}
		default:
			if err := pb.commit(zeroMeta); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := pb.commit(zeroMeta); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(scan(mb, false), scan(pb, false)); d != "" {
		t.Fatalf("after commit (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"k05=neighbour"}, scan(other, false)); d != "" {
		t.Fatalf("neighbour store (-want +got):\n%s", d)
	}
}
