package storage

import (
	"encoding/binary"
	"fmt"

	"github.com/weir-dev/weir/broker/internal/batch"
)

// Broker-written batches at a partition leader's epoch.
//
// A replicated partition's leader writes markers and transactional offset
// commits at its own leader epoch, which a new leader has not written any
// batch with yet; and it acknowledges them once the high watermark covers
// them, not once they are durable here. WriteMarker and WriteTrusted take
// the epoch and return without waiting; AppendMarker and AppendTrusted (a
// single node) write at the latest epoch and wait for durability.

// WriteMarker appends a COMMIT or ABORT control batch for producer pid at
// epoch (see AppendMarker) with leader epoch leaderEpoch (-1: the log's
// latest), without waiting for durability. A marker whose coordinatorEpoch
// is below the highest of the producer's markers here is refused with
// ErrCoordinatorFenced: it comes from a coordinator that has since lost
// the transactional id, and could end the producer's next transaction (of
// the same producer epoch). coordinatorEpoch -1 is the broker's own marker
// (no coordinator), which is not checked and carries epoch 0.
func (l *Log) WriteMarker(pid int64, epoch int16, commit bool, coordinatorEpoch int32, leaderEpoch Epoch) (AppendResult, error) {
	kind := byte(controlAbort)
	if commit {
		kind = controlCommit
	}
	now := l.opts.Now().UnixMilli()
	h := batch.Header{
		Attributes: attrTxnControl, FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: pid, ProducerEpoch: epoch, BaseSequence: -1,
	}
	value := binary.BigEndian.AppendUint32([]byte{0, 0}, uint32(max(coordinatorEpoch, 0)))
	b, err := batch.Build(h, []batch.Record{{Key: []byte{0, 0, 0, kind}, Value: value}}, batch.CodecNone)
	if err != nil {
		return AppendResult{}, fmt.Errorf("storage: build marker: %w", err)
	}
	if h, err = batch.Validate(b); err != nil {
		return AppendResult{}, fmt.Errorf("storage: built marker: %w", err)
	}
	check := func() error {
		if p := l.producers[pid]; p != nil && coordinatorEpoch >= 0 && coordinatorEpoch < p.coordEpoch {
			return fmt.Errorf("%w: marker for producer %d of coordinator epoch %d after one of %d",
				ErrCoordinatorFenced, pid, coordinatorEpoch, p.coordEpoch)
		}
		return nil
	}
	return l.writeBroker(b, []batch.Header{h}, []int{0}, leaderEpoch, check)
}

// WriteTrusted appends batches the broker wrote itself (see AppendTrusted)
// with leader epoch leaderEpoch (-1: the log's latest), without waiting for
// durability.
func (l *Log) WriteTrusted(batches []byte, leaderEpoch Epoch) (AppendResult, error) {
	var hs []batch.Header
	var starts []int
	for rest, pos := batches, 0; len(rest) > 0; {
		b, r, err := batch.Next(rest)
		if err != nil {
			return AppendResult{}, fmt.Errorf("%w: batch at byte %d: %w", ErrCorrupt, pos, err)
		}
		h, err := batch.Validate(b)
		if err != nil {
			return AppendResult{}, fmt.Errorf("%w: batch at byte %d: %w", ErrCorrupt, pos, err)
		}
		hs, starts = append(hs, h), append(starts, pos)
		pos += len(b)
		rest = r
	}
	if len(hs) == 0 {
		return AppendResult{}, fmt.Errorf("%w: empty payload", ErrCorrupt)
	}
	return l.writeBroker(batches, hs, starts, leaderEpoch, nil)
}

// writeBroker appends validated broker-written batches at leaderEpoch (-1:
// the latest epoch) and asks for an fsync. check, if not nil, is asked
// under appendMu first; its error refuses the append.
func (l *Log) writeBroker(b []byte, hs []batch.Header, starts []int, leaderEpoch Epoch, check func() error) (AppendResult, error) {
	l.appendMu.Lock()
	if check != nil {
		if err := check(); err != nil {
			l.appendMu.Unlock()
			return AppendResult{}, err
		}
	}
	if leaderEpoch < 0 {
		leaderEpoch = 0
		if n := len(l.epochs); n > 0 {
			leaderEpoch = l.epochs[n-1].epoch
		}
	}
	res, err := l.appendLocked(b, hs, starts, leaderEpoch)
	l.appendMu.Unlock()
	if err != nil {
		return res, err
	}
	if l.opts.Sync == SyncGroupCommit {
		l.requestSync()
	}
	return res, nil
}
