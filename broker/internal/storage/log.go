package storage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/weir-dev/weir/broker/internal/batch"
)

// Log is one partition's log: a directory of segments.
//
// Lock order: cleanMu, then appendMu, then syncMu, then mu. Appends are
// serialized by appendMu and touch mu only briefly to publish what they
// wrote; reads take mu for reading for the length of a lookup and a pread.
type Log struct {
	dir  string
	opts Options
	fs   vfs.FS
	// files holds the sealed segments' files open within a bound.
	files *FileCache

	// cleanMu serializes Clean, segment deletion and Close.
	cleanMu sync.Mutex
	closing atomic.Bool

	// appendMu serializes everything that writes: appends, rolls,
	// truncation, segment swaps and deletions, checkpoints.
	appendMu sync.Mutex
	// The fields below are guarded by appendMu.
	producers map[int64]*producerState
	epochs    []epochEntry
	// epochsUnsaved is set when the leader-epoch checkpoint on disk does
	// not match epochs (a full disk refused the rewrite); the next append
	// writes it before any batch.
	epochsUnsaved bool
	// ckptSkip are sealed segments the recovery-point checkpoint must not
	// list: a compaction is replacing them. The swap clears it; a
	// compaction that fails before its swap leaves it, which only makes an
	// open after a crash check those segments.
	ckptSkip []*segment
	// failed is set when an I/O error leaves the log's files in an unknown
	// state; appends are refused until the log is reopened.
	failed error
	closed bool
	// bytes of sealed segments deleted or cleaned since open, for tests and
	// metrics.
	cleanerStats CleanerStats

	// txn is the transaction state readers need (txn.go); its own lock.
	txn txnState

	// Guarded by cleanMu: the end of the sealed segments the last
	// compaction pass covered, and when (Unix ms) the first tombstone or
	// marker it kept may be removed (math.MaxInt64: none).
	compactedThrough Offset
	tombstoneExpiry  int64

	// syncMu is held by the syncer around an fsync and by whoever closes a
	// segment's file, so an fsync never meets a closed file.
	syncMu sync.Mutex

	// mu guards the fields below.
	mu   sync.RWMutex
	cfg  Config
	segs []*segment // ordered by base; the last is the active segment
	// Invariant: logStart <= hw <= leo; durable <= leo.
	logStart Offset
	hw       Offset
	leo      Offset
	durable  Offset // end of what an fsync covers
	syncErr  error  // sticky: the fsync that failed
	// changed is closed and replaced when hw advances.
	changed chan struct{}
	// durableCh is closed and replaced when durable advances or syncErr
	// is set.
	durableCh chan struct{}
	// hwLimited caps hw at hwLimit (a replicated partition: see
	// SetHighWatermarkLimit, follower.go).
	hwLimited bool
	hwLimit   Offset
	// appended, when not nil, is closed when leo advances (Appended).
	appended chan struct{}

	syncReq chan struct{}
	stop    chan struct{}
	wg      sync.WaitGroup
}

// CleanerStats counts the work of Clean since the log was opened.
type CleanerStats struct {
	// SegmentsDeleted counts segments removed by retention or DeleteRecords.
	SegmentsDeleted int
	// BytesRead and BytesWritten count compaction I/O.
	BytesRead, BytesWritten int64
	// Passes counts compaction passes that rewrote segments.
	Passes int
}

// AppendResult describes an append.
type AppendResult struct {
	// BaseOffset and LastOffset are the offsets of the first and last
	// record appended (or, for a Duplicate, originally appended).
	BaseOffset, LastOffset Offset
	// LogAppendTime is the time Append wrote into the batches under
	// Config.LogAppendTime, else -1.
	LogAppendTime int64
	// LogStartOffset is the log start offset at the time of the append.
	LogStartOffset Offset
	// Duplicate is set when every batch was an idempotent producer's retry
	// of a batch already in the log: nothing was written.
	Duplicate bool
}

// Dir returns the partition's directory.
func (l *Log) Dir() string { return l.dir }

// Append appends one produce payload for this partition: one or more
// concatenated RecordBatch v2 batches as a producer sends them. Every batch
// is validated (batch.ValidateProduced, max.message.bytes, idempotent
// producer sequence and epoch) before anything is written; if one fails,
// nothing is. Offsets are assigned by patching each batch's baseOffset and
// partitionLeaderEpoch in place: Append modifies batches.
//
// Under SyncGroupCommit it returns once an fsync covers the batches (if ctx
// ends first it returns ctx's error, and the batches stay in the log); under
// the other policies once they are written. It is AppendNoWait followed by
// WaitDurable.
func (l *Log) Append(ctx context.Context, batches []byte, epoch Epoch) (AppendResult, error) {
	res, err := l.AppendNoWait(batches, epoch)
	if err != nil || res.Duplicate {
		return res, err
	}
	return res, l.WaitDurable(ctx, res.LastOffset+1)
}

// AppendNoWait is Append without the wait for durability: it validates and
// writes the batches, in order with other appends, and returns without
// waiting for an fsync. Under SyncGroupCommit it asks the syncer for one,
// and the batches become readable (below the high watermark) once it is
// done, whether or not anyone waits. The caller that must not acknowledge
// before the batches are durable pairs it with WaitDurable(ctx,
// LastOffset+1), which lets it release its own locks (or pipeline the next
// request) in between.
func (l *Log) AppendNoWait(batches []byte, epoch Epoch) (AppendResult, error) {
	return l.appendNoWait(batches, epoch, nil)
}

// AppendNoWaitInTxn is AppendNoWait for batches of producer pid's
// transaction at producer epoch pepoch that no coordinator was asked
// about: they are written only if, under the append lock, that
// transaction is open here at that epoch (an earlier batch of it was
// verified), and every batch is a transactional one of pid at pepoch;
// else ErrTxnNotOpen, and nothing is written.
func (l *Log) AppendNoWaitInTxn(batches []byte, epoch Epoch, pid int64, pepoch int16) (AppendResult, error) {
	return l.appendNoWait(batches, epoch, func(hs []batch.Header) error {
		p := l.producers[pid]
		if p == nil || !p.txnOpen || p.epoch != pepoch {
			return fmt.Errorf("%w: producer %d epoch %d", ErrTxnNotOpen, pid, pepoch)
		}
		for _, h := range hs {
			if h.ProducerID != pid || h.ProducerEpoch != pepoch || !h.Transactional() || h.Control() {
				return fmt.Errorf("%w: a batch of producer %d epoch %d among producer %d epoch %d's", ErrTxnNotOpen, h.ProducerID, h.ProducerEpoch, pid, pepoch)
			}
		}
		return nil
	})
}

// appendNoWait is AppendNoWait; check, if not nil, is asked under
// appendMu first, and its error refuses the append.
func (l *Log) appendNoWait(batches []byte, epoch Epoch, check func([]batch.Header) error) (AppendResult, error) {
	if len(batches) == 0 {
		return AppendResult{}, fmt.Errorf("%w: empty produce payload", ErrCorrupt)
	}
	// Validation, CRCs included, runs outside every lock so concurrent
	// appenders use the cores in parallel.
	var hbuf [4]batch.Header
	hs := hbuf[:0]
	var posbuf [4]int
	starts := posbuf[:0]
	l.mu.RLock()
	maxMsg, segBytes, appendTime := l.cfg.MaxMessageBytes, l.cfg.SegmentBytes, l.cfg.LogAppendTime
	l.mu.RUnlock()
	for rest, pos := batches, 0; len(rest) > 0; {
		b, r, err := batch.Next(rest)
		if err != nil {
			return AppendResult{}, fmt.Errorf("%w: batch at byte %d: %w", ErrCorrupt, pos, err)
		}
		h, err := batch.ValidateProduced(b)
		if err != nil {
			return AppendResult{}, fmt.Errorf("%w: batch at byte %d: %w", ErrCorrupt, pos, err)
		}
		if len(b) > int(maxMsg) {
			return AppendResult{}, fmt.Errorf("%w: batch of %d bytes exceeds max.message.bytes %d", ErrMessageTooLarge, len(b), maxMsg)
		}
		hs = append(hs, h)
		starts = append(starts, pos)
		pos += len(b)
		rest = r
	}
	if int64(len(batches)) > segBytes {
		return AppendResult{}, fmt.Errorf("%w: payload of %d bytes exceeds segment.bytes %d", ErrMessageTooLarge, len(batches), segBytes)
	}
	stamp := int64(-1)
	if appendTime {
		var err error
		// Stamped only now that every batch passed its CRC check: the new
		// CRC must not bless damaged bytes.
		stamp = l.opts.Now().UnixMilli()
		for i := range hs {
			b := batches[starts[i]:]
			batch.SetMaxTimestampAndAppendTime(b, stamp)
			if hs[i], err = batch.ParseHeader(b); err != nil {
				panic(fmt.Sprintf("storage: header of a validated batch: %v", err)) // broken invariant
			}
		}
	}

	l.appendMu.Lock()
	if check != nil {
		if err := check(hs); err != nil {
			l.appendMu.Unlock()
			return AppendResult{}, err
		}
	}
	res, err := l.appendLocked(batches, hs, starts, epoch)
	l.appendMu.Unlock()
	if err != nil {
		return res, err
	}
	res.LogAppendTime = stamp
	if !res.Duplicate && l.opts.Sync == SyncGroupCommit {
		l.requestSync()
	}
	return res, nil
}

// requestSync asks the group-commit syncer for an fsync without waiting.
func (l *Log) requestSync() {
	select {
	case l.syncReq <- struct{}{}:
	default: // a request is already pending; its fsync will cover us
	}
}

// appendLocked writes validated batches. Caller holds appendMu.
func (l *Log) appendLocked(data []byte, hs []batch.Header, starts []int, epoch Epoch) (AppendResult, error) {
	if l.closed {
		return AppendResult{}, ErrClosed
	}
	if l.failed != nil {
		return AppendResult{}, fmt.Errorf("%w: appends disabled after %w", ErrStorage, l.failed)
	}
	l.mu.RLock()
	serr := l.syncErr
	l.mu.RUnlock()
	if serr != nil {
		return AppendResult{}, fmt.Errorf("%w: appends disabled after a failed fsync: %w", ErrStorage, serr)
	}
	if n := len(l.epochs); n > 0 && epoch < l.epochs[n-1].epoch {
		return AppendResult{}, fmt.Errorf("storage: append with leader epoch %d below the current %d", epoch, l.epochs[n-1].epoch)
	}

	// Idempotence: check every batch against the producer state, counting
	// the batches before it in this payload.
	dup := make([]bool, len(hs))
	var dupRes []producerBatch
	ndup := 0
	var pending map[int64]*producerState
	for i, h := range hs {
		if h.ProducerID < 0 {
			continue
		}
		p := l.producers[h.ProducerID]
		if q, ok := pending[h.ProducerID]; ok {
			p = q
		}
		kind, orig, err := checkProducer(p, h)
		if err != nil {
			return AppendResult{}, err
		}
		if kind == seqDuplicate {
			dup[i] = true
			ndup++
			dupRes = append(dupRes, orig)
			continue
		}
		if len(hs) > 1 { // later batches of this payload see this one
			if pending == nil {
				pending = map[int64]*producerState{}
			}
			cp := newProducerState(0)
			if p != nil {
				cp.epoch, cp.coordEpoch = p.epoch, p.coordEpoch
				cp.batches = append([]producerBatch(nil), p.batches...)
			}
			hh := h
			hh.BaseOffset = 0
			recordProducer(map[int64]*producerState{h.ProducerID: cp}, hh)
			pending[h.ProducerID] = cp
		}
	}
	l.mu.RLock()
	logStart := l.logStart
	l.mu.RUnlock()
	if ndup == len(hs) {
		return AppendResult{
			BaseOffset: dupRes[0].base, LastOffset: dupRes[len(dupRes)-1].last,
			LogAppendTime: -1, LogStartOffset: logStart, Duplicate: true,
		}, nil
	}

	// Assign offsets.
	next := l.leo
	first := Offset(-1)
	size := 0
	for i := range hs {
		if dup[i] {
			continue
		}
		b := data[starts[i]:]
		batch.SetBaseOffset(b, int64(next))
		batch.SetPartitionLeaderEpoch(b, int32(epoch))
		hs[i].BaseOffset = int64(next)
		hs[i].PartitionLeaderEpoch = int32(epoch)
		if first < 0 {
			first = next
		}
		next += Offset(hs[i].LastOffsetDelta) + 1
		size += hs[i].Size()
	}
	last := next - 1

	if err := l.maybeRollLocked(int64(size), last); err != nil {
		return AppendResult{}, err
	}
	if n := len(l.epochs); n == 0 || epoch > l.epochs[n-1].epoch {
		// Durable before any batch of the new epoch is written, so
		// recovery can tell a real epoch from a damaged header.
		l.epochs = append(l.epochs, epochEntry{epoch: epoch, start: first})
		if err := l.writeEpochsLocked(); err != nil {
			l.epochs = l.epochs[:len(l.epochs)-1]
			return AppendResult{}, l.ioErr("writing leader-epoch checkpoint", err)
		}
	} else if l.epochsUnsaved {
		if err := l.writeEpochsLocked(); err != nil {
			return AppendResult{}, l.ioErr("writing leader-epoch checkpoint", err)
		}
	}
	seg := l.segs[len(l.segs)-1] // only appendMu holders change segs' tail
	pos := seg.size
	// NB: appends write at the segment's size, not at the file's end: a
	// file that could not be cut (see truncateFile) may hold bytes past it.
	if seg.remnant {
		if err := zeroTail(seg.f, pos); err != nil {
			return AppendResult{}, l.ioErr("clearing the bytes past the end of "+seg.path, err)
		}
		seg.remnant = false
	}
	var err error
	if ndup == 0 {
		_, err = seg.f.WriteAt(data, pos)
	} else {
		at := pos
		for i := range hs {
			if !dup[i] && err == nil {
				_, err = seg.f.WriteAt(data[starts[i]:starts[i]+hs[i].Size()], at)
				at += int64(hs[i].Size())
			}
		}
	}
	if err != nil {
		return AppendResult{}, l.undoWriteLocked(seg, pos, err)
	}
	if l.opts.Sync == SyncGroupCommit {
		l.startWritebackLocked(seg, pos, int64(size))
	}
	for i, h := range hs {
		if !dup[i] {
			l.trackTxnLocked(h, data[starts[i]:]) // before the batch is readable
		}
	}

	nowMS := l.opts.Now().UnixMilli()
	l.mu.Lock()
	if seg.firstAppendMS == 0 {
		seg.firstAppendMS = nowMS
	}
	p := pos
	for i, h := range hs {
		if dup[i] {
			continue
		}
		seg.indexBatchLocked(h, p, l.cfg.IndexIntervalBytes)
		p += int64(h.Size())
	}
	l.leo = next
	if l.opts.Sync != SyncGroupCommit {
		l.advanceHWLocked(next)
	}
	l.notifyAppendedLocked()
	logStart = l.logStart
	l.mu.Unlock()

	for i, h := range hs {
		if !dup[i] {
			recordProducer(l.producers, h)
		}
	}
	return AppendResult{BaseOffset: first, LastOffset: last, LogAppendTime: -1, LogStartOffset: logStart}, nil
}

// startWritebackLocked starts the device write of the bytes just
// appended at [pos, pos+n) of the active segment seg, without waiting.
// The syncer that group commit wakes for them is a goroutine that may
// wait milliseconds for a P (the appender's request and the client hold
// them, and each SyncData keeps its P for the call: Go's sysmon seldom
// takes one back from a call that short); started here, the data is on
// its way meanwhile, and the syncer's SyncData, which alone makes it
// durable, waits for less. A failure is only logged: SyncData reports
// the device's errors. Caller holds appendMu (seg stays the pinned
// active segment).
func (l *Log) startWritebackLocked(seg *segment, pos, n int64) {
	fd := seg.f.Fd()
	if fd == vfs.InvalidFd || n <= 0 {
		return // an in-memory filesystem (tests): nothing to start
	}
	if err := startWriteback(fd, pos, n); err != nil {
		l.opts.Logger.Debug("storage: starting a segment's writeback", "dir", l.dir, "err", err)
	}
}

// undoWriteLocked truncates the active segment back to pos after a failed
// write, so the log holds only whole batches (where the file cannot be cut,
// the next append overwrites the remnant: see truncateFile).
func (l *Log) undoWriteLocked(seg *segment, pos int64, werr error) error {
	if terr := truncateFile(seg.f, pos); errors.Is(terr, errCannotTruncate) {
		seg.remnant = true
	} else if terr != nil {
		l.failed = fmt.Errorf("truncating %s after a failed write: %w", seg.path, terr)
		return fmt.Errorf("%w: write %s: %w (and truncating back: %v)", ErrStorage, seg.path, werr, terr)
	}
	if isNoSpace(werr) {
		return fmt.Errorf("%w: write %s: %w", ErrDiskFull, seg.path, werr)
	}
	return fmt.Errorf("%w: write %s: %w", ErrStorage, seg.path, werr)
}

// advanceHWLocked moves the high watermark to hw and wakes waiting readers.
// Caller holds mu.
func (l *Log) advanceHWLocked(hw Offset) {
	if l.hwLimited {
		hw = min(hw, l.hwLimit)
	}
	if hw <= l.hw {
		return
	}
	l.hw = hw
	close(l.changed)
	l.changed = make(chan struct{})
}

// maybeRollLocked rolls the active segment if appending size more bytes
// ending at offset last would break segment.bytes, segment.ms or the 32-bit
// relative offsets of the index. Caller holds appendMu.
func (l *Log) maybeRollLocked(size int64, last Offset) error {
	seg := l.segs[len(l.segs)-1]
	if seg.size == 0 {
		return nil
	}
	l.mu.RLock()
	cfg := l.cfg
	l.mu.RUnlock()
	switch {
	case seg.size+size > cfg.SegmentBytes:
	case seg.firstAppendMS != 0 && l.opts.Now().UnixMilli()-seg.firstAppendMS >= cfg.SegmentMS:
	case last-seg.base > math.MaxUint32:
	default:
		return nil
	}
	return l.rollLocked()
}

// rollLocked seals the active segment (fsync, index files) and starts a new
// one at the log end offset. Caller holds appendMu.
func (l *Log) rollLocked() error {
	old := l.segs[len(l.segs)-1]
	base := l.leo
	if err := old.f.Sync(); err != nil {
		return l.ioErr("fsync on roll", err)
	}
	l.mu.RLock()
	oldCopy := &segment{base: old.base, offIdx: old.offIdx, timeIdx: old.timeIdx}
	sealed := l.segs // appendMu keeps its elements as they are
	l.mu.RUnlock()
	if err := oldCopy.writeIndexes(l.fs, l.dir, true); err != nil {
		return l.ioErr("writing indexes on roll", err)
	}
	if err := l.writeTxnIndex(old.base, base); err != nil {
		return l.ioErr("writing aborted-transaction index on roll", err)
	}
	// NB: the checkpoint below vouches for the index files just renamed
	// into place: their renames are made durable before its own, so that
	// no file system (whatever order it persists renames in) keeps the
	// checkpoint without them.
	if err := syncDir(l.fs, l.dir); err != nil {
		return l.ioErr("syncing directory on roll", err)
	}
	// Everything below base is fsynced and the sealed segments' index
	// files too: base is the new recovery point. Written before the next
	// segment exists, so that a segment is never sealed on disk without
	// the checkpoint describing it as it is; the directory sync below
	// makes its rename durable. A checkpoint that could be neither
	// rewritten nor removed stops the roll.
	if err := l.writeRecoveryPointLocked(base, sealed, false); err != nil {
		return l.ioErr("replacing recovery-point checkpoint on roll", err)
	}
	path := filepath.Join(l.dir, segmentName(base, logSuffix))
	f, err := l.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return l.ioErr("creating segment", err)
	}
	if err := syncDir(l.fs, l.dir); err != nil {
		f.Close()
		l.fs.Remove(path)
		return l.ioErr("syncing directory", err)
	}
	if err := writeFileAtomic(l.fs, filepath.Join(l.dir, segmentName(base, snapshotSuffix)), encodeProducers(l.producers)); err != nil {
		// Recovery falls back to an older snapshot or a full replay.
		l.opts.Logger.Warn("storage: writing producer snapshot", "dir", l.dir, "err", err)
	}
	l.pruneSnapshotsLocked(base)
	l.mu.Lock()
	l.segs = append(l.segs, newSegment(base, l.files.pinned(l.fs, f, path), path))
	// Sealed and fsynced: its file is the cache's to close from now on.
	old.f.unpin(old.path)
	// The fsync above covers everything below base: publish it, so that
	// hw never lags behind the active segment's base.
	if base > l.durable {
		l.durable = base
		if l.opts.Sync == SyncGroupCommit {
			l.advanceHWLocked(base)
		}
		close(l.durableCh)
		l.durableCh = make(chan struct{})
	}
	l.mu.Unlock()
	return nil
}

// recoveryPointLocked returns the recovery point (the active segment's
// base) and the segments before it. Caller holds appendMu.
func (l *Log) recoveryPointLocked() (Offset, []*segment) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	n := len(l.segs)
	return l.segs[n-1].base, l.segs[:n-1]
}

// writeRecoveryPointNowLocked durably rewrites the recovery-point
// checkpoint for the log as it is (writeRecoveryPointLocked). Caller holds
// appendMu.
func (l *Log) writeRecoveryPointNowLocked() error {
	point, sealed := l.recoveryPointLocked()
	return l.writeRecoveryPointLocked(point, sealed, true)
}

// writeRecoveryPointLocked replaces the recovery-point checkpoint with one
// listing the segments of sealed below point but those in ckptSkip (see
// recoveryPointFile), or, if that fails, removes it: durably (fsync,
// rename, directory fsync) if durable, else fsynced but through a rename
// (or removal) the caller's next directory sync makes durable. A rewrite
// that fails is no error (without the checkpoint, open checks every
// sealed segment); the error returned says the old checkpoint may remain
// (its removal failed, or, if durable, was not synced), which the caller
// must not let become stale. Caller holds appendMu.
func (l *Log) writeRecoveryPointLocked(point Offset, sealed []*segment, durable bool) error {
	if len(l.ckptSkip) > 0 {
		var keep []*segment
		for _, s := range sealed {
			if !slices.Contains(l.ckptSkip, s) {
				keep = append(keep, s)
			}
		}
		sealed = keep
	}
	l.mu.RLock()
	data := encodeRecoveryPoint(point, sealed)
	l.mu.RUnlock()
	var err error
	if durable {
		err = writeFileAtomic(l.fs, l.path(recoveryPointFile), data)
	} else {
		err = writeFileReplace(l.fs, l.path(recoveryPointFile), data, true)
	}
	if err == nil {
		return nil
	}
	l.opts.Logger.Warn("storage: writing recovery-point checkpoint", "dir", l.dir, "err", err)
	if rerr := l.fs.Remove(l.path(recoveryPointFile)); rerr != nil && !isNotExist(rerr) {
		return fmt.Errorf("rewrite failed (%w), and so did removing the old one: %w", err, rerr)
	}
	if err := syncDir(l.fs, l.dir); err != nil && durable {
		return fmt.Errorf("removing the old one: %w", err)
	}
	return nil
}

// pruneSnapshotsLocked keeps the two newest producer snapshots at or below
// base.
func (l *Log) pruneSnapshotsLocked(base Offset) {
	names, err := listDir(l.fs, l.dir)
	if err != nil {
		return
	}
	var snaps []Offset
	for _, n := range names {
		if b, ok := parseBase(n); ok && len(n) == 20+len(snapshotSuffix) && filepath.Ext(n) == snapshotSuffix && b <= base {
			snaps = append(snaps, b)
		}
	}
	for i := 0; i+2 < len(snaps); i++ {
		l.fs.Remove(filepath.Join(l.dir, segmentName(snaps[i], snapshotSuffix)))
	}
}

// ioErr wraps an I/O error, classifying a full disk.
func (l *Log) ioErr(what string, err error) error {
	if isNoSpace(err) {
		return fmt.Errorf("%w: %s in %s: %w", ErrDiskFull, what, l.dir, err)
	}
	return fmt.Errorf("%w: %s in %s: %w", ErrStorage, what, l.dir, err)
}

// writeEpochsLocked replaces the leader-epoch checkpoint with epochs.
// Caller holds appendMu.
func (l *Log) writeEpochsLocked() error {
	if err := writeFileAtomic(l.fs, filepath.Join(l.dir, epochCheckpointFile), encodeEpochs(l.epochs)); err != nil {
		return err
	}
	l.epochsUnsaved = false
	return nil
}

// WaitDurable waits until an fsync covers every offset below end (under
// SyncGroupCommit; under the other policies it returns at once), asking the
// syncer for one if needed, or until ctx ends (ctx's error). It completes an
// AppendNoWait: WaitDurable(ctx, res.LastOffset+1).
func (l *Log) WaitDurable(ctx context.Context, end Offset) error {
	if l.opts.Sync != SyncGroupCommit {
		return nil
	}
	return l.waitDurable(ctx, end)
}

// waitDurable waits until an fsync covers offsets below end.
func (l *Log) waitDurable(ctx context.Context, end Offset) error {
	requested := false
	for {
		l.mu.RLock()
		d, ch, err := l.durable, l.durableCh, l.syncErr
		l.mu.RUnlock()
		if d >= end {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: fsync failed: %w", ErrStorage, err)
		}
		if !requested {
			l.requestSync()
			requested = true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// syncLoop is the group-commit syncer: each fsync covers every append
// written before it started. Owned by the Log; stopped in Close.
func (l *Log) syncLoop() {
	defer l.wg.Done()
	for {
		select {
		case <-l.stop:
			return
		case <-l.syncReq:
		}
		l.syncOnce()
	}
}

// intervalLoop fsyncs every SyncInterval. Owned by the Log; stopped in
// Close.
func (l *Log) intervalLoop() {
	defer l.wg.Done()
	t := time.NewTicker(l.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.syncOnce()
		}
	}
}

// syncOnce fsyncs the active segment and publishes what it covers.
func (l *Log) syncOnce() {
	l.mu.RLock()
	target, seg, done := l.leo, l.segs[len(l.segs)-1], l.durable
	l.mu.RUnlock()
	if target <= done {
		return
	}
	// Segments before seg were fsynced when rolled, so syncing seg covers
	// everything below target. fdatasync, not fsync: it makes the data and
	// the file's new size durable and skips the timestamps, which no read
	// needs; the segment's name was made durable when it was created.
	l.syncMu.Lock()
	var err error
	if seg.f != nil && !seg.fileClosed {
		err = seg.f.SyncData()
	}
	l.syncMu.Unlock()
	l.mu.Lock()
	if err != nil {
		if l.syncErr == nil {
			l.syncErr = err
		}
	} else if target > l.durable {
		l.durable = target
		if l.opts.Sync == SyncGroupCommit {
			l.advanceHWLocked(target)
		}
	}
	close(l.durableCh)
	l.durableCh = make(chan struct{})
	l.mu.Unlock()
	// NB: the syncer never takes appendMu: Close holds it while waiting
	// for the syncer to stop. Appenders see syncErr under mu instead.
}

// Read returns raw batch bytes starting with the batch that contains from,
// up to maxBytes (but always at least one whole batch), from one segment,
// and only below the high watermark. It returns no bytes when from is at or
// past the high watermark but not past the log end offset, and
// ErrOffsetOutOfRange below the log start offset or past the log end
// offset. The result is freshly allocated and owned by the caller.
func (l *Log) Read(from Offset, maxBytes int) ([]byte, error) {
	return l.ReadInto(nil, from, maxBytes)
}

// ReadInto is Read into dst's memory when it holds the bytes (cap(dst))
// and they fill at least a quarter of it,
// else into a fresh buffer; the result is a slice of whichever it used.
func (l *Log) ReadInto(dst []byte, from Offset, maxBytes int) ([]byte, error) {
	return l.readInto(dst, from, maxBytes, false)
}

// readInto is ReadInto, up to the log end offset instead of the high
// watermark when pastHW (ReadReplicaInto).
func (l *Log) readInto(dst []byte, from Offset, maxBytes int, pastHW bool) ([]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if from < l.logStart || from > l.leo {
		return nil, fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, from, l.logStart, l.leo)
	}
	hw := l.hw
	if pastHW {
		hw = l.leo
	}
	if from >= hw {
		return nil, nil
	}
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > from }) - 1
	if i < 0 {
		i = 0
	}
	for ; i < len(l.segs); i++ {
		s := l.segs[i]
		if s.next <= from || s.size == 0 {
			continue // from is in a gap left by compaction: go on
		}
		b, err := s.readInto(dst, max(from, s.base), maxBytes, hw)
		if err != nil || len(b) > 0 {
			return b, err
		}
	}
	return nil, nil
}

// readInto reads from the segment as Read does, into dst's memory when
// cap(dst) holds the bytes. Caller holds Log.mu for reading.
func (s *segment) readInto(dst []byte, from Offset, maxBytes int, hw Offset) ([]byte, error) {
	pos, h, ok, err := s.seekBatch(from)
	if err != nil || !ok || Offset(h.BaseOffset) >= hw {
		return nil, err
	}
	n := min(max(int64(maxBytes), int64(h.Size())), s.size-pos)
	buf := dst[:0]
	// dst serves only a read that fills at least a quarter of it: the
	// caller keeps the whole of dst for as long as it keeps what was read,
	// and a few bytes must not pin a megabyte (a fetch of many partitions
	// would hold one per partition).
	if c := int64(cap(buf)); c >= n && n >= c/4 {
		buf = buf[:n]
	} else {
		buf = make([]byte, n)
	}
	if m, err := s.f.ReadAt(buf, pos); int64(m) < n {
		return nil, fmt.Errorf("storage: read %s at %d: %w", s.path, pos, err)
	}
	// Keep whole batches below the high watermark.
	// NB: lengths are checked before parsing so the partial batch at the
	// end of buf costs no error value.
	cut := 0
	for rest := buf; len(rest) >= batch.HeaderSize; {
		hh, err := batch.ParseHeader(rest)
		if err != nil || hh.Size() > len(rest) || Offset(hh.BaseOffset) >= hw {
			break
		}
		cut += hh.Size()
		rest = rest[hh.Size():]
	}
	return buf[:cut], nil
}

// seekBatch returns the position and header of the segment's batch that
// holds from (or the first after it); ok is false when there is none.
// Caller holds Log.mu for reading.
func (s *segment) seekBatch(from Offset) (pos int64, h batch.Header, ok bool, err error) {
	s.ensureIndexes()
	e := lookupEntry(s.offIdx, uint32(from-s.base))
	pos = int64(e.pos)
	var hbuf [batch.HeaderSize]byte
	scanned := pos == 0
	for {
		if pos >= s.size {
			return 0, h, false, nil
		}
		h, err = readHeaderAt(s.f, pos, &hbuf)
		if !scanned && (err != nil || Offset(h.BaseOffset) != s.base+Offset(e.rel)) {
			// A damaged index entry that passed the open-time checks:
			// scan from the segment's start instead.
			pos, scanned = 0, true
			continue
		}
		scanned = true
		if err != nil {
			return 0, h, false, fmt.Errorf("storage: %s: %w", s.path, err)
		}
		if Offset(h.LastOffset()) >= from {
			return pos, h, true, nil
		}
		pos += int64(h.Size())
	}
}

// LogStartOffset returns the first offset a read may ask for.
func (l *Log) LogStartOffset() Offset {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.logStart
}

// HighWatermark returns the offset below which records are readable: under
// SyncGroupCommit the end of what is fsynced, otherwise the log end offset.
func (l *Log) HighWatermark() Offset {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.hw
}

// LogEndOffset returns the offset the next appended record will get.
func (l *Log) LogEndOffset() Offset {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.leo
}

// Changed returns a channel closed when the high watermark next advances.
// Long-polling fetches wait on it.
func (l *Log) Changed() <-chan struct{} {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.changed
}

// LeaderEpochStart returns the first offset of leader epoch e.
func (l *Log) LeaderEpochStart(e Epoch) (Offset, bool) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	for _, x := range l.epochs {
		if x.epoch == e {
			return x.start, true
		}
	}
	return 0, false
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch (KIP-101): the largest
// epoch <= e the log knows and the offset at which the next epoch after it
// starts (the log end offset for the latest epoch). ok is false when the log
// knows no epoch <= e.
func (l *Log) EndOffsetForEpoch(e Epoch) (Epoch, Offset, bool) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	i := sort.Search(len(l.epochs), func(i int) bool { return l.epochs[i].epoch > e }) - 1
	if i < 0 {
		return 0, 0, false
	}
	if i+1 < len(l.epochs) {
		return l.epochs[i].epoch, l.epochs[i+1].start, true
	}
	return l.epochs[i].epoch, l.LogEndOffset(), true
}

// Config returns the partition's configuration.
func (l *Log) Config() Config {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.cfg
}

// SetConfig replaces the partition's configuration; zero fields take their
// defaults.
func (l *Log) SetConfig(c Config) error {
	c.EnsureDefaults()
	if err := c.Validate(); err != nil {
		return err
	}
	l.mu.Lock()
	l.cfg = c
	l.mu.Unlock()
	return nil
}

// Close fsyncs and closes the log. Appends waiting for an fsync return once
// it is done. Close waits for a running Clean to stop.
func (l *Log) Close() error {
	l.closing.Store(true)
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	close(l.stop)
	l.wg.Wait()
	var errs []error
	active := l.segs[len(l.segs)-1]
	if l.failed == nil {
		if err := active.f.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("storage: fsync %s: %w", active.path, err))
		} else if err := active.writeIndexes(l.fs, l.dir, false); err == nil {
			// Lets the next open skip reading the active segment whole.
			// Best effort: without it, open does the full check.
			l.mu.RLock()
			marker := encodeCleanShutdown(active.base, active.size, l.segs[:len(l.segs)-1])
			l.mu.RUnlock()
			_ = writeFileAtomic(l.fs, l.path(cleanShutdownFile), marker)
		}
	}
	l.mu.Lock()
	if len(errs) == 0 && l.syncErr == nil {
		l.durable = l.leo
		l.advanceHWLocked(l.leo)
	} else if l.syncErr == nil {
		l.syncErr = errs[0]
	}
	close(l.durableCh)
	l.durableCh = make(chan struct{})
	segs := l.segs
	l.mu.Unlock()
	l.syncMu.Lock()
	for _, s := range segs {
		if !s.fileClosed {
			s.fileClosed = true
			if err := s.f.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	l.syncMu.Unlock()
	return errors.Join(errs...)
}

// Remove closes the log and deletes its directory.
func (l *Log) Remove() error {
	cerr := l.Close()
	if err := l.fs.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("storage: remove %s: %w", l.dir, err)
	}
	if err := syncDir(l.fs, l.fs.PathDir(l.dir)); err != nil {
		return fmt.Errorf("storage: remove %s: %w", l.dir, err)
	}
	return cerr
}
