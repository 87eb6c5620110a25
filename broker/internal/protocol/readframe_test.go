package protocol

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// streamConn is a net.Conn reading from r; deadlines are ignored.
type streamConn struct {
	net.Conn
	r *bytes.Reader
}

func (c *streamConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }

// produceFrame returns a framed Produce request (size prefix included)
// whose one partition carries records.
func produceFrame(records []byte) []byte {
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	body := frameFor(req, 9, 1, "test")
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// TestReadFrameStepsReused reads large Produce frames back to back, each
// with different bytes, through the reader's growing steps: every frame
// must decode to exactly what was sent (a reused buffer must not leak a
// previous frame's bytes, nor be handed out again while its request is
// held: frames are read in pairs and both checked before either is
// released), and the bytes allocated per frame must stay far below the
// frame's size once the pools are warm (allocating the steps made it about
// 1.45x for a 1 MiB frame, and allocating the whole frame 1.0x).
func TestReadFrameStepsReused(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	const frames, size = 24, 1 << 20
	var stream []byte
	var want [][]byte
	for i := range frames {
		recs := make([]byte, size-i*4099) // sizes that do not line up with the steps
		for j := range recs {
			recs[j] = byte(rng.Uint32())
		}
		want = append(want, recs)
		stream = append(stream, produceFrame(recs)...)
	}
	s := newFuzzServer(t)
	c := &conn{s: s, nc: &streamConn{r: bytes.NewReader(stream)}, log: s.Logger, remote: "test",
		mem: newByteBudget(s.cfg.MaxConnInflightBytes)}
	r := bufio.NewReaderSize(c.nc, 32<<10)
	ctx := context.Background()

	var before, after runtime.MemStats
	var framed int64
	var held []*frame
	for i := range frames {
		if i == 4 { // the first frames fill the pools
			runtime.ReadMemStats(&before)
		}
		if _, err := r.Peek(1); err != nil {
			t.Fatal(err)
		}
		f, err := c.readFrame(ctx, r, false)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if i >= 4 {
			framed += int64(len(want[i]))
		}
		held = append(held, f)
		if len(held) < 2 {
			continue
		}
		for k, f := range held {
			j := i - len(held) + 1 + k
			got := f.req.Body.(*kmsg.ProduceRequest).Topics[0].Partitions[0].Records
			if !bytes.Equal(got, want[j]) {
				t.Fatalf("frame %d decoded to other records (%d bytes, want %d; first difference at %d)",
					j, len(got), len(want[j]), firstDiff(got, want[j]))
			}
		}
		for _, f := range held {
			c.release(f)
		}
		held = held[:0]
	}
	runtime.ReadMemStats(&after)
	if n := s.InflightBytes(); n != 0 {
		t.Errorf("request memory held after every frame was released: %d bytes", n)
	}
	ratio := float64(after.TotalAlloc-before.TotalAlloc) / float64(framed)
	t.Logf("allocated %.2fx the frames' bytes", ratio)
	if ratio > maxFrameAllocRatio {
		t.Errorf("reading frames allocated %.2fx their bytes, want at most %.2fx (buffers reused)", ratio, maxFrameAllocRatio)
	}
}

// firstDiff returns the first index where a and b differ (or the shorter
// length).
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestPooledFrameWithinConnectionShare reads a Produce frame whose pooled
// buffer class (1 MiB) would exceed the connection's whole share of the
// request memory (768 KiB): the frame must get a buffer of its own size
// instead of waiting for room that cannot exist.
func TestPooledFrameWithinConnectionShare(t *testing.T) {
	s := newFuzzServer(t)
	records := make([]byte, 700<<10)
	c := &conn{s: s, nc: &streamConn{r: bytes.NewReader(produceFrame(records))}, log: s.Logger, remote: "test",
		mem: newByteBudget(768 << 10)}
	r := bufio.NewReaderSize(c.nc, 32<<10)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := r.Peek(1); err != nil {
		t.Fatal(err)
	}
	f, err := c.readFrame(ctx, r, false)
	if err != nil {
		t.Fatalf("reading a %d-byte frame with a 768 KiB connection share: %v", len(records), err)
	}
	if f.size > c.mem.total {
		t.Errorf("frame charged %d bytes, above the connection's share %d", f.size, c.mem.total)
	}
	c.release(f)
	if n := c.mem.inUse(); n != 0 {
		t.Errorf("connection share holds %d bytes after release", n)
	}
}
