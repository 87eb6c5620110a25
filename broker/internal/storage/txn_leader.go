package storage

import (
	"encoding/binary"
	"errors"
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

// WriteMarker appends m, a COMMIT or ABORT control batch (see
// AppendMarker), with leader epoch leaderEpoch (-1: the log's latest),
// without waiting for durability.
//
// A marker whose CoordinatorEpoch is below the highest of the producer's
// markers here is refused with ErrCoordinatorFenced: it comes from a
// coordinator that has since lost the transactional id, and could end the
// producer's next transaction (of the same producer epoch). The broker's
// own marker (CoordinatorEpoch -1) is not checked and carries 0.
//
// A marker older than the producer's epoch here is refused with
// ErrInvalidProducerEpoch (checkProducer). A transaction version 2 marker
// (KIP-890 part 2) must be strictly above it: such a marker carries an
// epoch one above its transaction's data, so one at the producer's epoch
// comes from an earlier transaction, late, and would end the transaction
// whose data is here at that epoch. At that epoch with no transaction of
// the producer open here, it is that earlier transaction's marker again
// (a coordinator's retry after a lost answer): nothing is written and the
// result, Duplicate, is answered once the log's end is committed.
func (l *Log) WriteMarker(m Marker, leaderEpoch Epoch) (AppendResult, error) {
	kind := byte(controlAbort)
	if m.Commit {
		kind = controlCommit
	}
	now := l.opts.Now().UnixMilli()
	h := batch.Header{
		Attributes: attrTxnControl, FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: m.ProducerID, ProducerEpoch: m.Epoch, BaseSequence: -1,
	}
	value := binary.BigEndian.AppendUint32([]byte{0, 0}, uint32(max(m.CoordinatorEpoch, 0)))
	b, err := batch.Build(h, []batch.Record{{Key: []byte{0, 0, 0, kind}, Value: value}}, batch.CodecNone)
	if err != nil {
		return AppendResult{}, fmt.Errorf("storage: build marker: %w", err)
	}
	if h, err = batch.Validate(b); err != nil {
		return AppendResult{}, fmt.Errorf("storage: built marker: %w", err)
	}
	var dup *AppendResult
	check := func() error {
		p := l.producers[m.ProducerID]
		if p == nil {
			return nil
		}
		if m.CoordinatorEpoch >= 0 && m.CoordinatorEpoch < p.coordEpoch {
			return fmt.Errorf("%w: marker for producer %d of coordinator epoch %d after one of %d",
				ErrCoordinatorFenced, m.ProducerID, m.CoordinatorEpoch, p.coordEpoch)
		}
		if m.TransactionVersion >= 2 && m.Epoch == p.epoch {
			if p.txnOpen {
				return fmt.Errorf("%w: transaction version 2 marker for producer %d at epoch %d, the epoch of its open transaction here (a late marker of an earlier transaction)",
					ErrInvalidProducerEpoch, m.ProducerID, m.Epoch)
			}
			l.mu.RLock()
			dup = &AppendResult{BaseOffset: l.leo - 1, LastOffset: l.leo - 1, LogStartOffset: l.logStart, LogAppendTime: -1, Duplicate: true}
			l.mu.RUnlock()
			return errDuplicateMarker
		}
		return nil
	}
	res, err := l.writeBroker(b, []batch.Header{h}, []int{0}, leaderEpoch, check)
	if err == errDuplicateMarker {
		return *dup, nil
	}
	return res, err
}

// errDuplicateMarker stops writeBroker for a marker already written.
var errDuplicateMarker = errors.New("storage: marker already written")

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
