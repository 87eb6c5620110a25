package state

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// sstEnv is what restores need to build SSTables for ingestion: a
// directory on the database's filesystem and the writer options the
// database accepts.
type sstEnv struct {
	fs    vfs.FS
	dir   string
	wopts sstable.WriterOptions
	// seq numbers the files, so concurrent restores never collide.
	seq atomic.Uint64
	// chunkBytes is what a restore buffers between commits.
	chunkBytes int
	// chunks recycles restore buffers between restores.
	chunks sync.Pool
}

func (s *sstEnv) getChunk() *restoreChunk {
	if c, ok := s.chunks.Get().(*restoreChunk); ok {
		return c
	}
	// Room for a full chunk and one more changelog batch, so the buffers
	// seldom regrow; entries are sized for ~100-byte records.
	n := s.chunkBytes + s.chunkBytes/4
	return &restoreChunk{arena: make([]byte, 0, n), ents: make([]chunkEnt, 0, n/128)}
}

func (s *sstEnv) putChunk(c *restoreChunk) {
	c.reset()
	s.chunks.Put(c)
}

// pebbleBackend keeps one store in the engine's shared Pebble database,
// under its own key prefix (see docs/ARCHITECTURE.md (state part) for the layout).
// Writes go into an indexed batch, which reads see, until commit writes the
// batch and the meta key together. The meta key is the bare prefix (an
// empty user key, which no store writes), so a store's data and meta form
// one key range. During a restore (bulk mode) writes go to a restoreChunk
// instead, which commit ingests as one SSTable (see restore_sst.go).
type pebbleBackend struct {
	db  *pebble.DB
	id  uint32
	sst *sstEnv
	// wo is the write option of commits: pebble.Sync unless Options.NoSync.
	wo      *pebble.WriteOptions
	prefix  []byte // dataPrefix + store id
	end     []byte // first key after the prefix
	metaKey []byte
	// b holds the writes since the last commit; nil when there are none.
	b *pebble.Batch
	// bulkMode: writes go to chunk (restore), no reads until commit.
	bulkMode bool
	chunk    *restoreChunk
	// batchIters counts open iterators reading b. While there are any, b is
	// never closed (Pebble would recycle its memory under them): a commit
	// or discard then leaves the old batch to the garbage collector.
	batchIters int
	kbuf       []byte
	kbuf2      []byte
}

func newPebbleBackend(db *pebble.DB, sst *sstEnv, id uint32, noSync bool) *pebbleBackend {
	p := &pebbleBackend{db: db, sst: sst, id: id, prefix: dataKeyPrefix(id), wo: pebble.Sync}
	p.metaKey = p.prefix
	if noSync {
		p.wo = pebble.NoSync
	}
	p.end = dataKeyPrefix(id + 1)
	return p
}

func (p *pebbleBackend) full(key []byte) []byte {
	p.kbuf = append(append(p.kbuf[:0], p.prefix...), key...)
	return p.kbuf
}

// lowerKey returns the full key of a lower bound: the first data key when
// lower is empty, so the meta key (the bare prefix) is never included.
func (p *pebbleBackend) lowerKey(dst, lower []byte) []byte {
	dst = append(append(dst[:0], p.prefix...), lower...)
	if len(lower) == 0 {
		dst = append(dst, 0)
	}
	return dst
}

func (p *pebbleBackend) batch() *pebble.Batch {
	if p.b == nil {
		p.b = p.db.NewIndexedBatch()
	}
	return p.b
}

func (p *pebbleBackend) get(key []byte) ([]byte, error) {
	if p.bulkMode {
		return nil, errors.New("state: internal error: read during restore")
	}
	var (
		v   []byte
		c   interface{ Close() error }
		err error
	)
	if p.b != nil {
		v, c, err = p.b.Get(p.full(key))
	} else {
		v, c, err = p.db.Get(p.full(key))
	}
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: pebble get: %w", err)
	}
	out := append(make([]byte, 0, len(v)), v...)
	return out, c.Close()
}

func (p *pebbleBackend) set(key, value []byte) error {
	if p.bulkMode {
		p.chunk.set(key, value)
		return nil
	}
	return p.batch().Set(p.full(key), value, nil)
}

func (p *pebbleBackend) del(key []byte) error {
	if p.bulkMode {
		p.chunk.set(key, nil)
		return nil
	}
	return p.batch().Delete(p.full(key), nil)
}

func (p *pebbleBackend) delRange(from, to []byte) error {
	if p.bulkMode {
		if len(from) == 0 {
			from = []byte{0}
		}
		p.chunk.delRange(from, to)
		return nil
	}
	lo := p.lowerKey(p.kbuf2, from)
	p.kbuf2 = lo
	hi := p.end
	if to != nil {
		hi = append(append([]byte(nil), p.prefix...), to...)
	}
	return p.batch().DeleteRange(lo, hi, nil)
}

func (p *pebbleBackend) iter(lower, upper []byte, reverse bool) (rawIter, error) {
	if p.bulkMode {
		return nil, errors.New("state: internal error: read during restore")
	}
	o := &pebble.IterOptions{
		LowerBound: p.lowerKey(nil, lower),
		UpperBound: p.end,
	}
	if upper != nil {
		o.UpperBound = append(append([]byte(nil), p.prefix...), upper...)
	}
	var (
		it  *pebble.Iterator
		err error
	)
	var owner *pebbleBackend
	if p.b != nil {
		it, err = p.b.NewIter(o)
		owner = p
	} else {
		it, err = p.db.NewIter(o)
	}
	if err != nil {
		return nil, fmt.Errorf("state: pebble iterator: %w", err)
	}
	pi := &pebbleIter{it: it, plen: len(p.prefix), reverse: reverse}
	if owner != nil {
		owner.batchIters++
		pi.owner = owner
	}
	return pi, nil
}

func (p *pebbleBackend) count() (int64, error) {
	it, err := p.iter(nil, nil, false)
	if err != nil {
		return 0, err
	}
	var n int64
	for it.next() {
		n++
	}
	return n, it.close()
}

func (p *pebbleBackend) pending() int {
	if p.bulkMode {
		return p.chunk.size()
	}
	if p.b == nil {
		return 0
	}
	return p.b.Len()
}

func (p *pebbleBackend) commit(m meta) error {
	if p.bulkMode {
		p.bulkMode = false
		if !p.chunk.empty() {
			// An ingest is durable when it returns; so is its checkpoint.
			return p.ingestChunk(context.Background(), m)
		}
	}
	b := p.batch()
	if err := b.Set(p.metaKey, m.encode(), nil); err != nil {
		return err
	}
	// NB: the batch is atomic in the WAL whether synced or not, so after
	// any crash the data and its checkpoint agree. Syncing (the default)
	// keeps the checkpoint through a machine crash too, so that only the
	// changelog's tail is replayed; concurrent commits share one fsync.
	err := b.Commit(p.wo)
	p.release()
	if err != nil {
		return fmt.Errorf("state: pebble commit: %w", err)
	}
	return nil
}

func (p *pebbleBackend) loadMeta() (meta, error) {
	v, c, err := p.db.Get(p.metaKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return zeroMeta, nil
	}
	if err != nil {
		return meta{}, fmt.Errorf("state: pebble get checkpoint: %w", err)
	}
	defer c.Close()
	return decodeMeta(v)
}

func (p *pebbleBackend) wipe() error {
	p.discard()
	b := p.db.NewBatch()
	defer b.Close()
	// The range holds the meta key (the bare prefix) too.
	if err := b.DeleteRange(p.prefix, p.end, nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("state: wipe store: %w", err)
	}
	return nil
}

func (p *pebbleBackend) discard() {
	p.release()
	p.bulkMode = false
	if p.chunk != nil {
		p.chunk.reset()
	}
}

// release lets go of the current batch, closing it unless iterators still
// read it.
func (p *pebbleBackend) release() {
	if p.b == nil {
		return
	}
	if p.batchIters == 0 {
		_ = p.b.Close()
	}
	p.b = nil
}

func (p *pebbleBackend) bulk() {
	p.discard()
	p.bulkMode = true
	if p.chunk == nil {
		p.chunk = p.sst.getChunk()
	}
}

// endBulk leaves bulk mode and gives the chunk back.
func (p *pebbleBackend) endBulk() {
	p.discard()
	if p.chunk != nil {
		p.sst.putChunk(p.chunk)
		p.chunk = nil
	}
}

func (p *pebbleBackend) close() error {
	p.endBulk()
	return nil
}

type pebbleIter struct {
	it *pebble.Iterator
	// owner is set when the iterator reads owner's batch.
	owner   *pebbleBackend
	plen    int
	reverse bool
	started bool
	valid   bool
	closed  bool
	cerr    error
}

func (i *pebbleIter) next() bool {
	if i.closed {
		return false
	}
	switch {
	case !i.started && !i.reverse:
		i.valid = i.it.First()
	case !i.started:
		i.valid = i.it.Last()
	case !i.reverse:
		i.valid = i.it.Next()
	default:
		i.valid = i.it.Prev()
	}
	i.started = true
	return i.valid
}

func (i *pebbleIter) key() []byte {
	if i.closed || !i.valid {
		return nil
	}
	return i.it.Key()[i.plen:]
}

func (i *pebbleIter) value() []byte {
	if i.closed || !i.valid {
		return nil
	}
	return i.it.Value()
}
func (i *pebbleIter) err() error {
	if i.closed {
		return i.cerr
	}
	return i.it.Error()
}

func (i *pebbleIter) close() error {
	if !i.closed {
		i.closed = true
		i.cerr = i.it.Close()
		if i.owner != nil {
			// A batch released while this iterator read it was left to
			// the garbage collector (see release).
			i.owner.batchIters--
		}
	}
	return i.cerr
}
