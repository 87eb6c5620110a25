package txn

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestPartitionIsKafkas checks Partition against values computed outside Go
// from Kafka's rule (abs of the Java hash code, Integer.MIN_VALUE as 0,
// modulo the count), including negative hash codes, where it differs from
// masking the sign bit.
func TestPartitionIsKafkas(t *testing.T) {
	for _, c := range []struct {
		id   TransactionalID
		want int32
	}{
		{"tx", 16},                       // hash 3716
		{"polygenelubricants", 0},        // hash Integer.MIN_VALUE
		{"transactional-producer-1", 48}, // hash -447076998
		{"zzzzzzzz", 12},                 // hash -1910022912
	} {
		if got := Partition(c.id, 50); got != c.want {
			t.Errorf("Partition(%q, 50) = %d, want %d", c.id, got, c.want)
		}
	}
}

// kafkaValueV0 writes a TransactionLogValue v0 by hand, field by field as
// Kafka's schema lists them, to check the kmsg-based encoder against.
func kafkaValueV0(pid int64, epoch int16, timeoutMs int32, state int8, topics []struct {
	name  string
	parts []int32
}, lastMs, startMs int64) []byte {
	b := binary.BigEndian.AppendUint16(nil, 0)
	b = binary.BigEndian.AppendUint64(b, uint64(pid))
	b = binary.BigEndian.AppendUint16(b, uint16(epoch))
	b = binary.BigEndian.AppendUint32(b, uint32(timeoutMs))
	b = append(b, byte(state))
	if topics == nil {
		b = binary.BigEndian.AppendUint32(b, 0xffffffff) // null
	} else {
		b = binary.BigEndian.AppendUint32(b, uint32(len(topics)))
	}
	for _, t := range topics {
		b = binary.BigEndian.AppendUint16(b, uint16(len(t.name)))
		b = append(b, t.name...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(t.parts)))
		for _, p := range t.parts {
			b = binary.BigEndian.AppendUint32(b, uint32(p))
		}
	}
	b = binary.BigEndian.AppendUint64(b, uint64(lastMs))
	return binary.BigEndian.AppendUint64(b, uint64(startMs))
}

func TestRecordEncodingIsKafkas(t *testing.T) {
	p := &persisted{
		ID: "tx", ProducerID: 7, Epoch: 3, PrevProducerID: NoProducerID, NextProducerID: NoProducerID,
		Timeout: 60 * time.Second, State: StateOngoing,
		Partitions: []TopicPartition{{"a", 0}, {"a", 2}, {"b", 1}},
		LastUpdate: time.UnixMilli(1700000000123), Start: time.UnixMilli(1700000000000),
	}
	rec := p.record(50)
	wantKey := append(binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, 0), 2), "tx"...)
	if diff := cmp.Diff(wantKey, rec.Key); diff != "" {
		t.Errorf("key (-want +got):\n%s", diff)
	}
	wantValue := kafkaValueV0(7, 3, 60000, 1, []struct {
		name  string
		parts []int32
	}{{"a", []int32{0, 2}}, {"b", []int32{1}}}, 1700000000123, 1700000000000)
	if diff := cmp.Diff(wantValue, rec.Value); diff != "" {
		t.Errorf("value (-want +got):\n%s", diff)
	}
	if rec.Partition != 16 {
		t.Errorf("partition %d, want 16", rec.Partition)
	}

	// An idle record has no start: -1, as Kafka writes it; Empty has a
	// null partition array, the others an empty one.
	p.State, p.Partitions, p.Start = StateCompleteCommit, nil, time.Time{}
	wantValue = kafkaValueV0(7, 3, 60000, 4, []struct {
		name  string
		parts []int32
	}{}, 1700000000123, -1)
	if diff := cmp.Diff(wantValue, encodeValue(p)); diff != "" {
		t.Errorf("CompleteCommit value (-want +got):\n%s", diff)
	}
	p.State = StateEmpty
	wantValue = kafkaValueV0(7, 3, 60000, 0, nil, 1700000000123, -1)
	if diff := cmp.Diff(wantValue, encodeValue(p)); diff != "" {
		t.Errorf("Empty value (-want +got):\n%s", diff)
	}
}

// TestRecordRoundTrip: every state the coordinator writes, in both value
// versions, decodes to what was encoded.
func TestRecordRoundTrip(t *testing.T) {
	base := persisted{
		ID: "tx", ProducerID: 9, Epoch: 32767, PrevProducerID: NoProducerID, NextProducerID: NoProducerID,
		Timeout: time.Minute, LastUpdate: time.UnixMilli(5),
	}
	for _, c := range []func(p *persisted){
		func(p *persisted) { p.State = StateEmpty },
		func(p *persisted) {
			p.State, p.Partitions, p.Start = StateOngoing, []TopicPartition{{"t", 0}}, time.UnixMilli(0)
		},
		func(p *persisted) {
			p.State, p.Partitions, p.Start, p.Version, p.NextProducerID = StatePrepareCommit, []TopicPartition{{"t", 0}, {"u", 3}}, time.UnixMilli(1), TV2, 10
		},
		func(p *persisted) { p.State, p.Version = StatePrepareAbort, TV2 },
		func(p *persisted) { p.State, p.PrevProducerID = StateCompleteAbort, 8 },
	} {
		p := base
		c(&p)
		id, got, err := decodeRecord(p.record(4), 4)
		if err != nil || id != p.ID {
			t.Fatalf("%+v: decoded %q, %v", p, id, err)
		}
		if diff := cmp.Diff(&p, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
}

func TestOptionsValidateReportsAll(t *testing.T) {
	o := Options{StatePartitions: -1, OffsetsPartitions: -1, MaxTransactionTimeout: -1, TransactionalIDExpiration: -1, MaxTransactionalIDs: -1, MaxPartitionsPerTransaction: -1}
	err := o.Validate()
	if err == nil {
		t.Fatal("Validate accepted bad options")
	}
	for _, want := range []string{"StatePartitions", "OffsetsPartitions", "MaxTransactionTimeout", "TransactionalIDExpiration", "MaxTransactionalIDs", "MaxPartitionsPerTransaction", "ProducerIDs"} {
		if !contains(err.Error(), want) {
			t.Errorf("Validate: %v: does not name %s", err, want)
		}
	}
	d := Options{ProducerIDs: &counterIDs{}}
	if err := d.EnsureDefaults().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if d.MaxTransactionTimeout != 15*time.Minute || d.StatePartitions != 50 || d.TransactionalIDExpiration != 7*24*time.Hour {
		t.Errorf("defaults: %+v", d)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
