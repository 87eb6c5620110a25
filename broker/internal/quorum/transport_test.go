package quorum

import (
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
)

// newTestTransport starts node 1's transport of a 2-voter cluster "c1" and
// returns it with the channel it delivers to.
func newTestTransport(t *testing.T) (*transport, chan *pb.Message) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &Options{ID: 1, Voters: []Voter{{1, ln.Addr().String()}, {2, "127.0.0.1:1"}}, Dir: "/x",
		Logger: testLogger(t), MaxFrameBytes: 4096, DialBackoff: time.Millisecond, MaxDialBackoff: time.Millisecond}
	o.EnsureDefaults()
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	deliver := make(chan *pb.Message, 16)
	tr := newTransport(o, "c1", ln, deliver, m)
	tr.start()
	t.Cleanup(tr.close)
	return tr, deliver
}

func handshake(from, to uint64, cluster string) []byte {
	b := append([]byte(nil), handshakeMagic[:]...)
	b = binary.BigEndian.AppendUint64(b, from)
	b = binary.BigEndian.AppendUint64(b, to)
	b = binary.BigEndian.AppendUint16(b, uint16(len(cluster)))
	return append(b, cluster...)
}

// dialRaw connects to tr's listener and writes b.
func dialRaw(t *testing.T, tr *transport, b []byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", tr.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	return c
}

// closedByPeer reports whether the transport closes c within 5s.
func closedByPeer(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

func waitDelivered(t *testing.T, deliver chan *pb.Message) *pb.Message {
	t.Helper()
	select {
	case m := <-deliver:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("nothing delivered within 5s")
		return nil
	}
}

func TestTransportRefuses(t *testing.T) {
	msg := func(from, to uint64) *pb.Message {
		return &pb.Message{Type: pb.MsgHeartbeat.Enum(), From: new(from), To: new(to), Term: new(uint64(1))}
	}
	frame := func(m *pb.Message) []byte {
		b, err := appendFrame(nil, m, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	badCRC := frame(msg(2, 1))
	badCRC[len(badCRC)-1] ^= 1
	oversize := binary.BigEndian.AppendUint32(nil, 4097)
	oversize = append(oversize, 0, 0, 0, 0)
	tooBig := frame(&pb.Message{Type: pb.MsgApp.Enum(), From: new(uint64(2)), To: new(uint64(1)),
		Entries: []*pb.Entry{{Data: []byte(strings.Repeat("x", 5000))}}})
	if len(tooBig) <= 4096+frameHeaderSize {
		t.Fatalf("test frame of %d bytes is not above the cap", len(tooBig))
	}
	cases := []struct {
		name string
		b    []byte
	}{
		{"another cluster", append(handshake(2, 1, "c2"), frame(msg(2, 1))...)},
		{"for another node", append(handshake(2, 3, "c1"), frame(msg(2, 3))...)},
		{"from a non-voter", append(handshake(9, 1, "c1"), frame(msg(9, 1))...)},
		{"bad magic", append([]byte("XXXX"), handshake(2, 1, "c1")[4:]...)},
		{"frame checksum", append(handshake(2, 1, "c1"), badCRC...)},
		{"frame length above the cap", append(handshake(2, 1, "c1"), oversize...)},
		{"frame above the cap", append(handshake(2, 1, "c1"), tooBig...)},
		{"message for another node", append(handshake(2, 1, "c1"), frame(msg(2, 3))...)},
		{"message from another node than the handshake's", append(handshake(2, 1, "c1"), frame(msg(3, 1))...)},
	}
	tr, deliver := newTestTransport(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !closedByPeer(dialRaw(t, tr, tc.b)) {
				t.Fatalf("connection left open")
			}
			select {
			case m := <-deliver:
				t.Fatalf("delivered %v", m)
			default:
			}
		})
	}
	// The same bytes done right are delivered, and the connection stays:
	// a second frame on it is delivered too.
	t.Run("good", func(t *testing.T) {
		c := dialRaw(t, tr, append(handshake(2, 1, "c1"), frame(msg(2, 1))...))
		if m := waitDelivered(t, deliver); m.GetFrom() != 2 || m.GetType() != pb.MsgHeartbeat {
			t.Fatalf("delivered %v", m)
		}
		if _, err := c.Write(frame(msg(2, 1))); err != nil {
			t.Fatal(err)
		}
		waitDelivered(t, deliver)
	})
}

func TestOptionsValidateReportsEverything(t *testing.T) {
	o := Options{ID: 4, Voters: []Voter{{1, "a:1"}, {1, "b:1"}}, HeartbeatTicks: 10, ElectionTicks: 5,
		MaxFrameBytes: 10, DialBackoff: time.Second, MaxDialBackoff: time.Millisecond}
	err := o.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"node 4 is not one of the voters", "voter id 1 listed twice", "Dir is required",
		"HeartbeatTicks 10 must be positive and below ElectionTicks 5", "MaxFrameBytes 10", "DialBackoff"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestParseVoters(t *testing.T) {
	vs, err := ParseVoters("2@127.0.0.1:9193, 1@127.0.0.1:9093")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := FormatVoters(vs), "1@127.0.0.1:9093,2@127.0.0.1:9193"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	_, err = ParseVoters("0@a:1,x@b:2,3@nocolon,4@c:1,4@d:1,5")
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`"0@a:1": node id "0"`, `"x@b:2": node id "x"`, `"3@nocolon": address`, "voter id 4 listed twice", `voter 6 "5": want id@host:port`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
