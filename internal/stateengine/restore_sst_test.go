package stateengine

import (
	"bytes"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type chunkOut struct {
	K    string
	V    string
	Tomb bool
}

// chunkModel applies ops to a map in order: the last write of each key
// wins, and a range deletion removes the keys written before it.
func chunkModel(ops []chunkOp) []chunkOut {
	m := map[string]chunkOut{}
	for _, op := range ops {
		switch {
		case op.del:
			for k := range m {
				if k >= string(op.key) && (op.hi == nil || k < string(op.hi)) {
					delete(m, k)
				}
			}
		default:
			m[string(op.key)] = chunkOut{K: string(op.key), V: string(op.value), Tomb: op.value == nil}
		}
	}
	out := make([]chunkOut, 0, len(m))
	for _, o := range m {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].K < out[j].K })
	return out
}

type chunkOp struct {
	del        bool
	key, value []byte
	hi         []byte
}

// decodeChunkOps turns fuzz input into chunk writes: each op is a control
// byte, then length-prefixed keys (and a value).
func decodeChunkOps(b []byte) []chunkOp {
	var ops []chunkOp
	next := func() ([]byte, bool) {
		if len(b) == 0 {
			return nil, false
		}
		n := int(b[0] % 12)
		b = b[1:]
		if n > len(b) {
			n = len(b)
		}
		v := b[:n]
		b = b[n:]
		return v, true
	}
	for len(b) > 0 {
		ctl := b[0]
		b = b[1:]
		k, ok := next()
		if !ok || len(k) == 0 {
			continue
		}
		switch ctl % 5 {
		case 0: // tombstone
			ops = append(ops, chunkOp{key: k})
		case 1: // range deletion
			hi, _ := next()
			if len(hi) > 0 && bytes.Compare(hi, k) <= 0 {
				continue
			}
			ops = append(ops, chunkOp{del: true, key: k, hi: hi})
		default:
			v, _ := next()
			ops = append(ops, chunkOp{key: k, value: append([]byte{}, v...)})
		}
	}
	return ops
}

// FuzzRestoreChunk checks that a chunk's sort, dedup and range-deletion
// filter leave exactly the model's final state, in key order.
func FuzzRestoreChunk(f *testing.F) {
	f.Add([]byte("\x02\x03abc\x01x\x02\x02ab\x01y\x00\x03abc"))
	f.Add([]byte("\x02\x0bcustomer-00\x01a\x02\x0bcustomer-01\x01b\x01\x01c\x02\x0bcustomer-01\x01c"))
	f.Add([]byte("\x02\x01\x00\x01a\x02\x02\x00\x00\x01b\x02\x01\x01\x01c\x01\x01\x00\x01\x01\x02\x02\x00\x00\x01d"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ops := decodeChunkOps(b)
		c := &restoreChunk{}
		for _, op := range ops {
			if op.del {
				c.delRange(op.key, op.hi)
			} else {
				c.set(op.key, op.value)
			}
		}
		c.sortDedup()
		var got []chunkOut
		for i, e := range c.ents {
			if i > 0 && bytes.Compare(c.key(c.ents[i-1]), c.key(e)) >= 0 {
				t.Fatalf("entries out of order or duplicated at %d: %q then %q", i, c.key(c.ents[i-1]), c.key(e))
			}
			if c.deletedLater(e) {
				continue
			}
			got = append(got, chunkOut{K: string(c.key(e)), V: string(c.value(e)), Tomb: e.vlen < 0})
		}
		want := chunkModel(ops)
		if got == nil {
			got = []chunkOut{}
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("chunk (-model +chunk):\n%s", d)
		}
		// Range deletions come out sorted and disjoint.
		sp := c.spans()
		for i := 1; i < len(sp); i++ {
			if sp[i-1].hi == nil || bytes.Compare(sp[i-1].hi, sp[i].lo) >= 0 {
				t.Fatalf("range deletions overlap: %+v then %+v", sp[i-1], sp[i])
			}
		}
	})
}
