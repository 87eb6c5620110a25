package storage

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
)

// Clean runs one retention and compaction pass, as the partition's
// cleanup.policy asks: sealed segments below the log start offset are
// deleted; with delete (or compact,delete), sealed segments past retention.ms
// or beyond retention.bytes are deleted and the log start offset advances;
// with compact (or compact,delete), sealed segments are compacted. The
// active segment is never deleted nor compacted. The broker calls Clean
// periodically from one goroutine; Close waits for a running Clean, which
// stops early when ctx ends or the log is closing.
func (l *Log) Clean(ctx context.Context) error {
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	if l.closing.Load() {
		return ErrClosed
	}
	if err := l.retainLocked(); err != nil {
		return err
	}
	if l.Config().Cleanup.compacts() {
		return l.compactLocked(ctx)
	}
	return nil
}

// CleanerStats returns counters of the work Clean and DeleteRecordsBefore
// have done since the log was opened.
func (l *Log) CleanerStats() CleanerStats {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	return l.cleanerStats
}

// DeleteRecordsBefore advances the log start offset to off (the
// DeleteRecords API); -1 means the last stable offset (the high watermark
// unless a transaction is open). Offsets past the high watermark, or past
// the first offset of an open transaction, get ErrOffsetOutOfRange: the
// records of an open transaction stay until it ends, so that its first
// offset (which holds the last stable offset) is never below the log
// start. Segments wholly below the new start
// are deleted now if no Clean is running, else by the next Clean. It
// returns the log start offset.
func (l *Log) DeleteRecordsBefore(off Offset) (Offset, error) {
	l.appendMu.Lock()
	if l.closed {
		l.appendMu.Unlock()
		return 0, ErrClosed
	}
	l.mu.RLock()
	hw, start := l.hw, l.logStart
	l.mu.RUnlock()
	// NB: appendMu orders this with trackTxnLocked: no transaction opens
	// below stable meanwhile.
	stable := min(hw, l.firstUnstable())
	if off == -1 {
		off = stable
	}
	if off < 0 || off > hw {
		l.appendMu.Unlock()
		return start, fmt.Errorf("%w: delete records before %d, high watermark %d", ErrOffsetOutOfRange, off, hw)
	}
	if off > stable {
		l.appendMu.Unlock()
		return start, fmt.Errorf("%w: delete records before %d, past offset %d where an open transaction starts (records of an open transaction stay until it ends)", ErrOffsetOutOfRange, off, stable)
	}
	if off <= start {
		l.appendMu.Unlock()
		return start, nil
	}
	if err := l.setLogStartLocked(off); err != nil {
		if !IsDiskFull(err) {
			l.appendMu.Unlock()
			return start, err
		}
		l.appendMu.Unlock()
		return l.deleteRecordsOnFullDisk(off, err)
	}
	l.appendMu.Unlock()
	if l.cleanMu.TryLock() {
		defer l.cleanMu.Unlock()
		if !l.closing.Load() {
			if err := l.retainLocked(); err != nil {
				return off, err
			}
		}
	}
	return off, nil
}

// deleteRecordsOnFullDisk is DeleteRecordsBefore(off) once writing the
// log-start checkpoint failed with a full disk (fullErr). It frees what
// needs no checkpoint, the whole segments below the one holding off (as
// retention does: the first remaining segment then marks the start), and
// tries the checkpoint once more in the space that gave back. If that fails
// too, the start stays at that segment's base and the error is returned; a
// retry by the client may succeed.
func (l *Log) deleteRecordsOnFullDisk(off Offset, fullErr error) (Offset, error) {
	l.appendMu.Lock()
	l.mu.RLock()
	segs, start := l.segs, l.logStart
	l.mu.RUnlock()
	i := sort.Search(len(segs), func(i int) bool { return segs[i].base > off }) - 1
	moved := false
	if i > 0 && segs[i].base > start && !l.closed {
		l.opts.Logger.Warn("storage: disk full: DeleteRecords first deletes the whole segments below the one holding its offset",
			"dir", l.dir, "offset", off, "segment", segs[i].base, "err", fullErr)
		l.moveLogStartLocked(segs[i].base)
		moved = true
	}
	l.appendMu.Unlock()
	if moved && l.cleanMu.TryLock() {
		var err error
		if !l.closing.Load() {
			err = l.retainLocked()
		}
		l.cleanMu.Unlock()
		if err != nil {
			return l.LogStartOffset(), err
		}
	}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return l.LogStartOffset(), ErrClosed
	}
	if start := l.LogStartOffset(); off <= start {
		return start, nil
	}
	if err := l.setLogStartLocked(off); err != nil {
		return l.LogStartOffset(), err
	}
	return off, nil
}

// setLogStartLocked durably moves the log start offset forward and forgets
// producer and epoch state below it. Caller holds appendMu.
func (l *Log) setLogStartLocked(off Offset) error {
	if err := writeFileAtomic(l.fs, l.path(logStartCheckpointFile), encodeLogStart(off)); err != nil {
		return l.ioErr("writing log-start checkpoint", err)
	}
	l.moveLogStartLocked(off)
	return nil
}

// moveLogStartLocked moves the log start offset forward in memory and
// forgets producer and epoch state below it. Caller holds appendMu.
func (l *Log) moveLogStartLocked(off Offset) {
	l.mu.Lock()
	l.logStart = off
	l.mu.Unlock()
	for id, p := range l.producers {
		if p.lastOffset() < off && !p.txnOpen {
			delete(l.producers, id)
		}
	}
	// Keep the epoch in force at off, starting at off.
	i := 0
	for i+1 < len(l.epochs) && l.epochs[i+1].start <= off {
		i++
	}
	if i > 0 || (len(l.epochs) > 0 && l.epochs[0].start < off) {
		l.epochs = append(l.epochs[:0], l.epochs[i:]...)
		if l.epochs[0].start < off {
			l.epochs[0].start = off
		}
		if err := l.writeEpochsLocked(); err != nil {
			l.epochsUnsaved = true // the next append tries again first
			l.opts.Logger.Warn("storage: writing leader-epoch checkpoint", "dir", l.dir, "err", err)
		}
	}
}

// retainLocked deletes the sealed segments that are below the log start
// offset or, under a delete policy, past retention.ms or retention.bytes.
// Caller holds cleanMu.
func (l *Log) retainLocked() error {
	l.appendMu.Lock()
	if l.closed {
		l.appendMu.Unlock()
		return ErrClosed
	}
	l.mu.RLock()
	cfg, segs, start := l.cfg, l.segs, l.logStart
	l.mu.RUnlock()
	nowMS := l.opts.Now().UnixMilli()
	var total int64
	for _, s := range segs {
		total += s.size
	}
	n := 0
	hold := l.firstUnstable() // an open transaction's records stay
	for _, s := range segs[:len(segs)-1] {
		if s.next > hold {
			break
		}
		if s.size == 0 && s.base >= start && !cfg.Cleanup.deletes() {
			// Emptied by compaction: deleting it would move the log
			// start (an open takes the first segment's base), and
			// compaction never moves it.
			break
		}
		expired := cfg.Cleanup.deletes() && cfg.RetentionMS >= 0 && s.maxTs >= 0 && nowMS-s.maxTs > cfg.RetentionMS
		oversize := cfg.Cleanup.deletes() && cfg.RetentionBytes >= 0 && total-s.size >= cfg.RetentionBytes
		if s.next > start && !expired && !oversize {
			break
		}
		total -= s.size
		n++
	}
	if n == 0 {
		l.appendMu.Unlock()
		return nil
	}
	victims := segs[:n]
	if newStart := segs[n].base; newStart > start {
		if err := l.setLogStartLocked(newStart); err != nil {
			if !IsDiskFull(err) {
				l.appendMu.Unlock()
				return err
			}
			// NB: retention removes whole segments, so once they are
			// deleted the first remaining segment's base is the start
			// with or without the checkpoint (a crash before the deletion
			// only brings back segments the next Clean deletes again).
			// This is how a full disk gets its space back.
			l.opts.Logger.Warn("storage: disk full: retention deletes segments without rewriting the log-start checkpoint",
				"dir", l.dir, "start", newStart, "err", err)
			l.moveLogStartLocked(newStart)
		}
	}
	l.mu.Lock()
	l.segs = append([]*segment(nil), l.segs[n:]...)
	l.mu.Unlock()
	l.cleanerStats.SegmentsDeleted += n
	l.appendMu.Unlock()
	return l.removeSegments(victims)
}

// removeSegments closes and deletes segments already taken out of l.segs,
// and makes the deletion durable.
func (l *Log) removeSegments(victims []*segment) error {
	err := l.closeAndRemove(victims)
	l.removeTxnIndexes(victims)
	if serr := syncDir(l.fs, l.dir); serr != nil && err == nil {
		err = fmt.Errorf("storage: deleting segments in %s: %w", l.dir, serr)
	}
	return err
}

// closeAndRemove closes and deletes the files of segments already taken out
// of l.segs, without syncing the directory.
func (l *Log) closeAndRemove(victims []*segment) error {
	l.syncMu.Lock()
	for _, s := range victims {
		if !s.fileClosed {
			s.fileClosed = true
			s.f.Close()
		}
	}
	l.syncMu.Unlock()
	var firstErr error
	for _, s := range victims {
		for _, suffix := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
			if err := l.fs.Remove(filepath.Join(l.dir, segmentName(s.base, suffix))); err != nil && firstErr == nil && !isNotExist(err) {
				firstErr = err
			}
		}
	}
	if firstErr != nil {
		return fmt.Errorf("storage: deleting segments in %s: %w", l.dir, firstErr)
	}
	return nil
}
