package quorum

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// FuzzRecord: a record decodes to the payload it was made of, and changing
// any one bit of it, or of its key, is detected.
func FuzzRecord(f *testing.F) {
	f.Add([]byte{keyEntry, 0, 0, 0, 0, 0, 0, 0, 7}, []byte("payload"), uint(3))
	f.Add([]byte{keyHardState}, []byte{}, uint(0))
	f.Fuzz(func(t *testing.T, key, payload []byte, bit uint) {
		rec := appendRecord(nil, key, payload)
		got, err := decodeRecord(key, rec)
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("round trip: %q, %v", got, err)
		}
		// Flip one bit of the record or of the key.
		total := uint(len(rec)+len(key)) * 8
		bit %= total
		rec2, key2 := bytes.Clone(rec), bytes.Clone(key)
		if bit < uint(len(rec))*8 {
			rec2[bit/8] ^= 1 << (bit % 8)
		} else {
			bit -= uint(len(rec)) * 8
			key2[bit/8] ^= 1 << (bit % 8)
		}
		if _, err := decodeRecord(key2, rec2); err == nil {
			t.Fatalf("a flipped bit went undetected")
		}
	})
}

// FuzzDecodeRecord: arbitrary bytes never panic, and what decodes is what
// appendRecord would have written.
func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte{1}, appendRecord(nil, []byte{1}, []byte("x")))
	f.Add([]byte{}, []byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, key, val []byte) {
		p, err := decodeRecord(key, val)
		if err != nil {
			return
		}
		if !bytes.Equal(appendRecord(nil, key, p), val) {
			t.Fatalf("decoded %q from a record appendRecord would not write", p)
		}
	})
}

// FuzzIdentity: arbitrary bytes never panic; what decodes re-encodes to
// something that decodes the same.
func FuzzIdentity(f *testing.F) {
	f.Add(identity{ClusterID: "c1", NodeID: 2, Voters: []Voter{{1, "a:1"}, {2, "b:2"}}}.encode())
	f.Add([]byte{identityVersion, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := decodeIdentity(b)
		if err != nil {
			return
		}
		id2, err := decodeIdentity(id.encode())
		if err != nil {
			t.Fatalf("re-encoded identity does not decode: %v", err)
		}
		if diff := cmp.Diff(id, id2); diff != "" {
			t.Fatalf("identity round trip (-first +second):\n%s", diff)
		}
	})
}

// FuzzReadFrame: arbitrary bytes never panic nor allocate past the cap;
// what decodes re-frames to a message that decodes equal.
func FuzzReadFrame(f *testing.F) {
	const maxBytes = 1 << 16
	m := &pb.Message{Type: pb.MsgApp.Enum(), To: new(uint64(2)), From: new(uint64(1)), Term: new(uint64(3)),
		Entries: []*pb.Entry{{Index: new(uint64(5)), Term: new(uint64(3)), Data: []byte("d")}}}
	good, err := appendFrame(nil, m, maxBytes)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := readFrame(bytes.NewReader(b), maxBytes)
		if err != nil {
			return
		}
		fr, err := appendFrame(nil, m, maxBytes)
		if err != nil {
			t.Fatalf("re-frame: %v", err)
		}
		m2, err := readFrame(bytes.NewReader(fr), maxBytes)
		if err != nil || !proto.Equal(m, m2) {
			t.Fatalf("frame round trip: %v %v", m2, err)
		}
	})
}

// FuzzParseVoters: what parses formats back to the same voters.
func FuzzParseVoters(f *testing.F) {
	f.Add("1@127.0.0.1:9093,2@127.0.0.1:9193,3@[::1]:9293")
	f.Add("1@a,1@b")
	f.Fuzz(func(t *testing.T, s string) {
		vs, err := ParseVoters(s)
		if err != nil {
			return
		}
		vs2, err := ParseVoters(FormatVoters(vs))
		if err != nil {
			t.Fatalf("formatted voters %q do not parse: %v", FormatVoters(vs), err)
		}
		if diff := cmp.Diff(vs, vs2); diff != "" {
			t.Fatalf("voters round trip (-first +second):\n%s", diff)
		}
	})
}
