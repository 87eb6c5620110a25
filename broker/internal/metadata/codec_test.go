package metadata

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// randomRecord returns any record, valid or not for an image, with field
// values drawn to include the extremes of their types.
func randomRecord(r *rand.Rand) Record {
	i32 := func() int32 {
		switch r.IntN(4) {
		case 0:
			return math.MinInt32
		case 1:
			return math.MaxInt32
		default:
			return int32(r.IntN(20)) - 2
		}
	}
	i64 := func() int64 {
		switch r.IntN(4) {
		case 0:
			return math.MinInt64
		case 1:
			return math.MaxInt64
		default:
			return int64(r.IntN(1000)) - 2
		}
	}
	str := func() string {
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return string(b)
	}
	uuid := func() (u [16]byte) {
		for i := range u {
			u[i] = byte(r.IntN(4))
		}
		return u
	}
	nodes := func(min int) []NodeID {
		n := min + r.IntN(4)
		if n == 0 {
			return nil
		}
		ns := make([]NodeID, n)
		for i := range ns {
			ns[i] = NodeID(i32())
		}
		return ns
	}
	if r.IntN(5) == 0 {
		return randomSecurityRecord(r, str)
	}
	switch RecordType(1 + r.IntN(int(TypeReassignment))) {
	case TypeRegisterBroker:
		x := RegisterBrokerRecord{Node: NodeID(i32()), Incarnation: uuid(), Epoch: BrokerEpoch(i64()), Rack: str(), Fenced: r.IntN(2) == 0}
		for range r.IntN(3) {
			x.Listeners = append(x.Listeners, Listener{Name: str(), Host: str(), Port: uint16(r.IntN(1 << 16)), SecurityProtocol: int16(r.IntN(1<<16) - 1<<15)})
		}
		return x
	case TypeFenceBroker:
		return FenceBrokerRecord{Node: NodeID(i32()), Epoch: BrokerEpoch(i64())}
	case TypeUnfenceBroker:
		return UnfenceBrokerRecord{Node: NodeID(i32()), Epoch: BrokerEpoch(i64())}
	case TypeUnregisterBroker:
		return UnregisterBrokerRecord{Node: NodeID(i32()), Epoch: BrokerEpoch(i64())}
	case TypeTopic:
		return TopicRecord{ID: uuid(), Name: TopicName(str())}
	case TypePartition:
		return PartitionRecord{Topic: uuid(), Partition: i32(), Replicas: nodes(0), ISR: nodes(0), Leader: NodeID(i32()), LeaderEpoch: LeaderEpoch(i32()), PartitionEpoch: PartitionEpoch(i32())}
	case TypePartitionChange:
		x := PartitionChangeRecord{Topic: uuid(), Partition: i32()}
		if r.IntN(2) == 0 {
			l := NodeID(i32())
			x.Leader = &l
		}
		if r.IntN(2) == 0 {
			x.ISR = nodes(1)
		}
		return x
	case TypeConfig:
		x := ConfigRecord{Resource: ConfigResource{Type: ConfigType(r.IntN(256) - 128), Name: str()}, Key: str()}
		if r.IntN(2) == 0 {
			v := str()
			x.Value = &v
		}
		return x
	case TypeProducerIDs:
		return ProducerIDsRecord{Node: NodeID(i32()), First: ProducerID(i64()), Size: i32()}
	case TypeRemoveTopic:
		return RemoveTopicRecord{ID: uuid()}
	case TypeReassignment:
		x := ReassignmentRecord{Topic: uuid(), Partition: i32(), Replicas: nodes(0)}
		if r.IntN(2) == 0 {
			x.Target, x.Original = nodes(1), nodes(1)
		}
		return x
	default:
		return BrokerEpochFloorRecord{Epoch: BrokerEpoch(i64())}
	}
}

// FuzzRoundTrip checks decode(encode(records)) == records for random
// records of every type, and that the encoding is canonical.
func FuzzRoundTrip(f *testing.F) {
	for s := range uint64(20) {
		f.Add(s, uint8(s))
	}
	f.Fuzz(func(t *testing.T, seed uint64, n uint8) {
		r := rand.New(rand.NewPCG(seed, uint64(n)))
		records := make([]Record, int(n)%40)
		for i := range records {
			records[i] = randomRecord(r)
		}
		data := EncodeEntry(records)
		got, err := DecodeEntry(data)
		if err != nil {
			t.Fatalf("decoding what was encoded: %v", err)
		}
		if len(records) == 0 {
			records = nil
		}
		if len(got) == 0 {
			got = nil
		}
		if d := cmp.Diff(records, got); d != "" {
			t.Fatalf("decode(encode(records)) differs (-want +got):\n%s", d)
		}
		if again := EncodeEntry(got); !bytes.Equal(again, data) {
			t.Fatalf("re-encoding differs:\n%x\n%x", data, again)
		}
	})
}

// FuzzDecode feeds arbitrary bytes to the entry and snapshot decoders and
// to an image: nothing panics; what is refused is refused as malformed or
// unknown with a message naming the package; what decodes re-encodes to the
// same bytes; what an image accepts survives a snapshot and restore
// unchanged, and what it refuses leaves it unchanged.
func FuzzDecode(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		records := make([]Record, 1+r.IntN(4))
		for i := range records {
			records[i] = randomRecord(r)
		}
		f.Add(EncodeEntry(records))
	}
	for _, e := range validEntries() {
		f.Add(e)
	}
	f.Add(EncodeEntry(validSecurityRecords()))
	f.Add([]byte{})
	f.Add([]byte{entryMagic, 1, byte(TypeTopic), 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		records, err := DecodeEntry(data)
		if err != nil {
			if !IsMalformed(err) && !IsUnknownRecord(err) {
				t.Fatalf("decoding error of no known kind: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "metadata: ") {
				t.Fatalf("error does not name the package: %v", err)
			}
		} else if again := EncodeEntry(records); !bytes.Equal(again, data) {
			t.Fatalf("decoded entry re-encodes differently:\n%x\n%x", data, again)
		}
		// The same bytes as a snapshot (with the magic swapped) must decode
		// or fail alike.
		if len(data) > 0 && data[0] == entryMagic {
			snap := append([]byte{snapshotMagic}, data[1:]...)
			_, serr := decodeRecords(snap, snapshotMagic, "snapshot")
			if (serr == nil) != (err == nil) {
				t.Fatalf("entry and snapshot decoding disagree: %v / %v", err, serr)
			}
		}

		// Apply to an image holding some state: refusal leaves it as it
		// was; acceptance survives a snapshot round trip.
		im := NewImage()
		for i, e := range validEntries() {
			if err := im.Apply(uint64(i+1), e); err != nil {
				t.Fatal(err)
			}
		}
		before := dumpImage(im)
		err = im.Apply(100, data)
		if err != nil {
			if !IsMalformed(err) && !IsUnknownRecord(err) && !IsInvalid(err) {
				t.Fatalf("apply error of no known kind: %v", err)
			}
			if d := cmp.Diff(before, dumpImage(im)); d != "" && !(IsInvalid(err) && onlyAppliedMoved(t, before, im)) {
				t.Fatalf("refused entry changed the image (%v):\n%s", err, d)
			}
			return
		}
		checkImageInvariants(t, im)
		snap, idx, err := im.Snapshot()
		if err != nil || idx != 100 {
			t.Fatalf("snapshot: %d, %v", idx, err)
		}
		re := NewImage()
		if err := re.Restore(snap, idx); err != nil {
			t.Fatalf("restoring the snapshot of an image: %v", err)
		}
		if d := cmp.Diff(dumpImage(im), dumpImage(re)); d != "" {
			t.Fatalf("restored image differs (-before +restored):\n%s", d)
		}
	})
}

// onlyAppliedMoved reports whether im equals before except for its applied
// offset.
func onlyAppliedMoved(t *testing.T, before imageDump, im *Image) bool {
	t.Helper()
	after := dumpImage(im)
	after.Applied = before.Applied
	return cmp.Equal(before, after)
}

func TestDecodeRefusals(t *testing.T) {
	topic := EncodeEntry([]Record{TopicRecord{ID: TopicID{1}, Name: "t"}})
	for _, c := range []struct {
		name string
		data []byte
		want func(error) bool
		msg  string
	}{
		{"empty", nil, IsMalformed, "magic"},
		{"wrong magic", append([]byte{snapshotMagic}, topic[1:]...), IsMalformed, "magic byte"},
		{"truncated", topic[:len(topic)-1], IsMalformed, "exceeds"},
		{"trailing", append(append([]byte{}, topic...), 0), IsMalformed, "trailing"},
		{"count too big", []byte{entryMagic, 9}, IsMalformed, "count 9 exceeds"},
		{"unknown type", []byte{entryMagic, 1, 99, 0, 0}, IsUnknownRecord, "unknown record type 99"},
		{"unknown version", []byte{entryMagic, 1, byte(TypeTopic), 1, 0}, IsUnknownRecord, "Topic version 1"},
		{"overlong varint", []byte{entryMagic, 1, byte(TypeRemoveTopic), 0, 0x90, 0x00}, IsMalformed, "shortest form"},
		{"bad bool", badBool(), IsMalformed, "neither 0 nor 1"},
		{"empty ISR change", []byte{entryMagic, 1, byte(TypePartitionChange), 0, 19, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, changeISR, 0}, IsMalformed, "empty ISR"},
		{"unknown flags", []byte{entryMagic, 1, byte(TypePartitionChange), 0, 18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4}, IsMalformed, "unknown change flags"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeEntry(c.data)
			if err == nil || !c.want(err) || !strings.Contains(err.Error(), c.msg) || !strings.HasPrefix(err.Error(), "metadata: ") {
				t.Fatalf("got %v, want an error containing %q of the right kind", err, c.msg)
			}
		})
	}
}

// badBool is a config record whose value-present flag is 2.
func badBool() []byte {
	b := EncodeEntry([]Record{ConfigRecord{Resource: ConfigResource{Type: ConfigBroker}, Key: "k"}})
	b[len(b)-1] = 2
	return b
}
