package stateengine

import (
	"bytes"
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
// under its own key prefix (docs/ARCHITECTURE.md 3.5 gives the layout).
// Writes go into a batch, which reads see, until commit writes the batch and
// the meta key together. The batch is indexed only once a read needs it: a
// cached store writes only when its cache flushes, right before the commit,
// so its writes skip the index. The meta key is the bare prefix (an
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
	// spare is an idle iterator kept for the next iter call, which
	// repositions it (SetOptions) instead of making a new one: a window
	// fetch per record otherwise pays for opening and closing a Pebble
	// iterator each time. It reads spareOn (nil: the database), and sees
	// the database as of when it was made, which for this store's keys is
	// right until the store's next commit: release drops it and advances
	// gen, so iterators made before then are not kept.
	spare   *pebble.Iterator
	spareOn *pebble.Batch
	gen     uint64
	// delRanges are range deletions not yet put into b, as [lo, hi) pairs
	// of full keys. NB: Pebble's Batch.Get re-fragments every range
	// tombstone of an indexed batch on each call (it reads at the newest
	// sequence number, which its tombstone cache never matches), so one
	// expired segment dropped early in a commit interval made every later
	// read of that interval pay for it. get and iter hide these ranges
	// instead; commit (or a write into one of them) moves them into b.
	delRanges [][2][]byte
	kbuf      []byte
	// onCorrupt is told of every corruption error a read returns.
	onCorrupt func(error)
}

// readErr passes err through, telling onCorrupt if it is a corruption.
func (p *pebbleBackend) readErr(err error) error {
	if err != nil && p.onCorrupt != nil && pebble.IsCorruptionError(err) {
		p.onCorrupt(err)
	}
	return err
}

func newPebbleBackend(db *pebble.DB, sst *sstEnv, id uint32, noSync bool, onCorrupt func(error)) *pebbleBackend {
	p := &pebbleBackend{db: db, sst: sst, id: id, prefix: dataKeyPrefix(id), wo: pebble.Sync, onCorrupt: onCorrupt}
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

// batch returns the batch for a write.
func (p *pebbleBackend) batch() *pebble.Batch {
	if p.b == nil {
		p.b = p.db.NewBatch()
	}
	return p.b
}

// readBatch returns the batch a read must see, indexed (its writes so
// far indexed at once), or nil when there is none.
func (p *pebbleBackend) readBatch() (*pebble.Batch, error) {
	if p.b == nil || p.b.Indexed() {
		return p.b, nil
	}
	ib := p.db.NewIndexedBatch()
	if err := ib.Apply(p.b, nil); err != nil {
		_ = ib.Close()
		return nil, fmt.Errorf("state: index batch: %w", err)
	}
	// Only indexed batches have iterators (batchIters is 0): close it.
	_ = p.b.Close()
	p.b = ib
	return ib, nil
}

// inDelRange reports whether full key k lies in a pending range deletion.
func (p *pebbleBackend) inDelRange(k []byte) bool {
	for _, r := range p.delRanges {
		if bytes.Compare(k, r[0]) >= 0 && bytes.Compare(k, r[1]) < 0 {
			return true
		}
	}
	return false
}

// applyDelRanges moves the pending range deletions into the batch.
func (p *pebbleBackend) applyDelRanges() error {
	for _, r := range p.delRanges {
		if err := p.batch().DeleteRange(r[0], r[1], nil); err != nil {
			return err
		}
	}
	p.delRanges = p.delRanges[:0]
	return nil
}

// writeKey returns the full key of key for a write; a write into a pending
// range deletion first moves the pending deletions into the batch, so that
// the batch keeps the order of the writes.
func (p *pebbleBackend) writeKey(key []byte) ([]byte, error) {
	k := p.full(key)
	if len(p.delRanges) > 0 && p.inDelRange(k) {
		if err := p.applyDelRanges(); err != nil {
			return nil, err
		}
	}
	return k, nil
}

func (p *pebbleBackend) get(key []byte) ([]byte, error) {
	if p.bulkMode {
		return nil, errors.New("state: internal error: read during restore")
	}
	if len(p.delRanges) > 0 && p.inDelRange(p.full(key)) {
		return nil, nil
	}
	b, err := p.readBatch()
	if err != nil {
		return nil, err
	}
	var (
		v []byte
		c interface{ Close() error }
	)
	if b != nil {
		v, c, err = b.Get(p.full(key))
	} else {
		v, c, err = p.db.Get(p.full(key))
	}
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: pebble get: %w", p.readErr(err))
	}
	out := append(make([]byte, 0, len(v)), v...)
	return out, c.Close()
}

func (p *pebbleBackend) set(key, value []byte) error {
	if p.bulkMode {
		p.chunk.set(key, value)
		return nil
	}
	k, err := p.writeKey(key)
	if err != nil {
		return err
	}
	return p.batch().Set(k, value, nil)
}

func (p *pebbleBackend) del(key []byte) error {
	if p.bulkMode {
		p.chunk.set(key, nil)
		return nil
	}
	k, err := p.writeKey(key)
	if err != nil {
		return err
	}
	return p.batch().Delete(k, nil)
}

func (p *pebbleBackend) delRange(from, to []byte) error {
	if p.bulkMode {
		if len(from) == 0 {
			from = []byte{0}
		}
		p.chunk.delRange(from, to)
		return nil
	}
	lo := p.lowerKey(nil, from)
	hi := p.end
	if to != nil {
		hi = append(append([]byte(nil), p.prefix...), to...)
	}
	p.delRanges = append(p.delRanges, [2][]byte{lo, hi})
	return nil
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
	var it *pebble.Iterator
	b, err := p.readBatch()
	if err != nil {
		return nil, err
	}
	switch {
	case p.spare != nil && p.spareOn == b:
		// NB: SetOptions also refreshes a batch iterator's view of the
		// batch's writes since.
		it, p.spare, p.spareOn = p.spare, nil, nil
		it.SetOptions(o)
	case b != nil:
		p.dropSpare()
		it, err = b.NewIter(o)
	default:
		p.dropSpare()
		it, err = p.db.NewIter(o)
	}
	if err != nil {
		return nil, fmt.Errorf("state: pebble iterator: %w", p.readErr(err))
	}
	var owner *pebbleBackend
	if b != nil {
		owner = p
	}
	pi := &pebbleIter{it: it, plen: len(p.prefix), reverse: reverse, readErr: p.readErr, back: p, on: b, gen: p.gen}
	if len(p.delRanges) > 0 {
		pi.hide = append([][2][]byte(nil), p.delRanges...)
	}
	if owner != nil {
		owner.batchIters++
		pi.owner = owner
	}
	return pi, nil
}

// exactCountLimit is how many keys count scans before it turns to Pebble's
// table statistics.
const exactCountLimit = 1_000

// count is exact up to exactCountLimit keys (a bounded scan, which sees
// uncommitted writes too). Past that it is estimated from the properties of
// the SSTables that overlap the store's range, each prorated by the share
// of its bytes inside the range: overwritten keys not yet compacted away
// count more than once, and data still only in a memtable does not count;
// the result is at least exactCountLimit+1.
func (p *pebbleBackend) count() (int64, error) {
	it, err := p.iter(nil, nil, false)
	if err != nil {
		return 0, err
	}
	var n int64
	for n <= exactCountLimit && it.next() {
		n++
	}
	if err := it.close(); err != nil {
		return 0, err
	}
	if n <= exactCountLimit {
		return n, nil
	}
	est, err := p.estimateCount()
	if err != nil {
		return 0, err
	}
	return max(est, n), nil
}

func (p *pebbleBackend) estimateCount() (int64, error) {
	lo := p.lowerKey(nil, nil)
	levels, err := p.db.SSTables(pebble.WithKeyRangeFilter(lo, p.end), pebble.WithProperties(), pebble.WithApproximateSpanBytes())
	if err != nil {
		return 0, fmt.Errorf("state: pebble table statistics: %w", p.readErr(err))
	}
	var est float64
	for _, tables := range levels {
		for _, t := range tables {
			if t.Properties == nil || t.Size == 0 || t.Properties.NumEntries <= t.Properties.NumDeletions {
				continue
			}
			frac := min(float64(t.ApproximateSpanBytes)/float64(t.Size), 1)
			est += float64(t.Properties.NumEntries-t.Properties.NumDeletions) * frac
		}
	}
	return int64(est), nil
}

func (p *pebbleBackend) pending() int {
	if p.bulkMode {
		return p.chunk.size()
	}
	n := 0
	for _, r := range p.delRanges {
		n += len(r[0]) + len(r[1])
	}
	if p.b == nil {
		return n
	}
	return n + p.b.Len()
}

func (p *pebbleBackend) commit(m meta) error {
	if p.bulkMode {
		p.bulkMode = false
		if !p.chunk.empty() {
			// An ingest is durable when it returns; so is its checkpoint.
			return p.ingestChunk(context.Background(), m)
		}
	}
	if err := p.applyDelRanges(); err != nil {
		return err
	}
	b := p.batch()
	if err := b.Set(p.metaKey, m.encode(), nil); err != nil {
		return err
	}
	// NB: Pebble commits a batch of half a memtable or more as a
	// flushable batch and then clears the batch's data, which iterators
	// made on the batch read (the skiplist index stays, pointing into
	// nothing): a write during an iteration that commits early, or a
	// Flush, would make their next step panic. While any are open the
	// batch's copy is committed instead; the iterators keep reading the
	// batch, which release leaves to them.
	c := b
	if p.batchIters > 0 && b.Indexed() {
		c = p.db.NewBatch()
		if err := c.Apply(b, nil); err != nil {
			_ = c.Close()
			return fmt.Errorf("state: pebble commit: copy batch: %w", err)
		}
	}
	// NB: the batch is atomic in the WAL whether synced or not, so after
	// any crash the data and its checkpoint agree. Syncing (the default)
	// keeps the checkpoint through a machine crash too, so that only the
	// changelog's tail is replayed; concurrent commits share one fsync.
	err := c.Commit(p.wo)
	if c != b {
		_ = c.Close()
	}
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
		return meta{}, fmt.Errorf("state: pebble get checkpoint: %w", p.readErr(err))
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
	p.delRanges = p.delRanges[:0]
	p.bulkMode = false
	if p.chunk != nil {
		p.chunk.reset()
	}
}

// release lets go of the current batch, closing it unless iterators still
// read it.
func (p *pebbleBackend) release() {
	p.dropSpare()
	p.gen++
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

// dropSpare closes the spare iterator, if any.
func (p *pebbleBackend) dropSpare() {
	if p.spare != nil {
		_ = p.spare.Close()
		p.spare, p.spareOn = nil, nil
	}
}

// keep takes back an iterator its reader is done with as the spare, when
// it still sees what a new one would (made since the last release, on the
// current read batch) and no spare is kept yet; it reports whether it did.
func (p *pebbleBackend) keep(it *pebble.Iterator, on *pebble.Batch, gen uint64) bool {
	if p.spare != nil || gen != p.gen || on != p.b || it.Error() != nil {
		return false
	}
	p.spare, p.spareOn = it, on
	return true
}

func (p *pebbleBackend) close() error {
	p.endBulk()
	return nil
}

type pebbleIter struct {
	it *pebble.Iterator
	// owner is set when the iterator reads owner's batch.
	owner *pebbleBackend
	// back is the backend that made it, which may keep it as its spare
	// when closed; on and gen are what keep checks.
	back *pebbleBackend
	on   *pebble.Batch
	gen  uint64
	// hide are range deletions pending when the iterator was made: their
	// keys are skipped.
	hide    [][2][]byte
	plen    int
	reverse bool
	started bool
	valid   bool
	closed  bool
	cerr    error
	readErr func(error) error
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
	for i.valid && len(i.hide) > 0 && i.hidden(i.it.Key()) {
		if i.reverse {
			i.valid = i.it.Prev()
		} else {
			i.valid = i.it.Next()
		}
	}
	return i.valid
}

func (i *pebbleIter) hidden(k []byte) bool {
	for _, r := range i.hide {
		if bytes.Compare(k, r[0]) >= 0 && bytes.Compare(k, r[1]) < 0 {
			return true
		}
	}
	return false
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
	return i.readErr(i.it.Error())
}

func (i *pebbleIter) close() error {
	if !i.closed {
		i.closed = true
		if !i.back.keep(i.it, i.on, i.gen) {
			i.cerr = i.readErr(i.it.Close())
		}
		if i.owner != nil {
			// A batch released while this iterator read it was left to
			// the garbage collector (see release).
			i.owner.batchIters--
		}
	}
	return i.cerr
}
