package stateengine

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
)

// A restore into a Pebble store does not write through batches: the
// memtable inserts and the write-ahead log would cost more than the
// changelog records themselves. The store's writes are buffered in a
// restoreChunk (user keys and values in one arena, no allocation per
// record); at each restore commit the chunk is sorted, the last write of
// every key kept, and the result is written as one SSTable, with the store's
// meta key (its changelog checkpoint) in the same file, and ingested. One
// ingest is atomic, so the data and the checkpoint that describes it become
// visible, and durable, together: a crash mid-restore leaves the store at
// the previous chunk's checkpoint, with exactly the data it describes.

// restoreChunk buffers a restore's writes to one store between commits.
type restoreChunk struct {
	// arena holds every entry's user key followed by its value.
	arena []byte
	// ents are the writes in the order they were made (seq).
	ents []chunkEnt
	// dels are range deletions (retention of window and session stores).
	dels []chunkDel
	// tmp is the radix sort's scratch space.
	tmp []chunkEnt
}

type chunkEnt struct {
	// pfx is 8 bytes of the key after the prefix all keys of the chunk
	// share, big-endian, zero-padded: keys with different pfx compare as
	// their pfx do, so the sort seldom reads the arena. Set by sortDedup.
	pfx  uint64
	off  uint32 // key at arena[off:off+klen], value right after it
	klen uint32
	vlen int32 // -1: a tombstone
	seq  uint32
}

// chunkDel deletes the user keys in [lo, hi) (hi nil: to the store's end)
// that were written before it (entries with seq < its seq) or before the
// chunk.
type chunkDel struct {
	lo, hi []byte
	seq    uint32
}

// chunkEntBytes is what one entry costs beyond its key and value.
const chunkEntBytes = 24

func (c *restoreChunk) size() int { return len(c.arena) + chunkEntBytes*len(c.ents) }

func (c *restoreChunk) empty() bool { return len(c.ents) == 0 && len(c.dels) == 0 }

// needsKeySort reports whether entries with one pfx differ in their keys:
// keys no longer than the shared prefix plus 8 bytes are equal when their
// pfx and length are.
func (c *restoreChunk) needsKeySort(run []chunkEnt, skip int) bool {
	for _, e := range run {
		if int(e.klen) > skip+8 || e.klen != run[0].klen {
			return true
		}
	}
	return false
}

// radixSort sorts the entries by pfx, stably (so equal pfx stay in write
// order): a least-significant-digit radix sort over the pfx bytes, skipping
// the bytes every entry has alike.
func (c *restoreChunk) radixSort() {
	if cap(c.tmp) < len(c.ents) {
		c.tmp = make([]chunkEnt, len(c.ents))
	}
	src, dst := c.ents, c.tmp[:len(c.ents)]
	for shift := uint(0); shift < 64; shift += 8 {
		var count [256]int
		for i := range src {
			count[byte(src[i].pfx>>shift)]++
		}
		if count[byte(src[0].pfx>>shift)] == len(src) {
			continue // every entry has this byte alike
		}
		pos := 0
		for b := range count {
			n := count[b]
			count[b] = pos
			pos += n
		}
		for i := range src {
			b := byte(src[i].pfx >> shift)
			dst[count[b]] = src[i]
			count[b]++
		}
		src, dst = dst, src
	}
	if &src[0] != &c.ents[0] {
		copy(c.ents, src)
	}
}

func (c *restoreChunk) reset() {
	c.arena, c.ents, c.dels = c.arena[:0], c.ents[:0], c.dels[:0]
}

func (c *restoreChunk) set(key, value []byte) {
	vlen := int32(len(value))
	if value == nil {
		vlen = -1
	}
	c.ents = append(c.ents, chunkEnt{off: uint32(len(c.arena)), klen: uint32(len(key)), vlen: vlen, seq: uint32(len(c.ents))})
	c.arena = append(append(c.arena, key...), value...)
}

func (c *restoreChunk) delRange(lo, hi []byte) {
	c.dels = append(c.dels, chunkDel{lo: bytes.Clone(lo), hi: bytes.Clone(hi), seq: uint32(len(c.ents))})
}

func (c *restoreChunk) key(e chunkEnt) []byte { return c.arena[e.off : e.off+e.klen] }

func (c *restoreChunk) value(e chunkEnt) []byte {
	if e.vlen < 0 {
		return nil
	}
	s := e.off + e.klen
	return c.arena[s : s+uint32(e.vlen)]
}

// deletedLater reports whether a range deletion made after e covers e.
func (c *restoreChunk) deletedLater(e chunkEnt) bool {
	k := c.key(e)
	for _, d := range c.dels {
		if d.seq > e.seq && bytes.Compare(k, d.lo) >= 0 && (d.hi == nil || bytes.Compare(k, d.hi) < 0) {
			return true
		}
	}
	return false
}

// sortDedup sorts the entries by key, keeping only the last write of each.
func (c *restoreChunk) sortDedup() {
	if len(c.ents) == 0 {
		return
	}
	// Keys of one store often share a long prefix (a key schema, a window
	// segment); the cached pfx starts after it.
	lcp := c.key(c.ents[0])
	for _, e := range c.ents[1:] {
		k := c.key(e)
		n := min(len(lcp), len(k))
		i := 0
		for i < n && lcp[i] == k[i] {
			i++
		}
		lcp = lcp[:i]
	}
	skip := len(lcp)
	for i := range c.ents {
		e := &c.ents[i]
		var b [8]byte
		copy(b[:], c.key(*e)[skip:])
		e.pfx = binary.BigEndian.Uint64(b[:])
	}
	c.radixSort()
	// Entries with equal pfx may still differ further on; the radix sort
	// kept them in write order, and a stable sort by key keeps it too.
	for i := 0; i < len(c.ents); {
		j := i + 1
		for j < len(c.ents) && c.ents[j].pfx == c.ents[i].pfx {
			j++
		}
		if j-i > 1 && c.needsKeySort(c.ents[i:j], skip) {
			slices.SortStableFunc(c.ents[i:j], func(a, b chunkEnt) int {
				return bytes.Compare(c.key(a)[skip:], c.key(b)[skip:])
			})
		}
		i = j
	}
	out := c.ents[:0]
	for i, e := range c.ents {
		if i+1 < len(c.ents) && bytes.Equal(c.key(e), c.key(c.ents[i+1])) {
			continue // a later write of the same key wins
		}
		out = append(out, e)
	}
	c.ents = out
}

// spans returns the union of the chunk's range deletions as sorted,
// disjoint spans (hi nil: to the store's end).
func (c *restoreChunk) spans() []chunkDel {
	ds := slices.Clone(c.dels)
	slices.SortFunc(ds, func(a, b chunkDel) int { return bytes.Compare(a.lo, b.lo) })
	var out []chunkDel
	for _, d := range ds {
		if n := len(out); n > 0 && (out[n-1].hi == nil || bytes.Compare(d.lo, out[n-1].hi) <= 0) {
			if out[n-1].hi != nil && (d.hi == nil || bytes.Compare(d.hi, out[n-1].hi) > 0) {
				out[n-1].hi = d.hi
			}
			continue
		}
		out = append(out, d)
	}
	return out
}

// ingestChunk writes the chunk and m as one SSTable and ingests it, then
// empties the chunk.
func (p *pebbleBackend) ingestChunk(ctx context.Context, m meta) error {
	c := p.chunk
	c.sortDedup()
	path := p.sst.fs.PathJoin(p.sst.dir, fmt.Sprintf("%08x-%d.sst", p.id, p.sst.seq.Add(1)))
	f, err := p.sst.fs.Create(path, "")
	if err != nil {
		return fmt.Errorf("state: restore: create %s: %w", path, err)
	}
	defer func() { _ = p.sst.fs.Remove(path) }()
	w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), p.sst.wopts)
	if err := p.writeChunk(w, m); err != nil {
		_ = w.Close()
		return fmt.Errorf("state: restore: write %s: %w", path, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("state: restore: write %s: %w", path, err)
	}
	if err := p.db.Ingest(ctx, []string{path}); err != nil {
		return fmt.Errorf("state: restore: ingest %s: %w", path, err)
	}
	c.reset()
	return nil
}

func (p *pebbleBackend) writeChunk(w *sstable.Writer, m meta) error {
	c := p.chunk
	// The meta key is the store's bare prefix: it sorts before every data
	// key, and the range deletions (which start at a non-empty user key)
	// never cover it.
	if err := w.Set(p.prefix, m.encode()); err != nil {
		return err
	}
	key := slices.Clone(p.prefix)
	for _, e := range c.ents {
		if len(c.dels) > 0 && c.deletedLater(e) {
			continue
		}
		key = append(key[:len(p.prefix)], c.key(e)...)
		var err error
		if e.vlen < 0 {
			err = w.Delete(key)
		} else {
			err = w.Set(key, c.value(e))
		}
		if err != nil {
			return err
		}
	}
	for _, d := range c.spans() {
		hi := p.end
		if d.hi != nil {
			hi = append(slices.Clone(p.prefix), d.hi...)
		}
		if err := w.DeleteRange(append(slices.Clone(p.prefix), d.lo...), hi); err != nil {
			return err
		}
	}
	return nil
}
