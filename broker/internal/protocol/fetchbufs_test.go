package protocol

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/weir-dev/weir/broker/internal/topics"
)

// intoLog answers every read with a copy of the same bytes, read into the
// caller's buffer when it holds them (a topics.BufferReader).
type intoLog struct {
	*topics.MemLog
	data []byte
}

func (l *intoLog) Read(from topics.Offset, maxBytes int) ([]byte, error) {
	return l.ReadInto(nil, from, maxBytes)
}

func (l *intoLog) ReadInto(dst []byte, _ topics.Offset, _ int) ([]byte, error) {
	if cap(dst) < len(l.data) {
		dst = make([]byte, len(l.data))
	}
	dst = dst[:len(l.data)]
	copy(dst, l.data)
	return dst, nil
}
func (l *intoLog) LogStartOffset() topics.Offset { return 0 }
func (l *intoLog) HighWatermark() topics.Offset  { return 1 << 40 }
func (l *intoLog) LogEndOffset() topics.Offset   { return 1 << 40 }

// fetchConn returns a connection whose peer sends the same Fetch request
// (v12, 6 partitions of 1 MiB) over and over, to a server whose logs
// answer with data (intoLog when into is set, else fixedLog).
func fetchConn(tb testing.TB, data []byte, into bool) (*conn, *bufio.Reader, context.Context) {
	reg, err := topics.Open(topics.Options{Dir: tb.TempDir(),
		OpenLog: func(dir string, cfg topics.LogConfig) (topics.Log, error) {
			l, err := topics.OpenMemLog(dir, cfg)
			if err != nil {
				return nil, err
			}
			if into {
				return &intoLog{MemLog: l.(*topics.MemLog), data: data}, nil
			}
			return &fixedLog{MemLog: l.(*topics.MemLog), data: data}, nil
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	s, err := New(Config{Topics: reg, Node: Node{ID: 0, Host: "127.0.0.1", Port: 9092},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = s.Close()
		_ = reg.Close()
	})
	if _, err := reg.Ensure(context.Background(), "t", topics.Spec{Partitions: 6}); err != nil {
		tb.Fatal(err)
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
	return c, bufio.NewReaderSize(c.nc, 32<<10), context.WithValue(context.Background(), connKey{}, c)
}

// fetchOnce reads and handles one Fetch and returns its response and what
// gives its buffers back (nil when it has none).
func fetchOnce(tb testing.TB, c *conn, r *bufio.Reader, ctx context.Context) (*kmsg.FetchResponse, func()) {
	f, err := c.readFrame(ctx, r, false)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := c.call(ctx, f)
	if err != nil {
		tb.Fatal(err)
	}
	c.release(f)
	done, _ := c.takeLeases()
	return resp.(*kmsg.FetchResponse), done
}

// TestFetchBuffersReused: a Fetch reads its batches into the connection's
// kept buffers, which come back once the response is written and
// serve the next Fetch without allocating; a response not yet written
// keeps its buffers to itself.
func TestFetchBuffersReused(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	c, r, ctx := fetchConn(t, data, true)
	check := func(fr *kmsg.FetchResponse) {
		t.Helper()
		for _, p := range fr.Topics[0].Partitions {
			if p.ErrorCode != 0 || !bytes.Equal(p.RecordBatches, data) {
				t.Fatalf("partition %d: error %d, %d bytes of batches, want the log's %d bytes", p.Partition, p.ErrorCode, len(p.RecordBatches), len(data))
			}
		}
	}
	first, done1 := fetchOnce(t, c, r, ctx)
	if done1 == nil {
		t.Fatal("a Fetch from a log that reads into buffers leased none")
	}
	check(first)
	// A second response while the first is unwritten: distinct memory.
	second, done2 := fetchOnce(t, c, r, ctx)
	check(second)
	for i, p := range second.Topics[0].Partitions {
		for j, q := range first.Topics[0].Partitions {
			if &p.RecordBatches[0] == &q.RecordBatches[0] {
				t.Fatalf("partition %d of the second response shares its buffer with partition %d of the first, not yet written", i, j)
			}
		}
	}
	done1()
	done2()
	const fetches = 5
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range fetches {
		runtime.GC()
		runtime.GC()
		fr, done := fetchOnce(t, c, r, ctx)
		check(fr)
		done()
	}
	runtime.ReadMemStats(&after)
	if perFetch := (after.TotalAlloc - before.TotalAlloc) / fetches; perFetch > uint64(len(data)/4) {
		t.Errorf("a Fetch of 6 x %d bytes allocated %d bytes, want under %d (its read buffers reused)", len(data), perFetch, len(data)/4)
	}
	// A log that cannot read into buffers: plain responses, nothing kept.
	c2, r2, ctx2 := fetchConn(t, data, false)
	if _, done := fetchOnce(t, c2, r2, ctx2); done != nil {
		t.Error("a Fetch from a log that cannot read into buffers leased some")
	}
}

// BenchmarkFetchReadInto runs Fetch requests (v12, 6 x 1 MiB) whose logs
// read into the caller's buffer (as the storage log does), through frame
// read, handler and the writer's encoding; the buffers are given back as
// the writer does once the response is written. Sub-benchmark "fresh":
// the same log read without a connection to keep buffers for (a fresh
// buffer per partition per fetch, as before).
func BenchmarkFetchReadInto(b *testing.B) {
	data := make([]byte, 1<<20)
	for _, mode := range []string{"kept", "fresh"} {
		b.Run(mode, func(b *testing.B) {
			c, r, ctx := fetchConn(b, data, true)
			if mode == "fresh" {
				ctx = context.Background()
			}
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				fr, done := fetchOnce(b, c, r, ctx)
				fr.SetVersion(12)
				var vecs net.Buffers
				vecs, buf = encodeFetchSpliced(buf, 1, fr, false)
				if _, err := vecs.WriteTo(io.Discard); err != nil {
					b.Fatal(err)
				}
				if done != nil {
					done()
				}
			}
		})
	}
}

// TestFetchBuffersGivenBackOverTCP: through a real connection, a Fetch's
// read buffers are back with the connection once its response has been
// written, and the answers hold the logs' bytes every time.
func TestFetchBuffersGivenBackOverTCP(t *testing.T) {
	data := bytes.Repeat([]byte("fetchbufs-"), 100<<10) // 1,024,000 bytes
	reg, err := topics.Open(topics.Options{Dir: t.TempDir(),
		OpenLog: func(dir string, cfg topics.LogConfig) (topics.Log, error) {
			l, err := topics.OpenMemLog(dir, cfg)
			if err != nil {
				return nil, err
			}
			return &intoLog{MemLog: l.(*topics.MemLog), data: data}, nil
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Topics: reg, Node: Node{ID: 0, Host: "127.0.0.1", Port: int32(ln.Addr().(*net.TCPAddr).Port)},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	defer func() {
		_ = s.Close()
		<-served
		_ = reg.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := reg.Ensure(ctx, "t", topics.Spec{Partitions: 6}); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(ln.Addr().String()), kgo.MaxVersions(kversion.V2_8_0()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 4 {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
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
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range resp.Topics[0].Partitions {
			if p.ErrorCode != 0 || !bytes.Equal(p.RecordBatches, data) {
				t.Fatalf("fetch %d, partition %d: error %d, %d bytes, want the log's %d bytes", i, p.Partition, p.ErrorCode, len(p.RecordBatches), len(data))
			}
		}
		// The writer gives the six 1 MiB buffers back once it has written
		// the response (just before or after the client has read it).
		deadline := time.Now().Add(10 * time.Second)
		for s.keptFrameBytes.Load() < 6<<20 {
			if time.Now().After(deadline) {
				t.Fatalf("fetch %d: the connections keep %d bytes, want the fetch's 6 MiB back", i, s.keptFrameBytes.Load())
			}
			time.Sleep(time.Millisecond) // polling interval
		}
	}
}
