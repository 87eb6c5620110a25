package storage

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/weir-dev/weir/broker/internal/batch"
)

// maxCompactDecompressed bounds the decompressed size of one batch during
// compaction; a larger batch is kept as it is.
const maxCompactDecompressed = 256 << 20

// Compaction keeps, among the sealed segments, the latest record of each
// key; records without a key are kept. Only the segments sealed since the
// last pass are read to find the latest offsets (Kafka's dirty section). A tombstone (null value) that is the
// latest for its key is kept until its timestamp is delete.retention.ms old.
// Transactional batches at or past the first unstable offset are kept as
// they are (their transaction is undecided). Below it, an aborted
// transaction's batches are dropped and a committed one's are compacted like
// any other (txnFates).
//
// A marker (control batch) below the first unstable offset goes in two
// passes, as Kafka's cleaner removes it: the first pass that finds none of
// its transaction's records left in the log stamps it with a delete horizon
// delete.retention.ms ahead (KIP-534: an attribute bit and the first
// timestamp); a pass after the horizon drops it, and, for an ABORT marker,
// its aborted-transaction entry. Until then a reader that fetched records of
// the transaction before they were cleaned still finds the marker that ends
// it; and a marker whose transaction still has records (committed ones that
// are the latest for their keys) stays, so that recovery never sees that
// transaction open again. Offsets never
// change: a batch whose records are all kept is copied verbatim, one that
// loses some is rebuilt with the same header fields (base offset, last
// offset delta, producer fields, codec) and fewer records, and one that
// loses all is dropped.
//
// Consecutive sealed segments are merged into groups of at most
// segment.bytes (of input); each group is rewritten into one new segment in
// three steps, so that a crash at any point loses nothing:
//
//  1. write "<base>.log.cleaned" and fsync it (deleted on open if a crash
//     interrupts this step);
//  2. rename it to "<base>-<end>.log.swap" and fsync the directory: the
//     commit point (on open, a swap file replaces every segment whose base
//     lies in [base, end) and is renamed to "<base>.log");
//  3. under the append lock, swap the in-memory segments, delete the old
//     files, rename the swap file to "<base>.log", fsync the directory and
//     write the new index files (not fsynced: indexes are checked on open).

// compactLocked runs a compaction pass. Caller holds cleanMu.
func (l *Log) compactLocked(ctx context.Context) error {
	l.appendMu.Lock()
	if l.closed {
		l.appendMu.Unlock()
		return ErrClosed
	}
	l.mu.RLock()
	cfg := l.cfg
	all := append([]*segment(nil), l.segs...)
	l.mu.RUnlock()
	l.appendMu.Unlock()
	sealed := all[:len(all)-1]
	if len(sealed) == 0 {
		return nil
	}
	// Clean when enough of the sealed bytes are new since the last pass
	// (min.cleanable.dirty.ratio), or when a kept tombstone has expired.
	end := sealed[len(sealed)-1].next
	var dirty, total int64
	for _, s := range sealed {
		total += s.size
		if s.base >= l.compactedThrough {
			dirty += s.size
		}
	}
	nowMS := l.opts.Now().UnixMilli()
	ratioDue := dirty > 0 && float64(dirty) >= cfg.MinCleanableDirtyRatio*float64(total)
	if !ratioDue && nowMS < l.tombstoneExpiry {
		return nil
	}
	lim := newLimiter(l.opts.CleanerBytesPerSecond)

	// 1. The latest offset of every key in the dirty sealed segments (those
	// sealed since the last pass; all of them after an open). The clean
	// ones already hold at most one record per key, so a clean record whose
	// key is not in the map is the latest.
	fates := l.txnFates()
	latest := map[string]Offset{}
	for _, s := range sealed {
		if s.base < l.compactedThrough {
			continue
		}
		err := l.eachBatch(ctx, lim, s, func(b []byte, h batch.Header) error {
			if h.Control() || (h.Transactional() && fates.of(h) != txnCommitted) {
				return nil
			}
			recs, err := batch.Records(b, maxCompactDecompressed)
			if err != nil {
				return nil // kept verbatim below
			}
			for _, r := range recs {
				if r.Key != nil {
					latest[string(r.Key)] = Offset(h.BaseOffset) + Offset(r.OffsetDelta)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}

	// 2. Groups of consecutive sealed segments.
	var groups [][]*segment
	for i := 0; i < len(sealed); {
		j, size := i+1, sealed[i].size
		for j < len(sealed) && size+sealed[j].size <= cfg.SegmentBytes && all[j+1].base-sealed[i].base <= math.MaxUint32 {
			size += sealed[j].size
			j++
		}
		groups = append(groups, sealed[i:j])
		i = j
	}
	pass := cleanPass{
		latest: latest, fates: fates, now: nowMS, retention: cfg.DeleteRetentionMS,
		kept: map[int64]bool{}, due: math.MaxInt64,
	}
	for gi, g := range groups {
		next := all[len(sealed)].base // the active segment's base
		if gi+1 < len(groups) {
			next = groups[gi+1][0].base
		}
		if err := l.rewriteGroup(ctx, lim, g, next, &pass, cfg.IndexIntervalBytes); err != nil {
			// Some groups may be rewritten and others not, so "clean"
			// no longer means one record per key: the next pass maps all.
			l.compactedThrough = 0
			return err
		}
	}
	l.compactedThrough, l.tombstoneExpiry = end, pass.due
	l.appendMu.Lock()
	l.cleanerStats.Passes++
	l.appendMu.Unlock()
	return nil
}

// cleanPass is what one compaction pass knows and gathers across the
// groups it rewrites, in offset order.
type cleanPass struct {
	latest    map[string]Offset
	fates     txnFates
	now       int64 // Unix ms
	retention int64 // delete.retention.ms
	// kept holds the producers whose current transaction (since their last
	// marker in the scan) has a batch the pass keeps.
	kept map[int64]bool
	// due is when (Unix ms) the earliest tombstone or marker kept may be
	// removed by a later pass; math.MaxInt64 if never.
	due int64
}

// marker decides the fate of the marker h (b) as the pass reaches it: the
// batch to write (b, or b with a delete horizon set), or nil to drop it.
func (p *cleanPass) marker(b []byte, h batch.Header) ([]byte, batch.Header) {
	kept := p.kept[h.ProducerID]
	delete(p.kept, h.ProducerID)
	if kept || Offset(h.LastOffset()) >= p.fates.unstable {
		return b, h
	}
	at, ok := h.DeleteHorizon()
	switch {
	case ok && at <= p.now:
		return nil, h
	case !ok:
		at = p.now + p.retention
		b = append([]byte(nil), b...)
		batch.SetDeleteHorizon(b, at)
		nh, err := batch.Validate(b)
		if err != nil {
			panic(fmt.Sprintf("storage: a marker with a delete horizon set is invalid: %v", err))
		}
		h = nh
	}
	p.due = min(p.due, at)
	return b, h
}

// rewriteGroup compacts the segments g, which cover offsets [g[0].base,
// end), into one new segment and swaps it in. It tells p when a later pass
// has a tombstone or marker to remove.
func (l *Log) rewriteGroup(ctx context.Context, lim *limiter, g []*segment, end Offset, p *cleanPass, interval int32) error {
	latest, fates, horizon := p.latest, p.fates, p.now-p.retention
	base := g[0].base
	cleanedPath := l.path(segmentName(base, logSuffix+cleanedSuffix))
	f, err := l.fs.Create(cleanedPath, vfs.WriteCategoryUnspecified)
	if err != nil {
		return l.ioErr("creating cleaned segment", err)
	}
	fail := func(err error) error {
		f.Close()
		l.fs.Remove(cleanedPath)
		return err
	}
	ns := newSegment(base, l.files.pinned(l.fs, f, cleanedPath), cleanedPath)
	var droppedAborts []AbortedTxn // ABORT markers dropped: their entries go
	var written int64
	write := func(b []byte, h batch.Header) error {
		if err := lim.wait(ctx, &l.closing, len(b)); err != nil {
			return err
		}
		if _, err := f.WriteAt(b, written); err != nil {
			return l.ioErr("writing cleaned segment", err)
		}
		h.BaseOffset = int64(binary.BigEndian.Uint64(b))
		ns.indexBatchLocked(h, written, interval)
		written += int64(len(b))
		return nil
	}
	var recs []batch.Record
	for _, s := range g {
		err := l.eachBatch(ctx, lim, s, func(b []byte, h batch.Header) error {
			if h.Control() {
				nb, nh := p.marker(b, h)
				if nb == nil {
					if kind, _, ok := controlKind(b); ok && kind == controlAbort {
						droppedAborts = append(droppedAborts, AbortedTxn{ProducerID: h.ProducerID, LastOffset: Offset(h.BaseOffset)})
					}
					return nil
				}
				return write(nb, nh)
			}
			if h.Transactional() {
				switch fates.of(h) {
				case txnUndecided:
					p.kept[h.ProducerID] = true
					return write(b, h)
				case txnAborted:
					return nil
				}
			}
			all, err := batch.Records(b, maxCompactDecompressed)
			if err != nil {
				l.opts.Logger.Warn("storage: compaction keeps a batch it cannot decode", "segment", s.path, "offset", h.BaseOffset, "err", err)
				if h.Transactional() {
					p.kept[h.ProducerID] = true
				}
				return write(b, h)
			}
			recs = recs[:0]
			for _, r := range all {
				off := Offset(h.BaseOffset) + Offset(r.OffsetDelta)
				if r.Key != nil {
					if o, ok := latest[string(r.Key)]; ok && o != off {
						continue // superseded
					}
				}
				if r.Key != nil && r.Value == nil {
					ts := h.FirstTimestamp + r.TimestampDelta
					if h.LogAppendTime() {
						ts = h.MaxTimestamp
					}
					if ts <= horizon {
						continue // expired tombstone
					}
					p.due = min(p.due, ts+p.retention)
				}
				recs = append(recs, r)
			}
			if len(recs) > 0 && h.Transactional() {
				p.kept[h.ProducerID] = true
			}
			switch {
			case len(recs) == len(all):
				return write(b, h)
			case len(recs) == 0:
				return nil
			}
			nb, err := batch.Build(h, recs, h.Codec())
			if err != nil {
				return fmt.Errorf("storage: rebuilding a compacted batch at %d: %w", h.BaseOffset, err)
			}
			// Keep the batch's offset span (and so its producer's last
			// sequence): Build shortened it to the last kept record.
			binary.BigEndian.PutUint32(nb[23:], uint32(h.LastOffsetDelta))
			batch.SetCRC(nb)
			nh, err := batch.Validate(nb)
			if err != nil {
				return fmt.Errorf("storage: compacted batch at %d is invalid: %w", h.BaseOffset, err)
			}
			return write(nb, nh)
		})
		if err != nil {
			return fail(err)
		}
	}
	l.cleanerStatsAdd(0, written)
	if err := f.Sync(); err != nil {
		return fail(l.ioErr("fsync cleaned segment", err))
	}
	// The compacted segment's aborted-transaction index: those of the
	// segments it replaces but the dropped markers', written before the
	// swap commits. NB: the entries leave memory now; no reader needs them
	// (their transactions' records went a retention ago), so a swap that
	// fails after this loses nothing.
	l.forgetAborted(droppedAborts)
	if err := l.writeTxnIndex(base, end); err != nil {
		return fail(l.ioErr("writing aborted-transaction index", err))
	}
	// The recovery-point checkpoint stops listing g before the swap
	// commits: a crash after the commit must not find g[0]'s summary for
	// the compacted segment that open then puts at its base. NB: one that
	// may still list g (neither rewritten nor removed) stops the swap.
	l.appendMu.Lock()
	l.ckptSkip = g
	err = l.writeRecoveryPointNowLocked()
	if err != nil {
		// g stays the log's: later checkpoints may list it again. (After
		// a failed rename below it stays skipped: the swap may be on
		// disk.)
		l.ckptSkip = nil
	}
	l.appendMu.Unlock()
	if err != nil {
		return fail(l.ioErr("replacing recovery-point checkpoint", err))
	}
	// Commit point.
	swapPath := l.path(fmt.Sprintf("%020d-%020d%s%s", int64(base), int64(end), logSuffix, swapSuffix))
	if err := l.fs.Rename(cleanedPath, swapPath); err != nil {
		return fail(l.ioErr("renaming cleaned segment", err))
	}
	if err := syncDir(l.fs, l.dir); err != nil {
		// The rename may or may not be durable; either way the log is
		// whole. Finish in memory on the next open.
		f.Close()
		return l.ioErr("syncing directory", err)
	}
	return l.swapIn(g, ns, swapPath)
}

// swapIn replaces the segments g by ns, whose file is at swapPath.
func (l *Log) swapIn(g []*segment, ns *segment, swapPath string) error {
	l.appendMu.Lock()
	l.mu.Lock()
	i := 0
	for i < len(l.segs) && l.segs[i] != g[0] {
		i++
	}
	if i+len(g) > len(l.segs)-1 {
		l.mu.Unlock()
		l.appendMu.Unlock()
		panic("storage: compacted segments are no longer in the log")
	}
	segs := append([]*segment(nil), l.segs[:i]...)
	segs = append(segs, ns)
	segs = append(segs, l.segs[i+len(g):]...)
	l.segs = segs
	ns.path = l.path(segmentName(ns.base, logSuffix))
	l.mu.Unlock()
	defer l.appendMu.Unlock()
	// One directory sync covers the deletions and the rename: until it
	// returns, a crash leaves the swap file, and open finishes the swap.
	err := l.closeAndRemove(g)
	if err == nil {
		err = l.fs.Rename(swapPath, ns.path)
	}
	if err == nil {
		ns.f.unpin(ns.path)
	}
	if err == nil {
		err = syncDir(l.fs, l.dir)
	}
	if err == nil {
		err = ns.writeIndexes(l.fs, l.dir, true)
	}
	l.ckptSkip = nil
	if err == nil {
		// NB: a checkpoint left as it is lists no segment of g (see
		// above): ns is checked on open. Its error is no reason to fail.
		_ = l.writeRecoveryPointNowLocked()
	}
	// ns kept the first segment's aborted-transaction index, written for
	// it before the swap; the others' go.
	l.removeTxnIndexes(g[1:])
	if err != nil {
		// The swap file completes the swap on the next open.
		return l.ioErr("swapping in a compacted segment", err)
	}
	return nil
}

func (l *Log) cleanerStatsAdd(read, written int64) {
	l.appendMu.Lock()
	l.cleanerStats.BytesRead += read
	l.cleanerStats.BytesWritten += written
	l.appendMu.Unlock()
}

// eachBatch calls fn with each batch of the sealed segment s, reading
// through a buffer of CleanerBufferBytes at the limiter's rate.
func (l *Log) eachBatch(ctx context.Context, lim *limiter, s *segment, fn func(b []byte, h batch.Header) error) error {
	l.mu.RLock()
	size := s.size
	l.mu.RUnlock()
	buf := make([]byte, min(int64(l.opts.CleanerBufferBytes), max(size, 1)))
	for pos := int64(0); pos < size; {
		n := min(int64(len(buf)), size-pos)
		if err := lim.wait(ctx, &l.closing, int(n)); err != nil {
			return err
		}
		m, err := s.f.ReadAt(buf[:n], pos)
		if int64(m) < n {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("storage: read %s at %d: %w", s.path, pos, err)
		}
		l.cleanerStatsAdd(n, 0)
		chunk := buf[:n]
		consumed := int64(0)
		for len(chunk) > 0 {
			b, rest, err := batch.Next(chunk)
			if batch.IsTruncated(err) {
				break
			}
			if err != nil {
				return fmt.Errorf("storage: %s at %d: %w", s.path, pos+consumed, err)
			}
			h, err := batch.Validate(b)
			if err != nil {
				return fmt.Errorf("storage: %s at %d: %w", s.path, pos+consumed, err)
			}
			if err := fn(b, h); err != nil {
				return err
			}
			consumed += int64(len(b))
			chunk = rest
		}
		if consumed == 0 {
			// One batch larger than the buffer: read it alone.
			h, err := readHeaderAt(s.f, pos, new([batch.HeaderSize]byte))
			if err != nil {
				return err
			}
			big := make([]byte, h.Size())
			if err := lim.wait(ctx, &l.closing, len(big)); err != nil {
				return err
			}
			if m, err := s.f.ReadAt(big, pos); m < len(big) {
				return fmt.Errorf("storage: read %s at %d: %w", s.path, pos, err)
			}
			if h, err = batch.Validate(big); err != nil {
				return fmt.Errorf("storage: %s at %d: %w", s.path, pos, err)
			}
			if err := fn(big, h); err != nil {
				return err
			}
			consumed = int64(len(big))
		}
		pos += consumed
	}
	return nil
}

// limiter paces the cleaner's I/O at rate bytes per second (unlimited when
// rate <= 0). It uses the real clock: it paces real I/O.
type limiter struct {
	rate  int64
	start time.Time
	used  int64
}

func newLimiter(rate int64) *limiter { return &limiter{rate: rate, start: time.Now()} }

// wait accounts for n bytes and waits until the rate allows them, returning
// early with an error when ctx ends or the log is closing.
func (lm *limiter) wait(ctx context.Context, closing interface{ Load() bool }, n int) error {
	if closing.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if lm.rate <= 0 {
		return nil
	}
	lm.used += int64(n)
	due := lm.start.Add(time.Duration(float64(lm.used) / float64(lm.rate) * float64(time.Second)))
	d := time.Until(due)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
