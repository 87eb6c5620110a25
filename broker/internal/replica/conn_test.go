package replica

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchServer answers every Fetch on c with a response whose partitions
// carry batches of the given sizes (bytes of a fill value, not parsed by
// the conn), until c is closed.
func fetchServer(c net.Conn, sizes []int) {
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = fetchVersion
	t := kmsg.NewFetchResponseTopic()
	t.Topic = "t"
	for i, n := range sizes {
		p := kmsg.NewFetchResponseTopicPartition()
		p.Partition = int32(i)
		p.RecordBatches = make([]byte, n)
		for j := range p.RecordBatches {
			p.RecordBatches[j] = byte(i + 1)
		}
		t.Partitions = append(t.Partitions, p)
	}
	resp.Topics = append(resp.Topics, t)
	body := resp.AppendTo(nil)
	var sz [4]byte
	var req, frame []byte
	for {
		if _, err := io.ReadFull(c, sz[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(sz[:])
		if cap(req) < int(n) {
			req = make([]byte, n)
		}
		req = req[:n]
		if _, err := io.ReadFull(c, req); err != nil {
			return
		}
		// The correlation id follows the key (2 bytes) and version (2);
		// a flexible response header has no tags after it.
		frame = binary.BigEndian.AppendUint32(frame[:0], uint32(5+len(body)))
		frame = append(frame, req[4:8]...)
		frame = append(frame, 0)
		frame = append(frame, body...)
		if _, err := c.Write(frame); err != nil {
			return
		}
	}
}

func newPipeConn(tb testing.TB, sizes []int) *conn {
	tb.Helper()
	client, server := net.Pipe()
	go fetchServer(server, sizes)
	tb.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	return &conn{c: client, fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID("weir-replica"))}
}

// TestConnResponsesKeepTheirBytes checks that each response decoded on a
// conn that keeps its buffer holds the server's bytes, request after
// request, and that the buffer is the one reused.
func TestConnResponsesKeepTheirBytes(t *testing.T) {
	sizes := []int{3 << 10, 70 << 10}
	c := newPipeConn(t, sizes)
	req := kmsg.NewPtrFetchRequest()
	req.Version = fetchVersion
	var first *byte
	for i := range 3 {
		out, err := c.request(context.Background(), req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp := out.(*kmsg.FetchResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != len(sizes) {
			t.Fatalf("request %d: response shape %+v", i, resp.Topics)
		}
		for j, p := range resp.Topics[0].Partitions {
			if len(p.RecordBatches) != sizes[j] {
				t.Fatalf("request %d partition %d: %d bytes, want %d", i, j, len(p.RecordBatches), sizes[j])
			}
			for k, b := range p.RecordBatches {
				if b != byte(j+1) {
					t.Fatalf("request %d partition %d byte %d: %d, want %d", i, j, k, b, j+1)
				}
			}
		}
		if i == 0 {
			first = &c.resp[0]
		} else if &c.resp[0] != first {
			t.Fatalf("request %d: the response buffer was not reused", i)
		}
	}
}

// BenchmarkConnFetchResponse reads a follower's fetch response of two
// 512 KiB partitions: "fresh" allocates the frame per response (the conn
// before it kept its buffer), "kept" reuses it.
func BenchmarkConnFetchResponse(b *testing.B) {
	for _, mode := range []string{"fresh", "kept"} {
		b.Run(mode, func(b *testing.B) {
			c := newPipeConn(b, []int{512 << 10, 512 << 10})
			req := kmsg.NewPtrFetchRequest()
			req.Version = fetchVersion
			b.ReportAllocs()
			b.SetBytes(1 << 20)
			for b.Loop() {
				if mode == "fresh" {
					c.resp = nil
				}
				if _, err := c.request(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
