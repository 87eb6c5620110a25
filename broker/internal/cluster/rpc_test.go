package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"
)

// TestRPCRoundTrip sends requests through a controller listener that also
// carries raft connections: the RPC side answers with the reply and the
// applied offset, a handler error arrives as an errRemote error, and a
// connection opening with the raft magic goes to the raft listener.
func TestRPCRoundTrip(t *testing.T) {
	defer goleak.VerifyNone(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mux := newMuxListener(ln, log)
	defer mux.close()
	gone := make(chan int32, 1)
	srv := newRPCServer(mux.rpc, func(_ context.Context, req kmsg.Request) (kmsg.Response, uint64, error) {
		r, ok := req.(*kmsg.BrokerHeartbeatRequest)
		if !ok {
			return nil, 0, errors.New("only heartbeats")
		}
		resp := r.ResponseKind().(*kmsg.BrokerHeartbeatResponse)
		resp.IsCaughtUp = r.CurrentMetadataOffset == 41
		return resp, 42, nil
	}, func(b int32) { gone <- b }, log)
	defer srv.close()
	d := &net.Dialer{}
	cl := newRPCClient(func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) })
	defer cl.close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	for range 2 { // the second call reuses the connection
		req := kmsg.NewPtrBrokerHeartbeatRequest()
		req.BrokerID = 7
		req.CurrentMetadataOffset = 41
		resp, applied, err := cl.call(ctx, ln.Addr().String(), req)
		if err != nil {
			t.Fatal(err)
		}
		if applied != 42 || !resp.(*kmsg.BrokerHeartbeatResponse).IsCaughtUp {
			t.Fatalf("applied %d, caught up %v", applied, resp.(*kmsg.BrokerHeartbeatResponse).IsCaughtUp)
		}
	}
	if _, _, err := cl.call(ctx, ln.Addr().String(), kmsg.NewPtrCreateTopicsRequest()); !errors.Is(err, errRemote) {
		t.Fatalf("handler error: got %v, want errRemote", err)
	}
	select {
	case b := <-gone:
		t.Fatalf("broker %d reported gone while its connection is open", b)
	default:
	}
	// The broker's connection ends: the server names the broker it
	// carried heartbeats for.
	cl.close()
	select {
	case b := <-gone:
		if b != 7 {
			t.Fatalf("gone broker %d, want 7", b)
		}
	case <-ctx.Done():
		t.Fatal("the end of a broker's connection was not reported")
	}

	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("WQR1rest")); err != nil {
		t.Fatal(err)
	}
	rc, err := mux.raft.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, 8)
	if _, err := io.ReadFull(rc, buf); err != nil || string(buf) != "WQR1rest" {
		t.Fatalf("raft side read %q, %v", buf, err)
	}
}
