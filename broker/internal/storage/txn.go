package storage

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"sync"

	"github.com/weir-dev/weir/broker/internal/batch"
)

// Transactions in the log (KIP-98). A transactional producer's batches carry
// the transactional attribute; the transaction coordinator ends each
// transaction on every partition it touched with a control batch (a
// "marker", AppendMarker) saying COMMIT or ABORT. The log tracks, per
// producer, the first offset of its open transaction (producerState.txnOpen
// and txnFirst, kept in producer snapshots so that a restart knows it), and
// from those:
//
//   - the last stable offset (LastStableOffset): the high watermark, or the
//     first offset of the oldest open transaction if that is lower. A
//     read_committed consumer reads only below it.
//   - the aborted transactions (AbortedTransactions): one entry per ABORT
//     marker, with the producer id, the transaction's first offset and the
//     marker's offset, which read_committed consumers use to skip aborted
//     records. Entries live in memory for the whole log and on disk in the
//     ".txnindex" file of the segment that holds the marker, written when
//     the segment is sealed (roll, compaction); the active segment's are
//     rebuilt at open by the scan that rebuilds producer state.
//
// Retention keeps the segments from the first offset of an open transaction
// on; compaction drops aborted transactions below the first unstable offset,
// and markers (with their aborted-transaction entries) once their
// transactions have no records left and a retention has passed
// (compact.go).

// Control record types (the key of a control record: version int16 = 0,
// type int16).
const (
	controlAbort  = 0
	controlCommit = 1
)

// attrTxnControl is the attribute bits of a marker: transactional and
// control.
const attrTxnControl = 0x10 | 0x20

// Aborted-transaction index file ("<base>.txnindex"): the ABORT markers of
// the segment at base, in offset order, as Kafka lays its own out: a
// sequence of 34-byte entries, big-endian,
//
//	version int16 (0) | producer id int64 | first offset int64 |
//	last offset int64 | last stable offset int64
//
// first offset is the transaction's first offset in this partition, last
// offset the marker's, last stable offset the partition's last stable
// offset once the marker was written (a search for transactions overlapping
// [from, to) stops at the first entry whose last stable offset is at or
// past to: every later transaction started at or after it). The file is
// written whole (atomically) when the segment is sealed and only for a
// segment holding at least one ABORT marker.
const (
	txnIndexSuffix  = ".txnindex"
	txnIndexVersion = 0
	txnEntrySize    = 34
)

// AbortedTxn is one aborted transaction of a partition.
type AbortedTxn struct {
	ProducerID       int64
	FirstOffset      Offset
	LastOffset       Offset // the ABORT marker's offset
	LastStableOffset Offset
}

// txnState is the log's view of transactions for readers. It has its own
// lock (a leaf: taken last, never held while taking another).
type txnState struct {
	mu sync.RWMutex
	// open maps a producer id to the first offset of its open transaction.
	open map[int64]Offset
	// aborted holds every ABORT marker's entry, ordered by LastOffset.
	aborted []AbortedTxn
}

// firstOpenLocked returns the first offset of the oldest open transaction,
// or end if none is older. Caller holds mu.
func (t *txnState) firstOpenLocked(end Offset) Offset {
	for _, f := range t.open {
		end = min(end, f)
	}
	return end
}

// LastStableOffset returns the offset below which every transaction has
// ended: the high watermark, or the first offset of the oldest open
// transaction if lower.
func (l *Log) LastStableOffset() Offset {
	hw := l.HighWatermark()
	l.txn.mu.RLock()
	defer l.txn.mu.RUnlock()
	return l.txn.firstOpenLocked(hw)
}

// firstUnstable returns the first offset of the oldest open transaction, or
// the largest offset if none is open.
func (l *Log) firstUnstable() Offset {
	l.txn.mu.RLock()
	defer l.txn.mu.RUnlock()
	return l.txn.firstOpenLocked(Offset(1<<63 - 1))
}

// AbortedTransactions returns the aborted transactions that hold records in
// [from, to), oldest marker first.
func (l *Log) AbortedTransactions(from, to Offset) []AbortedTxn {
	l.txn.mu.RLock()
	defer l.txn.mu.RUnlock()
	a := l.txn.aborted
	var out []AbortedTxn
	for i := sort.Search(len(a), func(i int) bool { return a[i].LastOffset >= from }); i < len(a); i++ {
		if a[i].FirstOffset < to {
			out = append(out, a[i])
		}
		if a[i].LastStableOffset >= to {
			break
		}
	}
	return out
}

// OpenTransactions returns the producer ids with an open transaction and
// each one's first offset.
func (l *Log) OpenTransactions() map[int64]Offset {
	l.txn.mu.RLock()
	defer l.txn.mu.RUnlock()
	m := make(map[int64]Offset, len(l.txn.open))
	for k, v := range l.txn.open {
		m[k] = v
	}
	return m
}

// OpenTxn reports whether producer pid has a transaction open here, and
// at which epoch (its latest here).
func (l *Log) OpenTxn(pid int64) (epoch int16, open bool) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	p := l.producers[pid]
	if p == nil || !p.txnOpen {
		return 0, false
	}
	return p.epoch, true
}

// ProducerInfo is what DescribeProducers reports of one producer.
type ProducerInfo struct {
	ProducerID     int64
	Epoch          int16
	LastSequence   int32
	LastOffset     Offset
	TxnStartOffset Offset // -1 when no transaction is open
}

// Producers returns the producers the log tracks, by id.
func (l *Log) Producers() []ProducerInfo {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	out := make([]ProducerInfo, 0, len(l.producers))
	for id, p := range l.producers {
		pi := ProducerInfo{ProducerID: id, Epoch: p.epoch, LastSequence: -1, LastOffset: p.lastOffset(), TxnStartOffset: -1}
		if n := len(p.batches); n > 0 {
			pi.LastSequence = p.batches[n-1].lastSeq
		}
		if p.txnOpen {
			pi.TxnStartOffset = p.txnFirst
		}
		out = append(out, pi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ProducerID < out[j].ProducerID })
	return out
}

// AppendMarker appends m, a COMMIT or ABORT control batch for producer
// m.ProducerID at m.Epoch, ending its transaction in this partition, and
// waits until it is durable under the log's sync policy (see WriteMarker
// for the markers refused). m.CoordinatorEpoch goes into the marker's
// value. A marker for a producer with no open transaction here is written
// all the same (a retry after a restart); it changes nothing.
func (l *Log) AppendMarker(ctx context.Context, m Marker) (AppendResult, error) {
	res, err := l.WriteMarker(m, -1)
	if err != nil {
		return AppendResult{}, err
	}
	return res, l.WaitDurable(ctx, res.LastOffset+1)
}

// controlKind returns the control type of the marker b (one batch) and
// the coordinator epoch in its value (-1 if it has none).
func controlKind(b []byte) (kind int16, coordEpoch int32, ok bool) {
	kind, coordEpoch = -1, -1
	err := batch.Scan(b, 1<<20, func(r *batch.Record) error {
		if len(r.Key) >= 4 && kind < 0 {
			kind = int16(binary.BigEndian.Uint16(r.Key[2:]))
			if len(r.Value) >= 6 {
				coordEpoch = int32(binary.BigEndian.Uint32(r.Value[2:]))
			}
		}
		return nil
	})
	return kind, coordEpoch, err == nil && kind >= 0
}

// trackTxnLocked updates transaction state with a batch just written (h
// has its offsets; b starts with the batch), before it becomes readable.
// Caller holds appendMu.
func (l *Log) trackTxnLocked(h batch.Header, b []byte) {
	if h.ProducerID < 0 || !h.Transactional() {
		return
	}
	p := l.producers[h.ProducerID]
	if p == nil {
		p = newProducerState(h.ProducerEpoch)
		l.producers[h.ProducerID] = p
	}
	base := Offset(h.BaseOffset)
	if !h.Control() {
		if !p.txnOpen {
			p.txnOpen, p.txnFirst = true, base
			l.txn.mu.Lock()
			if l.txn.open == nil {
				l.txn.open = map[int64]Offset{}
			}
			l.txn.open[h.ProducerID] = base
			l.txn.mu.Unlock()
		}
		return
	}
	kind, coordEpoch, ok := controlKind(b[:h.Size()])
	if !ok || (kind != controlAbort && kind != controlCommit) {
		return
	}
	// Every replica and recovery keep the same highest coordinator epoch,
	// so that whichever comes to lead refuses the same stale markers.
	p.coordEpoch = max(p.coordEpoch, coordEpoch)
	if !p.txnOpen {
		return
	}
	first := p.txnFirst
	p.txnOpen, p.txnFirst = false, 0
	l.txn.mu.Lock()
	delete(l.txn.open, h.ProducerID)
	if kind == controlAbort {
		l.txn.aborted = append(l.txn.aborted, AbortedTxn{
			ProducerID: h.ProducerID, FirstOffset: first, LastOffset: base,
			LastStableOffset: l.txn.firstOpenLocked(base + 1),
		})
	}
	l.txn.mu.Unlock()
}

// recoverTxn is trackTxnLocked for a batch found by the open-time scan of
// segment s at file position pos.
func (l *Log) recoverTxn(s *segment, h batch.Header, pos int64) error {
	if h.ProducerID < 0 || !h.Transactional() {
		return nil
	}
	var b []byte
	if h.Control() {
		b = make([]byte, h.Size())
		if _, err := s.f.ReadAt(b, pos); err != nil {
			return fmt.Errorf("storage: read marker at %d of %s: %w", h.BaseOffset, s.path, err)
		}
	}
	l.trackTxnLocked(h, b)
	return nil
}

// beginTxnRecovery sets the transaction state at open from the producer
// snapshot at from (-1: none) and the aborted-transaction indexes of the
// segments below it (present: the bases whose index file exists); the scan
// of the segments from from on adds the rest.
func (l *Log) beginTxnRecovery(from Offset, present map[Offset]bool) error {
	l.txn.open = map[int64]Offset{}
	l.txn.aborted = nil
	for id, p := range l.producers {
		if p.txnOpen {
			l.txn.open[id] = p.txnFirst
		}
	}
	if from < 0 {
		return nil
	}
	for _, s := range l.segs {
		if s.base >= from {
			break
		}
		if !present[s.base] {
			continue
		}
		data, err := readFile(l.fs, l.path(segmentName(s.base, txnIndexSuffix)))
		if isNotExist(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("storage: read %s: %w", segmentName(s.base, txnIndexSuffix), err)
		}
		es, err := decodeTxnIndex(data)
		if err != nil {
			return fmt.Errorf("storage: %s: %w", segmentName(s.base, txnIndexSuffix), err)
		}
		for _, e := range es {
			if e.LastOffset >= s.base && e.LastOffset < min(s.next, from) {
				l.txn.aborted = append(l.txn.aborted, e)
			}
		}
	}
	sort.Slice(l.txn.aborted, func(i, j int) bool { return l.txn.aborted[i].LastOffset < l.txn.aborted[j].LastOffset })
	return nil
}

// writeTxnIndex writes the aborted-transaction index of the segment at
// base, whose markers lie in [base, end), if it has any; and drops entries
// wholly below the log start from memory.
func (l *Log) writeTxnIndex(base, end Offset) error {
	l.mu.RLock()
	start := l.logStart
	l.mu.RUnlock()
	l.txn.mu.Lock()
	var es []AbortedTxn
	keep := l.txn.aborted[:0]
	for _, e := range l.txn.aborted {
		if e.LastOffset >= base && e.LastOffset < end {
			es = append(es, e)
		}
		if e.LastOffset >= start {
			keep = append(keep, e)
		}
	}
	l.txn.aborted = keep
	l.txn.mu.Unlock()
	if len(es) == 0 {
		// Compaction may have dropped the segment's last ABORT marker.
		if err := l.fs.Remove(filepath.Join(l.dir, segmentName(base, txnIndexSuffix))); err != nil && !isNotExist(err) {
			return err
		}
		return nil
	}
	return writeFileAtomic(l.fs, filepath.Join(l.dir, segmentName(base, txnIndexSuffix)), encodeTxnIndex(es))
}

func encodeTxnIndex(es []AbortedTxn) []byte {
	b := make([]byte, 0, len(es)*txnEntrySize)
	for _, e := range es {
		b = binary.BigEndian.AppendUint16(b, txnIndexVersion)
		b = binary.BigEndian.AppendUint64(b, uint64(e.ProducerID))
		b = binary.BigEndian.AppendUint64(b, uint64(e.FirstOffset))
		b = binary.BigEndian.AppendUint64(b, uint64(e.LastOffset))
		b = binary.BigEndian.AppendUint64(b, uint64(e.LastStableOffset))
	}
	return b
}

func decodeTxnIndex(b []byte) ([]AbortedTxn, error) {
	if len(b)%txnEntrySize != 0 {
		return nil, fmt.Errorf("aborted-transaction index of %d bytes is not a whole number of %d-byte entries", len(b), txnEntrySize)
	}
	es := make([]AbortedTxn, 0, len(b)/txnEntrySize)
	for ; len(b) > 0; b = b[txnEntrySize:] {
		if v := binary.BigEndian.Uint16(b); v != txnIndexVersion {
			return nil, fmt.Errorf("aborted-transaction index entry version %d", v)
		}
		e := AbortedTxn{
			ProducerID:       int64(binary.BigEndian.Uint64(b[2:])),
			FirstOffset:      Offset(binary.BigEndian.Uint64(b[10:])),
			LastOffset:       Offset(binary.BigEndian.Uint64(b[18:])),
			LastStableOffset: Offset(binary.BigEndian.Uint64(b[26:])),
		}
		if e.FirstOffset < 0 || e.LastOffset < e.FirstOffset {
			return nil, fmt.Errorf("aborted-transaction index entry for producer %d spans [%d, %d]", e.ProducerID, e.FirstOffset, e.LastOffset)
		}
		es = append(es, e)
	}
	return es, nil
}

// AppendTrusted appends batches the broker wrote itself (a transactional
// offset commit's, which carries no sequence number): validated as stored
// batches are (batch.Validate), not as a producer's, and waited for until
// durable under the log's sync policy.
func (l *Log) AppendTrusted(ctx context.Context, batches []byte) error {
	res, err := l.WriteTrusted(batches, -1)
	if err != nil {
		return err
	}
	return l.WaitDurable(ctx, res.LastOffset+1)
}

// txnFate is what compaction may do with a transactional batch.
type txnFate uint8

const (
	txnUndecided txnFate = iota // at or past the first unstable offset: kept as it is
	txnCommitted                // compacted like any batch
	txnAborted                  // dropped
)

// txnFates tells the fate of transactional batches as of one compaction
// pass: the first unstable offset then, and the aborted transactions by
// producer.
type txnFates struct {
	unstable Offset
	aborted  map[int64][]AbortedTxn
}

// txnFates returns the fates as they stand now. The first unstable offset
// only grows, and a batch below it belongs to a transaction whose marker is
// written: aborted if an aborted-transaction entry of its producer covers
// it, else committed.
func (l *Log) txnFates() txnFates {
	l.txn.mu.RLock()
	defer l.txn.mu.RUnlock()
	f := txnFates{unstable: l.txn.firstOpenLocked(Offset(1<<63 - 1)), aborted: map[int64][]AbortedTxn{}}
	for _, a := range l.txn.aborted {
		f.aborted[a.ProducerID] = append(f.aborted[a.ProducerID], a)
	}
	return f
}

func (f txnFates) of(h batch.Header) txnFate {
	if Offset(h.LastOffset()) >= f.unstable {
		return txnUndecided
	}
	base := Offset(h.BaseOffset)
	for _, a := range f.aborted[h.ProducerID] {
		if a.FirstOffset <= base && base < a.LastOffset {
			return txnAborted
		}
	}
	return txnCommitted
}

// removeTxnIndexes deletes the aborted-transaction indexes of segments
// taken out of the log (retention, or merged by compaction); one left by a
// crash is removed as an orphan on open.
func (l *Log) removeTxnIndexes(victims []*segment) {
	for _, s := range victims {
		if err := l.fs.Remove(filepath.Join(l.dir, segmentName(s.base, txnIndexSuffix))); err != nil && !isNotExist(err) {
			l.opts.Logger.Warn("storage: removing an aborted-transaction index", "dir", l.dir, "base", s.base, "err", err)
		}
	}
}

// forgetAborted drops the aborted-transaction entries of the ABORT markers
// in es (by producer id and marker offset): compaction removed the markers.
func (l *Log) forgetAborted(es []AbortedTxn) {
	if len(es) == 0 {
		return
	}
	gone := make(map[AbortedTxn]bool, len(es))
	for _, e := range es {
		gone[AbortedTxn{ProducerID: e.ProducerID, LastOffset: e.LastOffset}] = true
	}
	l.txn.mu.Lock()
	defer l.txn.mu.Unlock()
	l.txn.aborted = slices.DeleteFunc(l.txn.aborted, func(e AbortedTxn) bool {
		return gone[AbortedTxn{ProducerID: e.ProducerID, LastOffset: e.LastOffset}]
	})
}
