package replica

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// countingFetchServer answers the i-th Fetch on c (from 1) with one
// partition of n bytes, each of value i, until c is closed.
func countingFetchServer(c net.Conn, n int) {
	var sz [4]byte
	var req, frame []byte
	for i := 1; ; i++ {
		if _, err := io.ReadFull(c, sz[:]); err != nil {
			return
		}
		req = make([]byte, binary.BigEndian.Uint32(sz[:]))
		if _, err := io.ReadFull(c, req); err != nil {
			return
		}
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = fetchVersion
		t := kmsg.NewFetchResponseTopic()
		t.Topic = "t"
		p := kmsg.NewFetchResponseTopicPartition()
		p.RecordBatches = make([]byte, n)
		for j := range p.RecordBatches {
			p.RecordBatches[j] = byte(i)
		}
		t.Partitions = append(t.Partitions, p)
		resp.Topics = append(resp.Topics, t)
		body := resp.AppendTo(nil)
		frame = binary.BigEndian.AppendUint32(frame[:0], uint32(5+len(body)))
		frame = append(frame, req[4:8]...) // correlation id
		frame = append(frame, 0)           // no header tags
		frame = append(frame, body...)
		if _, err := c.Write(frame); err != nil {
			return
		}
	}
}

// TestSendToBrokerResponsesOwnTheirBytes: SendToBroker puts its connection
// back in the pool before the caller reads the response, and the next
// request takes it again; each response must keep its own bytes (here all
// i for the i-th) after later requests on the same connection. It fails
// when the peer path decodes into the conn's kept buffer.
func TestSendToBrokerResponsesOwnTheirBytes(t *testing.T) {
	const n = 4 << 10
	dials := 0
	m := NewManager(Options{Self: 1, Dial: func(context.Context, string) (net.Conn, error) {
		dials++
		client, server := net.Pipe()
		go countingFetchServer(server, n)
		t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
		return client, nil
	}})
	m.addrs[2] = "broker-2"
	defer m.peers.close()
	var resps []*kmsg.FetchResponse
	for range 3 {
		req := kmsg.NewPtrFetchRequest()
		req.Version = fetchVersion
		out, err := m.SendToBroker(context.Background(), 2, req)
		if err != nil {
			t.Fatal(err)
		}
		resps = append(resps, out.(*kmsg.FetchResponse))
	}
	if dials != 1 {
		t.Fatalf("%d dials, want 1 (the connection reused from the pool)", dials)
	}
	for i, r := range resps {
		b := r.Topics[0].Partitions[0].RecordBatches
		if len(b) != n {
			t.Fatalf("response %d: %d bytes, want %d", i+1, len(b), n)
		}
		for k, x := range b {
			if x != byte(i+1) {
				t.Fatalf("response %d byte %d is %d, want %d: a later response overwrote it", i+1, k, x, i+1)
			}
		}
	}
}
