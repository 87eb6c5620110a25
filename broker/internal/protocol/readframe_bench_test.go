package protocol

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/topics"
)

// repeatConn is a net.Conn whose reads return the same bytes over and
// over; deadlines are ignored.
type repeatConn struct {
	net.Conn
	data []byte
	off  int
}

func (c *repeatConn) Read(p []byte) (int, error) {
	n := copy(p, c.data[c.off:])
	c.off = (c.off + n) % len(c.data)
	return n, nil
}
func (c *repeatConn) SetReadDeadline(time.Time) error  { return nil }
func (c *repeatConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkReadFrame reads produce frames of several sizes through the
// reader's charging path (request memory reserved as bytes arrive).
func BenchmarkReadFrame(b *testing.B) {
	s := newFuzzServer(b)
	for _, size := range []int{16 << 10, 1 << 20, 6 << 20} {
		b.Run(strconv.Itoa(size>>10)+"KiB", func(b *testing.B) {
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
			r := bufio.NewReaderSize(c.nc, 32<<10)
			ctx := context.Background()
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				f, err := c.readFrame(ctx, r, false)
				if err != nil {
					b.Fatal(err)
				}
				c.release(f)
			}
		})
	}
}

// discardLog is a log whose appends are counted and dropped, so that a
// benchmark measures the request path rather than a log's memory.
type discardLog struct {
	*topics.MemLog
	end atomic.Int64
}

func (l *discardLog) AppendNoWait(batches []byte, _ topics.Epoch) (topics.AppendResult, error) {
	end := topics.Offset(l.end.Add(1))
	return topics.AppendResult{BaseOffset: end - 1, LastOffset: end - 1, LogAppendTime: -1}, nil
}

func (l *discardLog) WaitDurable(context.Context, topics.Offset) error { return nil }

// BenchmarkProduceRequest runs acks=all Produce requests of 6 partitions x
// 16 KiB through the whole request path but the log: frame read and
// charge, kmsg decode, shape check, handler (partitions appended
// concurrently), durability wait, response encoding. allocs/op is the
// request path's allocations per produce request.
func BenchmarkProduceRequest(b *testing.B) {
	reg, err := topics.Open(topics.Options{Dir: b.TempDir(),
		OpenLog: func(dir string, cfg topics.LogConfig) (topics.Log, error) {
			l, err := topics.OpenMemLog(dir, cfg)
			if err != nil {
				return nil, err
			}
			return &discardLog{MemLog: l.(*topics.MemLog)}, nil
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(Config{Topics: reg, Node: Node{ID: 0, Host: "127.0.0.1", Port: 9092},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = s.Close()
		_ = reg.Close()
	})
	if _, err := reg.Ensure(context.Background(), "t", topics.Spec{Partitions: 6}); err != nil {
		b.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "t"
	for p := range int32(6) {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = p
		// A valid batch of about 16 KiB, as a producer sends: bytes that
		// are no batch would take the handler's error paths (the check
		// for transactional batches reads every batch header).
		rp.Records = testBatch(strings.Repeat("x", 16<<10-80))
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	body := frameFor(req, 9, 1, "bench")
	data := append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	c := &conn{s: s, nc: &repeatConn{data: data}, log: s.Logger, remote: "bench", mem: newByteBudget(s.cfg.MaxConnInflightBytes)}
	r := bufio.NewReaderSize(c.nc, 32<<10)
	ctx := context.Background()
	var out []byte
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		f, err := c.readFrame(ctx, r, false)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := c.call(ctx, f)
		if err != nil {
			b.Fatal(err)
		}
		c.release(f)
		d := resp.(*Deferred)
		d.Wait()
		pr := d.Response.(*kmsg.ProduceResponse)
		if code := pr.Topics[0].Partitions[5].ErrorCode; code != 0 {
			b.Fatalf("partition 5 answered error %d", code)
		}
		d.Response.SetVersion(f.req.Version)
		out = encodeResponse(out[:0], f.req.CorrelationID, d.Response, f.headerV0)
	}
}

// fixedLog answers every read with the same bytes, so that a benchmark
// measures the fetch path rather than a log's reads.
type fixedLog struct {
	*topics.MemLog
	data []byte
}

func (l *fixedLog) Read(topics.Offset, int) ([]byte, error) { return l.data, nil }
func (l *fixedLog) LogStartOffset() topics.Offset           { return 0 }
func (l *fixedLog) HighWatermark() topics.Offset            { return 1 << 40 }
func (l *fixedLog) LogEndOffset() topics.Offset             { return 1 << 40 }

// BenchmarkFetchRequest runs Fetch requests (v12, 6 partitions, 1 MiB of
// stored batches each) through the whole request path but the log's
// read: frame read, kmsg decode, handler, and the writer's encoding with
// the stored batches left uncopied (written here to io.Discard).
// allocs/op is the fetch path's allocations per request.
func BenchmarkFetchRequest(b *testing.B) {
	data := make([]byte, 1<<20)
	reg, err := topics.Open(topics.Options{Dir: b.TempDir(),
		OpenLog: func(dir string, cfg topics.LogConfig) (topics.Log, error) {
			l, err := topics.OpenMemLog(dir, cfg)
			if err != nil {
				return nil, err
			}
			return &fixedLog{MemLog: l.(*topics.MemLog), data: data}, nil
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(Config{Topics: reg, Node: Node{ID: 0, Host: "127.0.0.1", Port: 9092},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = s.Close()
		_ = reg.Close()
	})
	if _, err := reg.Ensure(context.Background(), "t", topics.Spec{Partitions: 6}); err != nil {
		b.Fatal(err)
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 500
	req.MinBytes = 1
	req.MaxBytes = 50 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "t"
	for p := range int32(6) {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p
		rp.PartitionMaxBytes = 1 << 20
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	body := frameFor(req, 12, 1, "bench")
	frame := append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	c := &conn{s: s, nc: &repeatConn{data: frame}, log: s.Logger, remote: "bench", mem: newByteBudget(s.cfg.MaxConnInflightBytes)}
	r := bufio.NewReaderSize(c.nc, 32<<10)
	ctx := context.Background()
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		f, err := c.readFrame(ctx, r, false)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := c.call(ctx, f)
		if err != nil {
			b.Fatal(err)
		}
		c.release(f)
		fr := resp.(*kmsg.FetchResponse)
		fr.SetVersion(f.req.Version)
		var vecs net.Buffers
		vecs, buf = encodeFetchSpliced(buf, f.req.CorrelationID, fr, f.headerV0)
		if vecs == nil {
			b.Fatal("fetch response not spliced")
		}
		if _, err := vecs.WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
