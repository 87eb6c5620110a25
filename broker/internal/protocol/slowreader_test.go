package protocol

import (
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCloseWithPeerNotReading checks that a peer that sends requests but
// never reads its answers cannot hold up Server.Close: its connection's
// writer gives up after the shutdown grace period.
func TestCloseWithPeerNotReading(t *testing.T) {
	s := newFuzzServer(t)
	s.cfg.ShutdownWriteGrace = 200 * time.Millisecond
	srvSide, cliSide := net.Pipe() // unbuffered: writes block until read
	defer cliSide.Close()
	s.ServeConn(srvSide)
	frame := frameFor(kmsg.NewPtrApiVersionsRequest(), 3, 1, "slow")
	var sized []byte
	sized = binary.BigEndian.AppendUint32(sized, uint32(len(frame)))
	sized = append(sized, frame...)
	go func() {
		for range 20 {
			if _, err := cliSide.Write(sized); err != nil {
				return
			}
		}
	}()
	// Wait until the connection is stuck writing its first answer.
	deadline := time.Now().Add(20 * time.Second)
	for s.OpenConns() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("connection not served")
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- s.Close() }()
	select {
	case <-done:
		t.Logf("closed in %v", time.Since(start))
	case <-time.After(20 * time.Second):
		t.Fatal("Close hung on a peer that does not read")
	}
}
