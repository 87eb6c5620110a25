package storage

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/weir-dev/weir/broker/internal/batch"
)

// Open opens (creating if needed) the partition log in dir and recovers it:
// leftovers of an interrupted write or compaction are removed or completed,
// the active segment is checked batch by batch (CRC included) and truncated
// at the first invalid batch, sealed segments' indexes are checked and
// rebuilt when missing or stale, and producer and leader-epoch state is
// rebuilt. opts is copied before defaults are filled.
func Open(dir string, opts Options) (*Log, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	l := &Log{
		dir:       dir,
		opts:      opts,
		fs:        opts.FS,
		cfg:       opts.Config,
		files:     opts.FileCache,
		producers: map[int64]*producerState{},
		// Unknown until a first pass: let it run.
		tombstoneExpiry: math.MinInt64,
		changed:         make(chan struct{}),
		durableCh:       make(chan struct{}),
		syncReq:         make(chan struct{}, 1),
		stop:            make(chan struct{}),
	}
	if l.files == nil {
		l.files = NewFileCache(DefaultOpenSegmentFiles)
	}
	if err := l.recover(); err != nil {
		for _, s := range l.segs {
			s.f.Close()
		}
		return nil, err
	}
	switch opts.Sync {
	case SyncGroupCommit:
		l.wg.Add(1)
		go l.syncLoop()
	case SyncInterval:
		l.wg.Add(1)
		go l.intervalLoop()
	}
	return l, nil
}

func (l *Log) path(name string) string { return filepath.Join(l.dir, name) }

func (l *Log) recover() error {
	fs := l.fs
	if err := mkdirAllDurable(fs, l.dir); err != nil {
		return fmt.Errorf("storage: create %s: %w", l.dir, err)
	}
	names, err := listDir(fs, l.dir)
	if err != nil {
		return fmt.Errorf("storage: list %s: %w", l.dir, err)
	}
	// 1. Leftovers of interrupted atomic writes and compactions.
	dirty := false
	for _, n := range names {
		if strings.HasSuffix(n, tmpSuffix) || strings.HasSuffix(n, cleanedSuffix) {
			if err := fs.Remove(l.path(n)); err != nil {
				return fmt.Errorf("storage: remove leftover %s: %w", n, err)
			}
			dirty = true
		}
	}
	// 2. Committed compaction swaps: finish them.
	for _, n := range names {
		base, end, ok := parseSwapName(n)
		if !ok {
			continue
		}
		for _, m := range names {
			b, ok := parseBase(m)
			if !ok || b < base || b >= end || m == n || strings.HasSuffix(m, swapSuffix) || strings.HasSuffix(m, snapshotSuffix) {
				continue
			}
			if strings.HasSuffix(m, logSuffix) || strings.HasSuffix(m, indexSuffix) || strings.HasSuffix(m, timeIndexSuffix) {
				if err := fs.Remove(l.path(m)); err != nil && !isNotExist(err) {
					return fmt.Errorf("storage: finish swap %s: %w", n, err)
				}
			}
		}
		if err := fs.Rename(l.path(n), l.path(segmentName(base, logSuffix))); err != nil {
			return fmt.Errorf("storage: finish swap %s: %w", n, err)
		}
		l.opts.Logger.Info("storage: finished an interrupted compaction swap", "dir", l.dir, "swap", n)
		dirty = true
	}
	if dirty {
		if err := syncDir(fs, l.dir); err != nil {
			return fmt.Errorf("storage: sync %s: %w", l.dir, err)
		}
		if names, err = listDir(fs, l.dir); err != nil {
			return fmt.Errorf("storage: list %s: %w", l.dir, err)
		}
	}

	// 3. Checkpoints. The clean-shutdown marker is consumed at once: from
	// here on a crash must not find it.
	cleanBase, cleanSize := Offset(-1), int64(-1)
	var cleanSealed map[Offset]sealedSummary
	if data, err := readFile(fs, l.path(cleanShutdownFile)); err == nil {
		if b, sz, sealed, err := decodeCleanShutdown(data); err == nil {
			cleanBase, cleanSize, cleanSealed = b, sz, sealed
		} else {
			l.opts.Logger.Warn("storage: ignoring clean-shutdown marker", "dir", l.dir, "err", err)
		}
		if err := fs.Remove(l.path(cleanShutdownFile)); err != nil {
			return fmt.Errorf("storage: remove %s: %w", cleanShutdownFile, err)
		}
		if err := syncDir(fs, l.dir); err != nil {
			return fmt.Errorf("storage: sync %s: %w", l.dir, err)
		}
	}
	// Without the marker (a crash or kill), the recovery-point checkpoint
	// vouches for the sealed segments below its point.
	if cleanSealed == nil {
		if data, err := readFile(fs, l.path(recoveryPointFile)); err == nil {
			if _, sealed, err := decodeRecoveryPoint(data); err == nil {
				cleanSealed = sealed
			} else {
				l.opts.Logger.Warn("storage: ignoring recovery-point checkpoint", "dir", l.dir, "err", err)
			}
		}
	}
	var ckStart Offset
	if data, err := readFile(fs, l.path(logStartCheckpointFile)); err == nil {
		if ckStart, err = decodeLogStart(data); err != nil {
			l.opts.Logger.Warn("storage: ignoring log-start checkpoint", "dir", l.dir, "err", err)
			ckStart = 0
		}
	}
	epochData, epochErr := readFile(fs, l.path(epochCheckpointFile))
	if epochErr == nil {
		var err error
		if l.epochs, err = decodeEpochs(epochData); err != nil {
			l.opts.Logger.Warn("storage: ignoring leader-epoch checkpoint", "dir", l.dir, "err", err)
			l.epochs = nil
		}
	}

	// 4. Segments.
	var bases, snaps []Offset
	for _, n := range names {
		b, ok := parseBase(n)
		if !ok || len(n) < 21 {
			continue
		}
		switch n[20:] {
		case logSuffix:
			bases = append(bases, b)
		case snapshotSuffix:
			snaps = append(snaps, b)
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	// Index files whose segment is gone (a deletion interrupted by a crash).
	haveLog := map[Offset]bool{}
	for _, b := range bases {
		haveLog[b] = true
	}
	for _, n := range names {
		if b, ok := parseBase(n); ok && len(n) > 20 && (n[20:] == indexSuffix || n[20:] == timeIndexSuffix || n[20:] == txnIndexSuffix) && !haveLog[b] {
			if err := fs.Remove(l.path(n)); err != nil {
				return fmt.Errorf("storage: remove orphan %s: %w", n, err)
			}
		}
	}
	if len(bases) == 0 {
		path := l.path(segmentName(ckStart, logSuffix))
		f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
		if err != nil {
			return fmt.Errorf("storage: create %s: %w", path, err)
		}
		if err := syncDir(fs, l.dir); err != nil {
			f.Close()
			return fmt.Errorf("storage: sync %s: %w", l.dir, err)
		}
		l.segs = []*segment{newSegment(ckStart, l.files.pinned(fs, f, path), path)}
	}
	minNext := Offset(0)
	for i, base := range bases {
		if base < minNext {
			// Only a compaction swap whose deletions a crash undid can
			// leave this: the compacted segment before it already holds
			// the survivors of its records.
			l.opts.Logger.Warn("storage: removing a segment overlapping its predecessor", "dir", l.dir, "base", base, "previous end", minNext)
			for _, suffix := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
				if err := fs.Remove(l.path(segmentName(base, suffix))); err != nil && !isNotExist(err) {
					return fmt.Errorf("storage: remove overlapping segment %d: %w", base, err)
				}
			}
			if err := syncDir(fs, l.dir); err != nil {
				return fmt.Errorf("storage: sync %s: %w", l.dir, err)
			}
			continue
		}
		last := i == len(bases)-1
		// A listed sealed segment, if it still looks as listed: its file
		// has the listed size (stat only), and its offsets follow its
		// predecessor's and end by its successor's base.
		if sum, ok := cleanSealed[base]; ok && !last && sum.next >= minNext && sum.next <= bases[i+1] {
			if s, ok := l.sealedFromSummary(base, sum); ok {
				l.segs = append(l.segs, s)
				minNext = s.next
				continue
			}
		}
		s, err := l.openSegment(base, minNext, last, last && base == cleanBase, cleanSize)
		if err != nil {
			return err
		}
		if !last {
			s.f.unpin(s.path)
		}
		l.segs = append(l.segs, s)
		minNext = s.next
	}
	active := l.segs[len(l.segs)-1]
	// After a crash the recovered bytes may sit unsynced in the page
	// cache: make them durable before they count as written. After a clean
	// stop Close synced them (the marker is written only then).
	if active.base != cleanBase || active.size != cleanSize {
		if err := active.f.Sync(); err != nil {
			return fmt.Errorf("storage: fsync %s: %w", active.path, err)
		}
	}
	if active.size > 0 {
		active.firstAppendMS = l.opts.Now().UnixMilli()
	}
	if ckStart > active.next {
		// DeleteRecords moved the start past records a crash then took
		// (possible only without group commit). Never reuse those offsets:
		// start a new segment at the log start.
		path := l.path(segmentName(ckStart, logSuffix))
		f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
		if err != nil {
			return fmt.Errorf("storage: create %s: %w", path, err)
		}
		if err := syncDir(fs, l.dir); err != nil {
			f.Close()
			return fmt.Errorf("storage: sync %s: %w", l.dir, err)
		}
		active = newSegment(ckStart, l.files.pinned(fs, f, path), path)
		l.segs = append(l.segs, active)
	}
	l.leo = active.next
	l.hw, l.durable = l.leo, l.leo
	l.logStart = max(ckStart, l.segs[0].base)

	// 5. Leader epochs: forget epochs that start past the recovered end,
	// then learn epochs from the batches kept in the active segment.
	for len(l.epochs) > 0 && l.epochs[len(l.epochs)-1].start >= l.leo {
		l.epochs = l.epochs[:len(l.epochs)-1]
	}
	epochsChanged := false
	if _, err := scanSegment(active.f, 0, active.size, active.base, false, 0, func(h batch.Header, _ int64) error {
		if n := len(l.epochs); n == 0 || Epoch(h.PartitionLeaderEpoch) > l.epochs[n-1].epoch {
			l.epochs = append(l.epochs, epochEntry{Epoch(h.PartitionLeaderEpoch), Offset(h.BaseOffset)})
			epochsChanged = true
		}
		return nil
	}); err != nil {
		return err
	}
	// Rewrite the checkpoint only when it no longer says what the log
	// holds (epochs dropped past the recovered end, or learned from the
	// active segment): opening must not need a free block. On a full disk
	// the rewrite waits for the next append, which does it before writing
	// any batch.
	if (epochsChanged || epochErr == nil) && !bytes.Equal(encodeEpochs(l.epochs), epochData) {
		if err := l.writeEpochsLocked(); err != nil {
			if !isNoSpace(err) {
				return fmt.Errorf("storage: write leader-epoch checkpoint: %w", err)
			}
			l.epochsUnsaved = true
			l.opts.Logger.Warn("storage: disk full: leader-epoch checkpoint not rewritten at open; the next append writes it first",
				"dir", l.dir, "err", err)
		}
	}

	// 6. Producer state: the newest snapshot at or below the active
	// segment's base, then the batches after it.
	sort.Slice(snaps, func(i, j int) bool { return snaps[i] > snaps[j] })
	from := Offset(-1)
	for _, sb := range snaps {
		if sb > active.base || sb < l.segs[0].base {
			continue
		}
		data, err := readFile(fs, l.path(segmentName(sb, snapshotSuffix)))
		if err == nil {
			var m map[int64]*producerState
			if m, err = decodeProducers(data); err == nil {
				l.producers, from = m, sb
				break
			}
		}
		l.opts.Logger.Warn("storage: ignoring producer snapshot", "dir", l.dir, "base", sb, "err", err)
	}
	// The aborted-transaction indexes present (most segments have none):
	// only those are read.
	txnIndexes := map[Offset]bool{}
	for _, n := range names {
		if b, ok := parseBase(n); ok && len(n) > 20 && n[20:] == txnIndexSuffix {
			txnIndexes[b] = true
		}
	}
	if err := l.beginTxnRecovery(from, txnIndexes); err != nil {
		return err
	}
	for _, s := range l.segs {
		if s.next <= from {
			continue
		}
		if _, err := scanSegment(s.f, 0, s.size, s.base, false, 0, func(h batch.Header, pos int64) error {
			if Offset(h.BaseOffset) >= from {
				recordProducer(l.producers, h)
				return l.recoverTxn(s, h, pos)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// openSegment opens the segment at base and finds its extent. The active
// segment is checked fully and truncated at its first bad batch. A sealed
// segment whose index files look right is checked from its last index entry
// on; otherwise it is checked fully, truncated if need be, and its indexes
// rebuilt.
//
// After a clean shutdown (cleanActive: the marker names this active
// segment) the active segment is treated as sealed if its size is the one
// recorded.
//
// Only the active segment is opened for writing: a sealed segment is never
// written again (compaction writes new files), so it is opened read-only,
// and a truncation found necessary goes through a short-lived writable
// handle.
func (l *Log) openSegment(base, minNext Offset, active, cleanActive bool, cleanSize int64) (*segment, error) {
	path := l.path(segmentName(base, logSuffix))
	var f vfs.File
	var err error
	if active {
		f, err = l.fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
	} else {
		f, err = l.fs.Open(path)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	fileSize, err := sizeOf(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("storage: size of %s: %w", path, err)
	}
	s := newSegment(base, l.files.pinned(l.fs, f, path), path)
	interval := l.cfg.IndexIntervalBytes
	if (!active || (cleanActive && cleanSize == fileSize)) && l.loadIndexes(s, fileSize) == nil {
		if n := len(s.offIdx); n > 0 {
			s.sinceIndexed = s.size - int64(s.offIdx[n-1].pos)
		}
		return s, nil
	}
	// Full check, rebuilding the indexes.
	s.offIdx, s.timeIdx, s.sinceIndexed, s.maxTs = nil, nil, 0, -1
	// The active segment was never compacted: its offsets are contiguous
	// from its base, and its leader epochs never decrease nor pass the
	// newest epoch checkpointed (the checkpoint is durable before a batch
	// of a new epoch is written). These catch damage to the two header
	// fields outside the CRC.
	next, epoch := base, Epoch(-1)
	maxEpoch := Epoch(math.MaxInt32)
	if n := len(l.epochs); n > 0 {
		maxEpoch = l.epochs[n-1].epoch
	}
	res, err := scanSegment(f, 0, fileSize, max(base, minNext), true, l.opts.CleanerBufferBytes, func(h batch.Header, pos int64) error {
		if active {
			if Offset(h.BaseOffset) != next {
				return fmt.Errorf("storage: batch at %d has base offset %d, want %d", pos, h.BaseOffset, next)
			}
			e := Epoch(h.PartitionLeaderEpoch)
			if e < epoch || e > maxEpoch {
				return fmt.Errorf("storage: batch at %d has leader epoch %d outside [%d, %d]", pos, e, epoch, maxEpoch)
			}
			next, epoch = Offset(h.LastOffset()+1), e
		}
		s.indexBatchLocked(h, pos, interval)
		return nil
	})
	if err != nil {
		f.Close()
		return nil, err
	}
	if res.corrupt != nil {
		l.opts.Logger.Warn("storage: truncating segment at its first invalid batch",
			"segment", path, "at", res.end, "size", fileSize, "reason", res.corrupt)
		if err := l.truncateSegmentFile(f, active, path, res.end); errors.Is(err, errCannotTruncate) {
			s.remnant = true
		} else if err != nil {
			f.Close()
			return nil, err
		}
	}
	s.size = res.end
	if !active {
		if err := s.writeIndexes(l.fs, l.dir, true); err != nil {
			if !isNoSpace(err) {
				f.Close()
				return nil, fmt.Errorf("storage: rebuild indexes of %s: %w", path, err)
			}
			// Indexes are hints: the rebuilt ones serve from memory, and
			// the next open checks (and rebuilds) the files again.
			l.opts.Logger.Warn("storage: disk full: rebuilt indexes kept in memory only", "segment", path, "err", err)
		}
	}
	return s, nil
}

// sealedFromSummary returns the sealed segment at base as a clean
// shutdown's marker describes it, if its file has the size listed: the
// file is not opened (the FileCache opens it on its first read) and its
// index files are read on first use (segment.ensureIndexes).
func (l *Log) sealedFromSummary(base Offset, sum sealedSummary) (*segment, bool) {
	path := l.path(segmentName(base, logSuffix))
	fi, err := l.fs.Stat(path)
	if err != nil || fi.Size() != sum.size {
		return nil, false
	}
	s := newSegment(base, l.files.closed(l.fs, path), path)
	s.size, s.next, s.maxTs, s.maxTsAt = sum.size, sum.next, sum.maxTs, Offset(sum.maxTsAt)
	s.lazy.Store(&lazyIndexes{fs: l.fs, dir: l.dir, interval: l.cfg.IndexIntervalBytes, logger: l.opts.Logger})
	return s, true
}

// truncateSegmentFile cuts the segment file at path to size and fsyncs it:
// through f when it is writable (the active segment), else through a
// writable handle opened for the purpose. f sees the new size either way.
// It returns errCannotTruncate, having changed nothing, where the
// filesystem cannot cut the file (see truncateFile).
func (l *Log) truncateSegmentFile(f vfs.File, writable bool, path string, size int64) error {
	w := f
	if !writable {
		var err error
		if w, err = l.fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified); err != nil {
			return fmt.Errorf("storage: open %s to truncate it: %w", path, err)
		}
		defer w.Close()
	}
	if err := truncateFile(w, size); errors.Is(err, errCannotTruncate) {
		return err
	} else if err != nil {
		return fmt.Errorf("storage: truncate %s: %w", path, err)
	}
	if err := w.Sync(); err != nil {
		return fmt.Errorf("storage: fsync %s: %w", path, err)
	}
	return nil
}

// loadIndexes reads a sealed segment's index files and checks them against
// the log: the batch at the last offset entry and every batch after it must
// be sound and end exactly at the file's end. On success s describes the
// segment.
func (l *Log) loadIndexes(s *segment, fileSize int64) error {
	off, tim, err := readIndexFiles(l.fs, l.dir, s.base, fileSize)
	if err != nil || fileSize == 0 {
		return err
	}
	last := off[len(off)-1]
	s.offIdx, s.timeIdx = off, tim
	if n := len(tim); n > 0 {
		s.maxTs = tim[n-1].ts
	}
	first := true
	var mismatch error
	res, err := scanSegment(s.f, int64(last.pos), fileSize, s.base+Offset(last.rel), false, 0, func(h batch.Header, pos int64) error {
		if first && Offset(h.BaseOffset) != s.base+Offset(last.rel) {
			mismatch = fmt.Errorf("storage: last index entry names offset %d, batch has %d", s.base+Offset(last.rel), h.BaseOffset)
		}
		first = false
		s.maxTs = max(s.maxTs, h.MaxTimestamp)
		s.size = pos + int64(h.Size())
		s.next = Offset(h.LastOffset() + 1)
		return nil
	})
	if err != nil {
		return err
	}
	if mismatch != nil {
		return mismatch
	}
	if res.corrupt != nil {
		return res.corrupt
	}
	if s.size != fileSize {
		return fmt.Errorf("storage: batches end at %d, file at %d", s.size, fileSize)
	}
	// sinceIndexed only matters for the active segment.
	return nil
}
