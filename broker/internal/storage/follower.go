package storage

// Replication support: a follower appends its leader's batches as they are
// (offsets and leader epochs kept), truncates a divergent tail, and a
// replicated partition's high watermark is capped by what its in-sync
// replicas hold (SetHighWatermarkLimit).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/weir-dev/weir/broker/internal/batch"
)

// AppendReplica appends batches fetched from the partition's leader exactly
// as they are: their base offsets (each at or past the log end offset, in
// increasing order) and partition leader epochs (never below the log's
// newest) are kept, and idempotent-producer state is rebuilt from their
// headers, so this log deduplicates a producer's retry once it leads. Every
// batch is checked (Validate: CRC included) before anything is written. It
// does not wait for an fsync; WaitDurable does.
func (l *Log) AppendReplica(batches []byte) (AppendResult, error) {
	if len(batches) == 0 {
		return AppendResult{}, fmt.Errorf("%w: empty replica payload", ErrCorrupt)
	}
	var hs []batch.Header
	for rest, pos := batches, 0; len(rest) > 0; {
		b, r, err := batch.Next(rest)
		if err != nil {
			return AppendResult{}, fmt.Errorf("%w: replica batch at byte %d: %w", ErrCorrupt, pos, err)
		}
		h, err := batch.Validate(b)
		if err != nil {
			return AppendResult{}, fmt.Errorf("%w: replica batch at byte %d: %w", ErrCorrupt, pos, err)
		}
		if n := len(hs); n > 0 && (h.BaseOffset <= hs[n-1].LastOffset() || h.PartitionLeaderEpoch < hs[n-1].PartitionLeaderEpoch) {
			return AppendResult{}, fmt.Errorf("%w: replica batch at byte %d (offset %d, epoch %d) does not follow offset %d epoch %d",
				ErrCorrupt, pos, h.BaseOffset, h.PartitionLeaderEpoch, hs[n-1].LastOffset(), hs[n-1].PartitionLeaderEpoch)
		}
		hs = append(hs, h)
		pos += len(b)
		rest = r
	}
	l.mu.RLock()
	segBytes := l.cfg.SegmentBytes
	l.mu.RUnlock()
	if int64(len(batches)) > segBytes {
		// NB: a fetch returns whole batches up to the fetcher's budget; it
		// asks for less than segment.bytes, so only one oversized batch
		// lands here, and the leader could not have stored it either.
		return AppendResult{}, fmt.Errorf("%w: replica payload of %d bytes exceeds segment.bytes %d", ErrMessageTooLarge, len(batches), segBytes)
	}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return AppendResult{}, ErrClosed
	}
	if l.failed != nil {
		return AppendResult{}, fmt.Errorf("%w: appends disabled after %w", ErrStorage, l.failed)
	}
	l.mu.RLock()
	serr, leo, logStart := l.syncErr, l.leo, l.logStart
	l.mu.RUnlock()
	if serr != nil {
		return AppendResult{}, fmt.Errorf("%w: appends disabled after a failed fsync: %w", ErrStorage, serr)
	}
	first, last := Offset(hs[0].BaseOffset), Offset(hs[len(hs)-1].LastOffset())
	if first < leo {
		return AppendResult{}, fmt.Errorf("storage: replica batch at offset %d is below the log end offset %d", first, leo)
	}
	if n := len(l.epochs); n > 0 && Epoch(hs[0].PartitionLeaderEpoch) < l.epochs[n-1].epoch {
		return AppendResult{}, fmt.Errorf("storage: replica batch of leader epoch %d below the log's newest %d", hs[0].PartitionLeaderEpoch, l.epochs[n-1].epoch)
	}
	if first > leo && l.segs[len(l.segs)-1].size == 0 && l.segs[len(l.segs)-1].base < first && len(l.segs) == 1 {
		// An empty log following a leader whose log starts later: start
		// where the leader's data does.
		if err := l.resetLocked(first); err != nil {
			return AppendResult{}, err
		}
		logStart = first
	}
	if err := l.maybeRollLocked(int64(len(batches)), last); err != nil {
		return AppendResult{}, err
	}
	// New epochs: durable before any batch of them is written.
	added := 0
	for _, h := range hs {
		if n := len(l.epochs); n == 0 || Epoch(h.PartitionLeaderEpoch) > l.epochs[n-1].epoch {
			l.epochs = append(l.epochs, epochEntry{epoch: Epoch(h.PartitionLeaderEpoch), start: Offset(h.BaseOffset)})
			added++
		}
	}
	if added > 0 || l.epochsUnsaved {
		if err := l.writeEpochsLocked(); err != nil {
			l.epochs = l.epochs[:len(l.epochs)-added]
			return AppendResult{}, l.ioErr("writing leader-epoch checkpoint", err)
		}
	}
	seg := l.segs[len(l.segs)-1]
	pos := seg.size
	if seg.remnant {
		if err := zeroTail(seg.f, pos); err != nil {
			return AppendResult{}, l.ioErr("clearing the bytes past the end of "+seg.path, err)
		}
		seg.remnant = false
	}
	if _, err := seg.f.WriteAt(batches, pos); err != nil {
		return AppendResult{}, l.undoWriteLocked(seg, pos, err)
	}
	// Transactions, as the leader tracks them: a follower that comes to
	// lead answers read_committed with the same last stable offset and
	// aborted transactions. Before the batches are readable.
	for i, at := 0, 0; i < len(hs); i++ {
		l.trackTxnLocked(hs[i], batches[at:])
		at += hs[i].Size()
	}
	nowMS := l.opts.Now().UnixMilli()
	l.mu.Lock()
	if seg.firstAppendMS == 0 {
		seg.firstAppendMS = nowMS
	}
	p := pos
	for _, h := range hs {
		seg.indexBatchLocked(h, p, l.cfg.IndexIntervalBytes)
		p += int64(h.Size())
	}
	l.leo = last + 1
	if l.opts.Sync != SyncGroupCommit {
		l.advanceHWLocked(l.leo)
	}
	l.notifyAppendedLocked()
	l.mu.Unlock()
	for _, h := range hs {
		recordProducer(l.producers, h)
	}
	if l.opts.Sync == SyncGroupCommit {
		l.requestSync()
	}
	return AppendResult{BaseOffset: first, LastOffset: last, LogAppendTime: -1, LogStartOffset: logStart}, nil
}

// DropSyncedCache drops from the page cache the bytes of the active segment
// that an fsync covers, when one covers the whole log (under
// SyncGroupCommit; the other policies keep the page cache as it is). A
// follower calls it once its appends are durable: nobody reads a follower's
// log while it follows (its leader serves the consumers), and writing
// into page-cache pages just freed costs far less than into new ones on a
// machine whose free memory is handed back to a hypervisor (bench/README.md:
// the replication factor 3 produce figures). Reads still work, from disk.
func (l *Log) DropSyncedCache() {
	if l.opts.Sync != SyncGroupCommit {
		return
	}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed || l.failed != nil {
		return
	}
	l.mu.RLock()
	seg, synced := l.segs[len(l.segs)-1], l.durable >= l.leo
	l.mu.RUnlock()
	if !synced || seg.size <= seg.cacheDropped {
		return
	}
	fd := seg.f.Fd()
	if fd == vfs.InvalidFd {
		return
	}
	// NB: the kernel drops only the whole pages of the range: the partial
	// page at the end of the last one is taken from its start this time.
	from := seg.cacheDropped &^ (cachePage - 1)
	if err := dropPageCache(fd, from, seg.size-from); err != nil {
		l.opts.Logger.Debug("storage: dropping a follower's page cache", "dir", l.dir, "err", err)
		return
	}
	seg.cacheDropped = seg.size
}

// cachePage is the page size DropSyncedCache rounds to.
var cachePage = int64(os.Getpagesize())

// resetLocked empties a log holding no batch and starts it at off: the
// single empty segment is replaced by one based at off and the log start
// moves there. Caller holds appendMu.
func (l *Log) resetLocked(off Offset) error {
	old := l.segs[0]
	path := filepath.Join(l.dir, segmentName(off, logSuffix))
	f, err := l.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return l.ioErr("creating segment", err)
	}
	if err := writeFileAtomic(l.fs, l.path(logStartCheckpointFile), encodeLogStart(off)); err != nil {
		f.Close()
		l.fs.Remove(path)
		return l.ioErr("writing log-start checkpoint", err)
	}
	l.mu.Lock()
	l.segs = []*segment{newSegment(off, l.files.pinned(l.fs, f, path), path)}
	l.logStart, l.leo = off, off
	l.durable = max(l.durable, off)
	l.advanceHWLocked(off)
	l.mu.Unlock()
	if err := l.closeAndRemove([]*segment{old}); err != nil {
		return err
	}
	if err := syncDir(l.fs, l.dir); err != nil {
		return l.ioErr("syncing directory", err)
	}
	l.producers = map[int64]*producerState{}
	l.epochs = nil
	return nil
}

// TruncateTo removes every batch that ends at or past off, so that the log
// end offset becomes the base of the batch holding off (off itself when a
// batch starts there): how a follower, or a leader that lost its
// leadership, drops a tail its new leader does not have. Leader epochs
// starting at or past the new end are forgotten and producer state is
// rebuilt from what remains. The high watermark never stays above the new
// end. Off at or past the log end changes nothing; off at or below the log
// start empties the log, which then starts at off. It returns the new log
// end offset.
func (l *Log) TruncateTo(off Offset) (Offset, error) {
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	if l.failed != nil {
		return 0, fmt.Errorf("%w: truncation refused after %w", ErrStorage, l.failed)
	}
	l.mu.RLock()
	leo, logStart, segs := l.leo, l.logStart, l.segs
	l.mu.RUnlock()
	if off >= leo {
		return leo, nil
	}
	if off <= logStart {
		if err := l.truncateAllLocked(off); err != nil {
			return 0, err
		}
		return off, nil
	}
	// The segment holding off, and the position of the first batch that
	// ends at or past it.
	i := sort.Search(len(segs), func(i int) bool { return segs[i].base > off }) - 1
	i = max(i, 0)
	seg := segs[i]
	var hbuf [batch.HeaderSize]byte
	pos, newEnd := int64(0), seg.base
	for pos < seg.size {
		h, err := readHeaderAt(seg.f, pos, &hbuf)
		if err != nil {
			return 0, fmt.Errorf("storage: truncating %s: %w", seg.path, err)
		}
		if Offset(h.LastOffset()) >= off {
			break
		}
		pos += int64(h.Size())
		newEnd = Offset(h.LastOffset() + 1)
	}
	if pos == 0 && i > 0 {
		// Nothing of this segment stays: the previous one becomes active.
		i--
		seg = segs[i]
		pos, newEnd = seg.size, seg.next
	}
	if newEnd <= logStart {
		if err := l.truncateAllLocked(off); err != nil {
			return 0, err
		}
		return off, nil
	}
	victims := append([]*segment(nil), segs[i+1:]...)
	{
		// seg becomes the active segment: it must be writable.
		if i < len(segs)-1 {
			w, err := l.fs.OpenReadWrite(seg.path, vfs.WriteCategoryUnspecified)
			if err != nil {
				return 0, l.ioErr("reopening "+seg.path+" to write", err)
			}
			seg.f.repin(w)
		}
		if err := truncateFile(seg.f, pos); errors.Is(err, errCannotTruncate) {
			seg.remnant = true
		} else if err != nil {
			l.failed = fmt.Errorf("truncating %s: %w", seg.path, err)
			return 0, l.ioErr("truncating "+seg.path, err)
		}
		if err := seg.f.Sync(); err != nil {
			l.failed = fmt.Errorf("fsync %s: %w", seg.path, err)
			return 0, l.ioErr("fsync of "+seg.path, err)
		}
	}
	seg.ensureIndexes()
	seg.cacheDropped = min(seg.cacheDropped, pos) // the bytes written past pos next are cached anew
	l.mu.Lock()
	seg.size, seg.next = pos, newEnd
	seg.offIdx = cutOffsetIndex(seg.offIdx, pos)
	seg.timeIdx = cutTimeIndex(seg.timeIdx, seg.base, newEnd)
	seg.maxTs, seg.maxTsAt = -1, -1
	for _, e := range seg.timeIdx {
		seg.maxTs, seg.maxTsAt = e.ts, seg.base+Offset(e.rel)
	}
	if n := len(seg.offIdx); n > 0 {
		seg.sinceIndexed = pos - int64(seg.offIdx[n-1].pos)
	} else {
		seg.sinceIndexed = 0
	}
	l.segs = append(l.segs[:0:0], segs[:i+1]...)
	l.leo = newEnd
	l.durable = min(l.durable, newEnd)
	if l.hw > newEnd {
		l.hw = newEnd
	}
	l.mu.Unlock()
	for _, v := range victims {
		l.fs.Remove(filepath.Join(l.dir, segmentName(v.base, snapshotSuffix)))
	}
	if err := l.removeSegments(victims); err != nil {
		return 0, err
	}
	if err := l.afterTruncateLocked(newEnd); err != nil {
		return 0, err
	}
	l.mu.Lock()
	l.durable = max(l.durable, newEnd) // the fsync above covers it
	l.mu.Unlock()
	return newEnd, nil
}

// truncateAllLocked empties the log and starts it at off. Caller holds
// cleanMu and appendMu.
func (l *Log) truncateAllLocked(off Offset) error {
	l.mu.RLock()
	segs := l.segs
	l.mu.RUnlock()
	path := filepath.Join(l.dir, segmentName(off, logSuffix))
	keep := -1
	for i, s := range segs {
		if s.base == off {
			keep = i
		}
	}
	if keep >= 0 {
		// Its file is replaced by an empty one below.
		l.syncMu.Lock()
		if old := segs[keep]; !old.fileClosed {
			old.fileClosed = true
			old.f.Close()
		}
		l.syncMu.Unlock()
	}
	f, err := l.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return l.ioErr("emptying the log", err)
	}
	if err := writeFileAtomic(l.fs, l.path(logStartCheckpointFile), encodeLogStart(off)); err != nil {
		f.Close()
		return l.ioErr("writing log-start checkpoint", err)
	}
	var victims []*segment
	for i, s := range segs {
		if i != keep {
			victims = append(victims, s)
		}
	}
	l.mu.Lock()
	l.segs = []*segment{newSegment(off, l.files.pinned(l.fs, f, path), path)}
	l.logStart, l.leo, l.durable, l.hw = off, off, off, off
	l.mu.Unlock()
	for _, v := range victims {
		l.fs.Remove(filepath.Join(l.dir, segmentName(v.base, snapshotSuffix)))
	}
	if err := l.removeSegments(victims); err != nil {
		return err
	}
	return l.afterTruncateLocked(off)
}

// afterTruncateLocked forgets leader epochs starting at or past end and
// rebuilds producer state from the batches below it. Caller holds
// appendMu.
func (l *Log) afterTruncateLocked(end Offset) error {
	n := len(l.epochs)
	for len(l.epochs) > 0 && l.epochs[len(l.epochs)-1].start >= end {
		l.epochs = l.epochs[:len(l.epochs)-1]
	}
	if len(l.epochs) != n {
		if err := l.writeEpochsLocked(); err != nil {
			l.epochsUnsaved = true
			l.opts.Logger.Warn("storage: writing leader-epoch checkpoint after truncation", "dir", l.dir, "err", err)
		}
	}
	// Producer and transaction state: replay every remaining batch header
	// (and marker), as recovery does. Truncation is rare (a leader change
	// with a divergent tail), so the full replay is affordable and needs no
	// snapshot below end.
	l.mu.RLock()
	segs := l.segs
	l.mu.RUnlock()
	l.producers = map[int64]*producerState{}
	l.txn.mu.Lock()
	l.txn.open, l.txn.aborted = map[int64]Offset{}, nil
	l.txn.mu.Unlock()
	for _, s := range segs {
		if _, err := scanSegment(s.f, 0, s.size, s.base, false, 0, func(h batch.Header, pos int64) error {
			recordProducer(l.producers, h)
			return l.recoverTxn(s, h, pos)
		}); err != nil {
			return err
		}
	}
	return nil
}

func cutOffsetIndex(idx []offsetEntry, pos int64) []offsetEntry {
	n := sort.Search(len(idx), func(i int) bool { return int64(idx[i].pos) >= pos })
	return idx[:n:n]
}

func cutTimeIndex(idx []timeEntry, base, end Offset) []timeEntry {
	n := sort.Search(len(idx), func(i int) bool { return base+Offset(idx[i].rel) >= end })
	return idx[:n:n]
}

// SetHighWatermarkLimit caps the high watermark at limit: a replicated
// partition's leader passes the smallest durable end among its in-sync
// followers, a follower its leader's high watermark. The high watermark
// then moves to the smaller of limit and what this log holds (under
// SyncGroupCommit its fsynced end, else its end offset), never backwards.
func (l *Log) SetHighWatermarkLimit(limit Offset) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hwLimited, l.hwLimit = true, limit
	local := l.leo
	if l.opts.Sync == SyncGroupCommit {
		local = l.durable
	}
	l.advanceHWLocked(min(local, limit))
}

// SetFollowerHighWatermark is SetHighWatermarkLimit for a follower, which
// takes its leader's high watermark as it is: the high watermark becomes
// the smaller of leaderHW and what this log holds, lower than before if
// need be. A follower serves no consumer, and a reopened log's high
// watermark is its end until its leader says otherwise: were this replica
// elected later, it must not count as committed what it only held.
func (l *Log) SetFollowerHighWatermark(leaderHW Offset) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hwLimited, l.hwLimit = true, leaderHW
	local := l.leo
	if l.opts.Sync == SyncGroupCommit {
		local = l.durable
	}
	if hw := min(local, leaderHW); hw < l.hw {
		l.hw = hw
	} else {
		l.advanceHWLocked(hw)
	}
}

// ClearHighWatermarkLimit lifts SetHighWatermarkLimit's cap: the high
// watermark is again what this log alone holds.
func (l *Log) ClearHighWatermarkLimit() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hwLimited = false
	local := l.leo
	if l.opts.Sync == SyncGroupCommit {
		local = l.durable
	}
	l.advanceHWLocked(local)
}

// DurableEnd returns the end of what an fsync covers (under the policies
// other than SyncGroupCommit, the log end offset: they promise no more).
func (l *Log) DurableEnd() Offset {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.opts.Sync != SyncGroupCommit {
		return l.leo
	}
	return l.durable
}

// Appended returns a channel closed when the log end offset next advances:
// a leader's fetch from a follower waits on it, since the follower reads
// past the high watermark.
func (l *Log) Appended() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.appended == nil {
		l.appended = make(chan struct{})
	}
	return l.appended
}

// notifyAppendedLocked wakes Appended's waiters. Caller holds mu.
func (l *Log) notifyAppendedLocked() {
	if l.appended != nil {
		close(l.appended)
		l.appended = nil
	}
}

// ReadReplica is Read for a follower: it reads up to the log end offset,
// past the high watermark.
func (l *Log) ReadReplica(from Offset, maxBytes int) ([]byte, error) {
	return l.readInto(nil, from, maxBytes, true)
}

// ReadReplicaInto is ReadInto past the high watermark, as ReadReplica.
func (l *Log) ReadReplicaInto(dst []byte, from Offset, maxBytes int) ([]byte, error) {
	return l.readInto(dst, from, maxBytes, true)
}

// ReadReplicaRange is ReadRange past the high watermark, as ReadReplica.
//
// NB: the range's bytes are read when they are sent, not now. Only a
// leader that loses its leadership rewrites bytes past its high watermark
// (truncating, then appending its new leader's batches), so a range sent
// across such a rewrite holds either the new leader's whole batches or
// bytes that AppendReplica refuses (it validates every batch): a follower
// stores nothing that no leader wrote.
func (l *Log) ReadReplicaRange(from Offset, maxBytes, minBytes int) (FileRange, bool, error) {
	return l.readRange(from, maxBytes, minBytes, true)
}

// LatestEpoch returns the leader epoch of the log's last batch, or -1 for a
// log that has none.
func (l *Log) LatestEpoch() Epoch {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if n := len(l.epochs); n > 0 {
		return l.epochs[n-1].epoch
	}
	return -1
}

// WaitHighWatermark waits until the high watermark reaches end, until stop
// is closed (ErrClosed), or until ctx ends (ctx's error).
func (l *Log) WaitHighWatermark(ctx context.Context, end Offset, stop <-chan struct{}) error {
	for {
		l.mu.RLock()
		hw, ch, serr := l.hw, l.changed, l.syncErr
		l.mu.RUnlock()
		if hw >= end {
			return nil
		}
		if serr != nil {
			return fmt.Errorf("%w: fsync failed: %w", ErrStorage, serr)
		}
		select {
		case <-ch:
		case <-stop:
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
