package protocol

import (
	"bufio"
	"context"
	"encoding/binary"
	"runtime"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceFrameConn returns a connection whose peer sends the same Produce
// frame, with size bytes of records, over and over.
func produceFrameConn(tb testing.TB, size int) (*conn, *bufio.Reader, int) {
	s := newFuzzServer(tb)
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = make([]byte, size)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	body := frameFor(req, 9, 1, "bench")
	data := append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	c := &conn{s: s, nc: &repeatConn{data: data}, log: s.Logger, remote: "bench", mem: newByteBudget(s.cfg.MaxConnInflightBytes)}
	return c, bufio.NewReaderSize(c.nc, 32<<10), len(data)
}

// TestReadFrameBuffersSurviveGC: a connection reads a frame after garbage
// collections into the buffers its earlier frames were read into, rather
// than allocating them again (a sync.Pool is emptied by collections).
func TestReadFrameBuffersSurviveGC(t *testing.T) {
	c, r, size := produceFrameConn(t, 1<<20)
	ctx := context.Background()
	read := func() {
		f, err := c.readFrame(ctx, r, false)
		if err != nil {
			t.Fatal(err)
		}
		c.release(f)
	}
	read() // the first frame allocates its buffers
	const frames = 5
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range frames {
		runtime.GC()
		runtime.GC()
		read()
	}
	runtime.ReadMemStats(&after)
	perFrame := (after.TotalAlloc - before.TotalAlloc) / frames
	// Decoding allocates the request's small structures; the frame's
	// buffers (over 1 MiB) must not be allocated again.
	if perFrame > uint64(size/16) {
		t.Errorf("reading a %d-byte frame after garbage collections allocated %d bytes per frame, want under %d (the frame's buffers reused)",
			size, perFrame, size/16)
	}
	if got := c.s.keptFrameBytes.Load(); got <= 0 || got > keepConnFrameBytes {
		t.Errorf("server counts %d kept bytes, want the connection's buffers (0 < n <= %d)", got, keepConnFrameBytes)
	}
	c.dropBufs()
	if got := c.s.keptFrameBytes.Load(); got != 0 {
		t.Errorf("after the connection dropped its buffers the server counts %d kept bytes, want 0", got)
	}
	// A buffer given back after the drop is not kept.
	c.putBuf(c.getBuf(frameReadStep))
	if got := c.s.keptFrameBytes.Load(); got != 0 || len(c.bufs.free) != 0 {
		t.Errorf("a closed connection kept a buffer: %d bytes, %d buffers", got, len(c.bufs.free))
	}
}

// TestKeptFrameBuffersBounded: a connection keeps at most keepFrameBufs
// buffers and keepConnFrameBytes bytes, and all connections together at
// most the server's limit.
func TestKeptFrameBuffersBounded(t *testing.T) {
	c, _, _ := produceFrameConn(t, 1)
	var bufs []*[]byte
	for range 2 * keepFrameBufs {
		bufs = append(bufs, c.getBuf(frameReadStep))
	}
	for _, b := range bufs {
		c.putBuf(b)
	}
	if len(c.bufs.free) != keepFrameBufs {
		t.Errorf("connection keeps %d buffers, want %d", len(c.bufs.free), keepFrameBufs)
	}
	c.dropBufs()
	c.bufs.closed = false
	big := []*[]byte{c.getBuf(maxPooledFrame), c.getBuf(maxPooledFrame), c.getBuf(maxPooledFrame), c.getBuf(2 * maxPooledFrame)}
	for _, b := range big {
		c.putBuf(b)
	}
	if c.bufs.bytes > keepConnFrameBytes || c.bufs.bytes != c.s.keptFrameBytes.Load() {
		t.Errorf("connection keeps %d bytes (server counts %d), want at most %d", c.bufs.bytes, c.s.keptFrameBytes.Load(), keepConnFrameBytes)
	}
	c.dropBufs()
	// The server's bound: other connections already keep all but one step.
	c.bufs.closed = false
	c.s.keptFrameBytes.Store(c.s.keptFrameLimit() - frameReadStep + 1)
	c.putBuf(c.getBuf(frameReadStep))
	if len(c.bufs.free) != 0 {
		t.Errorf("connection kept a buffer past the server's limit")
	}
}

// BenchmarkReadFrameAfterGC reads 1 MiB Produce frames with two garbage
// collections before each (not timed): what a busy broker, collecting
// often, pays to read a frame. B/op shows whether the frame's buffers are
// allocated again.
func BenchmarkReadFrameAfterGC(b *testing.B) {
	c, r, size := produceFrameConn(b, 1<<20)
	ctx := context.Background()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for range b.N {
		b.StopTimer()
		runtime.GC()
		runtime.GC()
		b.StartTimer()
		f, err := c.readFrame(ctx, r, false)
		if err != nil {
			b.Fatal(err)
		}
		c.release(f)
	}
}
