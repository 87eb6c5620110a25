package txn

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// FuzzLoad decodes arbitrary bytes as a __transaction_state record. A
// failure must wrap ErrBadRecord; a record that decodes must describe a
// state the coordinator can be in (checked here independently of the
// decoder), encode back to a record that decodes to the same state, and
// load into a coordinator whose invariants then hold.
func FuzzLoad(f *testing.F) {
	for _, p := range []persisted{
		{ID: "tx", ProducerID: 1, Epoch: 2, PrevProducerID: -1, NextProducerID: -1, Timeout: time.Minute, State: StateEmpty, LastUpdate: time.UnixMilli(1)},
		{ID: "tx", ProducerID: 1, Epoch: 2, PrevProducerID: -1, NextProducerID: 4, Timeout: time.Minute, State: StatePrepareCommit,
			Partitions: []TopicPartition{{"t", 0}, {"t", 1}}, LastUpdate: time.UnixMilli(1), Start: time.UnixMilli(0), Version: TV2},
		{ID: "tx", ProducerID: 1, Epoch: 0, PrevProducerID: 3, NextProducerID: -1, Timeout: time.Second, State: StateOngoing,
			Partitions: []TopicPartition{{"u", 7}}, LastUpdate: time.UnixMilli(1), Start: time.UnixMilli(1)},
	} {
		rec := p.record(4)
		f.Add(rec.Partition, rec.Key, rec.Value, false)
	}
	f.Add(int32(0), []byte{0, 0, 0, 2, 't', 'x'}, []byte(nil), true)

	f.Fuzz(func(t *testing.T, partition int32, key, value []byte, tombstone bool) {
		if tombstone {
			value = nil
		} else if value == nil {
			value = []byte{}
		}
		rec := Record{Partition: partition, Key: key, Value: value}
		id, p, err := decodeRecord(rec, 4)
		if err != nil {
			if !IsBadRecord(err) {
				t.Fatalf("error %v does not wrap ErrBadRecord", err)
			}
			return
		}
		if id == "" || Partition(id, 4) != partition {
			t.Fatalf("decoded id %q for partition %d", id, partition)
		}
		if p != nil {
			if p.ID != id || p.ProducerID < 0 || p.Epoch < 0 || p.Timeout <= 0 || p.State > StateCompleteAbort {
				t.Fatalf("impossible state decoded: %+v", p)
			}
			if !slices.IsSortedFunc(p.Partitions, cmpTP) || len(slices.Compact(slices.Clone(p.Partitions))) != len(p.Partitions) {
				t.Fatalf("partitions not sorted and distinct: %v", p.Partitions)
			}
			if p.State == StateOngoing && (len(p.Partitions) == 0 || p.Start.IsZero()) {
				t.Fatalf("Ongoing without partitions: %+v", p)
			}
			if p.State.idle() && (len(p.Partitions) > 0 || !p.Start.IsZero()) {
				t.Fatalf("%v with partitions: %+v", p.State, p)
			}
			// Re-encoding: the state survives (bytes may differ: tags
			// Weir does not keep, other value versions).
			id2, p2, err := decodeRecord(p.record(4), 4)
			if err != nil || id2 != id {
				t.Fatalf("re-encoded record does not decode: %q %v", id2, err)
			}
			if diff := cmp.Diff(p, p2); diff != "" {
				t.Fatalf("re-encoding changed the state (-+):\n%s", diff)
			}
		}
		c, err := New(Options{StatePartitions: 4, ProducerIDs: &counterIDs{}})
		if err != nil {
			t.Fatal(err)
		}
		c.BeginLoad(partition)
		if err := c.Load(rec); err != nil {
			t.Fatalf("Load refused what decodes: %v", err)
		}
		c.FinishLoad(time.UnixMilli(10), partition, 1)
		if err := checkInvariants(c); err != nil {
			t.Fatal(err)
		}
		rd := c.Ready()
		if p != nil && p.State.preparing() && len(p.Partitions) > 0 && len(rd.Markers) != 1 {
			t.Fatalf("a loaded %v sent %d markers", p.State, len(rd.Markers))
		}
	})
}
