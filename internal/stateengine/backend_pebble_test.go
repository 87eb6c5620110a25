package stateengine

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"
)

// The Pebble backend, which keeps range deletions out of its batch until a
// commit or a write into a deleted range, reads exactly as a map model
// (modelBackend, which applies every write at once) under a seeded random
// mix of sets, deletes, range deletions, reads, scans and commits.
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
	mb := newModelBackend()
	key := func() []byte { return fmt.Appendf(nil, "k%02d", rng.IntN(30)) }
	scan := func(b backend, reverse bool) []string {
		t.Helper()
		return scanRange(t, b, nil, nil, reverse)
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
			// Whole, bounded and nested scans: the backend reuses an
			// idle iterator with new bounds, never one still open.
			reverse := rng.IntN(2) == 0
			var lo, hi []byte
			if rng.IntN(2) == 0 {
				lo, hi = key(), key()
			}
			if rng.IntN(4) == 0 {
				if d := cmp.Diff(nestedScan(t, mb, lo, hi, reverse), nestedScan(t, pb, lo, hi, reverse)); d != "" {
					t.Fatalf("step %d: nested scan [%s, %s) (reverse %v) (-want +got):\n%s", step, lo, hi, reverse, d)
				}
			} else if d := cmp.Diff(scanRange(t, mb, lo, hi, reverse), scanRange(t, pb, lo, hi, reverse)); d != "" {
				t.Fatalf("step %d: scan [%s, %s) (reverse %v) (-want +got):\n%s", step, lo, hi, reverse, d)
			}
		default:
			// An iterator open across the commit sees the store as
			// before it; closed after, it must not serve later reads.
			held, err := pb.iter(nil, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			if err := pb.commit(zeroMeta); err != nil {
				t.Fatal(err)
			}
			if err := held.close(); err != nil {
				t.Fatal(err)
			}
			if rng.IntN(2) == 0 { // the neighbour commits too: nothing of it shows
				if err := other.set(fmt.Appendf(nil, "n%d", step), []byte("x")); err != nil {
					t.Fatal(err)
				}
				if err := other.commit(zeroMeta); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := pb.commit(zeroMeta); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(scan(mb, false), scan(pb, false)); d != "" {
		t.Fatalf("after commit (-want +got):\n%s", d)
	}
	if d := cmp.Diff("k05=neighbour", scan(other, false)[0]); d != "" {
		t.Fatalf("neighbour store (-want +got):\n%s", d)
	}
}

// scanRange reads b's keys in [lo, hi) (nil: unbounded) as key=value.
func scanRange(t *testing.T, b backend, lo, hi []byte, reverse bool) []string {
	t.Helper()
	it, err := b.iter(lo, hi, reverse)
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

// nestedScan reads [lo, hi) of b as scanRange does, reading the whole
// store with a second iterator after the first key of the first, and
// returns both, one after the other.
func nestedScan(t *testing.T, b backend, lo, hi []byte, reverse bool) []string {
	t.Helper()
	it, err := b.iter(lo, hi, reverse)
	if err != nil {
		t.Fatal(err)
	}
	var out, inner []string
	for n := 0; it.next(); n++ {
		out = append(out, string(it.key())+"="+string(it.value()))
		if n == 0 {
			inner = scanRange(t, b, nil, nil, !reverse)
		}
	}
	if err := it.close(); err != nil {
		t.Fatal(err)
	}
	return append(append(out, "--"), inner...)
}

// abcBackend returns a backend over a new Pebble database opened with
// opts, with keys a, b and c set to "v" in its batch.
func abcBackend(t *testing.T, opts *pebble.Options) *pebbleBackend {
	t.Helper()
	db, err := pebble.Open("/db", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	pb := newPebbleBackend(db, nil, 1, true, nil)
	for _, k := range []string{"a", "b", "c"} {
		if err := pb.set([]byte(k), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	return pb
}

// An iterator the backend may keep for reuse must see the store as a new
// one would: one held open across a commit that changed the store (here a
// pending range deletion, the batch otherwise empty) is not reused.
func TestPebbleBackendIteratorAcrossCommit(t *testing.T) {
	pb := abcBackend(t, &pebble.Options{FS: vfs.NewMem()})
	if err := pb.commit(zeroMeta); err != nil {
		t.Fatal(err)
	}
	if err := pb.delRange([]byte("a"), []byte("c")); err != nil {
		t.Fatal(err)
	}
	held, err := pb.iter(nil, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := pb.commit(zeroMeta); err != nil {
		t.Fatal(err)
	}
	if err := held.close(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if d := cmp.Diff([]string{"c=v"}, scanRange(t, pb, nil, nil, false)); d != "" {
			t.Fatalf("scan %d after the commit (-want +got):\n%s", i, d)
		}
	}
}

// Pebble commits a batch of half a memtable or more as a flushable batch
// and clears its data; an iterator open on the batch across such a commit
// must go on reading what it saw (here it panicked in the batch's
// skiplist).
func TestPebbleBackendIteratorAcrossLargeCommit(t *testing.T) {
	pb := abcBackend(t, &pebble.Options{FS: vfs.NewMem(), MemTableSize: 1 << 20})
	it, err := pb.iter(nil, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for it.next() {
		got = append(got, string(it.key()))
		if len(got) == 1 {
			if err := pb.set([]byte("big"), make([]byte, 1<<20)); err != nil {
				t.Fatal(err)
			}
			if err := pb.commit(zeroMeta); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := it.close(); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"a", "b", "c"}, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"a=v", "b=v", "big=" + string(make([]byte, 1<<20)), "c=v"}, scanRange(t, pb, nil, nil, false)); d != "" {
		t.Fatal("scan after the commit differs")
	}
}
