package replica

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// serveBodies answers the i-th Fetch on c with bodies[i%len(bodies)] (an
// encoded fetch response, fetchBody), until c is closed.
func serveBodies(c net.Conn, bodies [][]byte) {
	var sz [4]byte
	req := make([]byte, 0, 1<<10)
	n := 0
	for _, b := range bodies {
		n = max(n, len(b))
	}
	frame := make([]byte, 0, 16+n)
	for i := 0; ; i++ {
		body := bodies[i%len(bodies)]
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

// fetchBody is an encoded fetch response whose partitions carry batches of
// the given sizes.
func fetchBody(sizes []int) []byte {
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
	return resp.AppendTo(nil)
}

func newPipeConn(tb testing.TB, sizes []int) *conn {
	return newPipeConnSeq(tb, [][]int{sizes})
}

func newPipeConnSeq(tb testing.TB, seq [][]int) *conn {
	bodies := make([][]byte, len(seq))
	for i, sizes := range seq {
		bodies[i] = fetchBody(sizes)
	}
	return newPipeConnBodies(tb, bodies)
}

func newPipeConnBodies(tb testing.TB, bodies [][]byte) *conn {
	tb.Helper()
	client, server := net.Pipe()
	go serveBodies(server, bodies)
	tb.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	return &conn{c: client, fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID("weir-replica"))}
}

// growingFetches are the response sizes of a follower's first fetches
// from a busy leader (two partitions): larger and larger.
var growingFetches = [][]int{{100}, {pmb / 4, 0}, {pmb / 2, pmb / 4}, {pmb / 2, pmb / 2}, {pmb, pmb / 2}, {pmb, pmb}}

const pmb = partitionMaxBytes

// followerFetch is a fetch of two partitions as a follower sends it.
func followerFetch() *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = fetchVersion
	req.MaxBytes = 16 << 20
	t := kmsg.NewFetchRequestTopic()
	t.Topic = "t"
	for i := range 2 {
		p := kmsg.NewFetchRequestTopicPartition()
		p.Partition = int32(i)
		p.PartitionMaxBytes = partitionMaxBytes
		t.Partitions = append(t.Partitions, p)
	}
	req.Topics = append(req.Topics, t)
	return req
}

// TestConnGrowsToHint checks that a conn told the largest response to
// expect grows its buffer once, to that, and reads every later response
// (growing up to it) into the same buffer, their bytes intact.
func TestConnGrowsToHint(t *testing.T) {
	c := newPipeConnSeq(t, growingFetches)
	req := followerFetch()
	c.respHint = respBound(req)
	if want := 2 * partitionMaxBytes; c.respHint < want+2*128 {
		t.Fatalf("respBound of two partitions of %d bytes: %d, want at least %d", partitionMaxBytes, c.respHint, want)
	}
	var first *byte
	for i, sizes := range growingFetches {
		out, err := c.request(context.Background(), req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		parts := out.(*kmsg.FetchResponse).Topics[0].Partitions
		for j, p := range parts {
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
			if cap(c.resp) < c.respHint {
				t.Fatalf("buffer of %d bytes after the first response, want the hint's %d", cap(c.resp), c.respHint)
			}
		} else if &c.resp[0] != first {
			t.Fatalf("request %d: the buffer grew again (%d bytes)", i, cap(c.resp))
		}
	}
}

// BenchmarkConnGrowingFetches reads a follower's first fetch responses
// from a busy leader (growingFetches, 5.5 MiB in all) on a new conn per
// op: "grow" grows the buffer to each larger response as it comes (the
// conn before respHint), "hint" to respBound at once. B/op is the memory
// the buffers took, each byte of it touched afresh.
func BenchmarkConnGrowingFetches(b *testing.B) {
	for _, mode := range []string{"grow", "hint"} {
		b.Run(mode, func(b *testing.B) {
			req := followerFetch()
			bodies := make([][]byte, len(growingFetches))
			for i, sizes := range growingFetches {
				bodies[i] = fetchBody(sizes)
			}
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				c := newPipeConnBodies(b, bodies)
				if mode == "hint" {
					c.respHint = respBound(req)
				}
				b.StartTimer()
				for range growingFetches {
					if _, err := c.request(context.Background(), req); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				c.close()
				b.StartTimer()
			}
		})
	}
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
