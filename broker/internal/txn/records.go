package txn

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The records of __transaction_state use Kafka's encodings (Kafka's
// TransactionLogKey and TransactionLogValue; KIP-98 introduced them, KIP-915
// made the value flexible as version 1, KIP-890 added its tagged fields),
// built with kmsg's TxnMetadataKey and TxnMetadataValue:
//
//	key   int16 version 0: {transactional id}
//	value int16 version 0: {producer id int64, producer epoch int16,
//	             timeout ms int32, state int8, partitions: [{topic,
//	             [partition int32]}], last update ms int64, start ms int64
//	             (-1 when no transaction is open)}
//	      version 1 (flexible): the same, plus tagged fields
//	             0 previous producer id, 1 next producer id (-1 if none),
//	             2 client transaction version
//
// A nil value is a tombstone: the transactional id expired. The topic is
// compacted; the latest record per key is the state. Weir writes version 0
// unless a tagged field differs from its default (a KIP-890 part 2 client,
// or a producer id rotated because its epoch ran out), so that tools that
// read Kafka's own topic read Weir's.
const (
	keyVersion = 0
	valueV0    = 0
	valueV1    = 1
)

// ErrBadRecord is wrapped by Load for a __transaction_state record that
// does not decode or does not describe a possible state.
var ErrBadRecord = errors.New("txn: undecodable __transaction_state record")

// IsBadRecord reports whether err is, or wraps, ErrBadRecord.
func IsBadRecord(err error) bool { return errors.Is(err, ErrBadRecord) }

// persisted is what a transactional id's record carries: everything about
// it that survives a restart.
type persisted struct {
	ID             TransactionalID
	ProducerID     ProducerID
	Epoch          Epoch
	PrevProducerID ProducerID // NoProducerID if none
	// NextProducerID is set while a KIP-890 part 2 transaction whose epoch
	// ran out is finishing: the id the producer continues with.
	NextProducerID ProducerID
	Timeout        time.Duration
	State          State
	// Partitions are sorted (TopicPartition.Less) and distinct.
	Partitions []TopicPartition
	LastUpdate time.Time
	// Start is when the open transaction began; zero if none.
	Start   time.Time
	Version TransactionVersion
}

func encodeKey(id TransactionalID) []byte {
	k := kmsg.TxnMetadataKey{Version: keyVersion, TransactionalID: string(id)}
	return k.AppendTo(nil)
}

// encodeValue returns p's value bytes.
func encodeValue(p *persisted) []byte {
	v := kmsg.NewTxnMetadataValue()
	v.Version = valueV0
	if p.PrevProducerID != NoProducerID || p.NextProducerID != NoProducerID || p.Version != 0 {
		v.Version = valueV1
	}
	v.ProducerID = int64(p.ProducerID)
	v.ProducerEpoch = int16(p.Epoch)
	v.TimeoutMillis = int32(p.Timeout / time.Millisecond)
	v.State = kmsg.TransactionState(p.State)
	if p.State != StateEmpty {
		// Kafka writes a null partition array for Empty, a list (maybe
		// empty) otherwise.
		v.Topics = []kmsg.TxnMetadataValueTopic{}
	}
	for _, tp := range p.Partitions {
		if n := len(v.Topics); n == 0 || v.Topics[n-1].Topic != tp.Topic {
			v.Topics = append(v.Topics, kmsg.TxnMetadataValueTopic{Topic: tp.Topic})
		}
		last := &v.Topics[len(v.Topics)-1]
		last.Partitions = append(last.Partitions, tp.Partition)
	}
	v.LastUpdateTimestamp = p.LastUpdate.UnixMilli()
	v.StartTimestamp = -1
	if !p.Start.IsZero() {
		v.StartTimestamp = p.Start.UnixMilli()
	}
	v.PreviousProducerID = int64(p.PrevProducerID)
	v.NextProducerID = int64(p.NextProducerID)
	v.ClientTransactionVersion = int16(p.Version)
	return v.AppendTo(nil)
}

// record returns p's record for a coordinator with statePartitions
// partitions.
func (p *persisted) record(statePartitions int32) Record {
	return Record{Partition: Partition(p.ID, statePartitions), Key: encodeKey(p.ID), Value: encodeValue(p)}
}

// decodeRecord decodes rec, checking that it belongs to its partition of a
// __transaction_state with statePartitions partitions and that it describes
// a state the coordinator can be in. A tombstone (or a Dead value) returns
// a nil *persisted and the id.
func decodeRecord(rec Record, statePartitions int32) (TransactionalID, *persisted, error) {
	if len(rec.Key) < 2 {
		return "", nil, fmt.Errorf("%w: key of %d bytes", ErrBadRecord, len(rec.Key))
	}
	if version := int16(rec.Key[0])<<8 | int16(rec.Key[1]); version != keyVersion {
		return "", nil, fmt.Errorf("%w: key version %d", ErrBadRecord, version)
	}
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(rec.Key); err != nil {
		return "", nil, fmt.Errorf("%w: key: %w", ErrBadRecord, err)
	}
	id := TransactionalID(k.TransactionalID)
	if id == "" {
		return "", nil, fmt.Errorf("%w: empty transactional id", ErrBadRecord)
	}
	if p := Partition(id, statePartitions); p != rec.Partition {
		return "", nil, fmt.Errorf("%w: transactional id %q belongs to partition %d, not %d", ErrBadRecord, id, p, rec.Partition)
	}
	if rec.Value == nil {
		return id, nil, nil
	}
	var v kmsg.TxnMetadataValue
	if err := v.ReadFrom(rec.Value); err != nil {
		return "", nil, fmt.Errorf("%w: value of %q: %w", ErrBadRecord, id, err)
	}
	bad := func(format string, args ...any) (TransactionalID, *persisted, error) {
		return "", nil, fmt.Errorf("%w: value of %q: %s", ErrBadRecord, id, fmt.Sprintf(format, args...))
	}
	if v.Version != valueV0 && v.Version != valueV1 {
		return bad("version %d", v.Version)
	}
	if State(v.State) == StateDead {
		return id, nil, nil
	}
	p := &persisted{
		ID: id, ProducerID: ProducerID(v.ProducerID), Epoch: Epoch(v.ProducerEpoch),
		PrevProducerID: NoProducerID, NextProducerID: NoProducerID,
		Timeout: time.Duration(v.TimeoutMillis) * time.Millisecond, State: State(v.State),
		LastUpdate: time.UnixMilli(v.LastUpdateTimestamp),
	}
	if v.Version >= valueV1 {
		p.PrevProducerID, p.NextProducerID = ProducerID(v.PreviousProducerID), ProducerID(v.NextProducerID)
		p.Version = TransactionVersion(v.ClientTransactionVersion)
	}
	switch {
	case p.ProducerID < 0:
		return bad("producer id %d", p.ProducerID)
	case p.Epoch < 0:
		return bad("producer epoch %d", p.Epoch)
	case v.TimeoutMillis <= 0:
		return bad("timeout %d ms", v.TimeoutMillis)
	case p.State < StateEmpty || p.State > StateCompleteAbort:
		return bad("state %d", v.State)
	case p.PrevProducerID < NoProducerID || p.NextProducerID < NoProducerID:
		return bad("previous/next producer id %d/%d", p.PrevProducerID, p.NextProducerID)
	case p.NextProducerID != NoProducerID && !p.State.preparing():
		return bad("next producer id %d in state %v", p.NextProducerID, p.State)
	case p.Version < 0 || p.Version > TV2:
		return bad("client transaction version %d", p.Version)
	case v.LastUpdateTimestamp < 0:
		return bad("last update %d ms", v.LastUpdateTimestamp)
	case v.StartTimestamp < -1:
		return bad("start %d ms", v.StartTimestamp)
	}
	if v.StartTimestamp >= 0 && !p.State.idle() {
		// A start recorded with no transaction open (Kafka keeps the last
		// one in its Complete records) means nothing here.
		p.Start = time.UnixMilli(v.StartTimestamp)
	}
	for _, t := range v.Topics {
		if t.Topic == "" {
			return bad("empty topic name")
		}
		for _, part := range t.Partitions {
			if part < 0 {
				return bad("partition %d of %q", part, t.Topic)
			}
			p.Partitions = append(p.Partitions, TopicPartition{t.Topic, part})
		}
	}
	slices.SortFunc(p.Partitions, cmpTP)
	if len(slices.Compact(slices.Clone(p.Partitions))) != len(p.Partitions) {
		return bad("a partition listed twice")
	}
	switch {
	case p.State.idle() && len(p.Partitions) > 0:
		return bad("%d partitions in state %v", len(p.Partitions), p.State)
	case p.State == StateOngoing && len(p.Partitions) == 0:
		return bad("no partitions in state Ongoing")
	case p.State == StateOngoing && p.Start.IsZero():
		return bad("no start time in state Ongoing")
	}
	return id, p, nil
}

func cmpTP(a, b TopicPartition) int {
	switch {
	case a.Less(b):
		return -1
	case b.Less(a):
		return 1
	}
	return 0
}
