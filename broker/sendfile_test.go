package broker

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFetchSendsFromFiles: a consumer reading back about 3.5 MiB of batches
// of varied sizes, over 1 MiB segments, from two partitions (one of large
// records, one of small) gets every record intact and in order, and
// most of the bytes went from the segment files by sendfile; the file
// descriptors the fetches took are all closed afterwards.
func TestFetchSendsFromFiles(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("sendfile is used on Linux only")
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	b := startBroker(t, Options{MetricsAddr: "127.0.0.1:0"})
	ctx := testCtx(t)
	cl := newClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic("sf"),
		kgo.ProducerLinger(5*time.Millisecond))
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, map[string]*string{"segment.bytes": kadm.StringPtr("1048576")}, "sf"); err != nil {
		t.Fatal(err)
	}
	var want [2][][]byte
	for i := range 6000 {
		p := int32(i % 2)
		n := 10 + rng.IntN(100)
		if p == 0 {
			n = 100 + rng.IntN(2000)
		}
		v := make([]byte, n)
		for j := range v {
			v[j] = byte(rng.Uint32())
		}
		want[p] = append(want[p], v)
		cl.Produce(ctx, &kgo.Record{Partition: p, Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	fdsBefore := openFDs(t)

	cons := newClient(t, b, kgo.ConsumeTopics("sf"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got [2][][]byte
	for len(got[0])+len(got[1]) < 6000 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d+%d of 6000: %v", len(got[0]), len(got[1]), ctx.Err())
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) { got[r.Partition] = append(got[r.Partition], r.Value) })
	}
	for p := range 2 {
		if len(got[p]) != len(want[p]) {
			t.Fatalf("partition %d: %d records, want %d", p, len(got[p]), len(want[p]))
		}
		for i := range want[p] {
			if !bytes.Equal(got[p][i], want[p][i]) {
				t.Fatalf("partition %d record %d differs", p, i)
			}
		}
	}
	cons.Close()
	eventually(t, 10*time.Second, "the fetches' descriptors closed", func() error {
		if n := openFDs(t); n > fdsBefore {
			return fmt.Errorf("%d descriptors open, %d before consuming", n, fdsBefore)
		}
		return nil
	})
	m := scrape(t, b) // NB: after counting descriptors: it keeps a connection
	fetched, sent := m["weir_fetched_bytes_total"][""], m["weir_fetched_sendfile_bytes_total"][""]
	t.Logf("fetched %.0f bytes, %.0f of them by sendfile", fetched, sent)
	if sent < fetched/2 || sent > fetched {
		t.Fatalf("sent %.0f of %.0f fetched bytes from files: want most", sent, fetched)
	}
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// BenchmarkFetchFromFiles: one connection fetches 6 partitions of 1 KiB
// records from offset 0, 1 MiB each (6 MiB a response), and reads each
// response whole. "sendfile" is the broker as it is; "copy" has its logs
// on a pass-through wrapper of the same filesystem, which makes them read
// the batches into memory (the copying path). Compare ns/op and B/op of
// the two in one run.
func BenchmarkFetchFromFiles(b *testing.B) {
	for _, mode := range []string{"sendfile", "copy"} {
		b.Run(mode, func(b *testing.B) {
			opts := Options{CleanInterval: -1, Fsync: FsyncNever}
			if mode == "copy" {
				opts.logFS = errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(errorfs.Op) error { return nil }))
			}
			br := startBroker(b, opts)
			ctx := context.Background()
			cl := newClient(b, br, kgo.DefaultProduceTopic("ff"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
				kgo.ProducerBatchCompression(kgo.NoCompression()))
			if _, err := kadm.NewClient(cl).CreateTopic(ctx, 6, 1, nil, "ff"); err != nil {
				b.Fatal(err)
			}
			val := make([]byte, 1024)
			for i := range val {
				val[i] = byte(i * 7)
			}
			for i := range 6 * 1200 {
				cl.Produce(ctx, &kgo.Record{Partition: int32(i % 6), Value: val}, nil)
			}
			if err := cl.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			req := kmsg.NewPtrFetchRequest()
			req.SetVersion(12)
			req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, 0, 1, 64<<20
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = "ff"
			for p := range int32(6) {
				rp := kmsg.NewFetchRequestTopicPartition()
				rp.Partition, rp.PartitionMaxBytes, rp.LogStartOffset = p, 1<<20, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
			frame := appendFetchFrame(req)
			nc, err := net.Dial("tcp", br.Addr())
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			var resp []byte
			roundTrip := func() int {
				if _, err := nc.Write(frame); err != nil {
					b.Fatal(err)
				}
				var sz [4]byte
				if _, err := io.ReadFull(nc, sz[:]); err != nil {
					b.Fatal(err)
				}
				n := int(binary.BigEndian.Uint32(sz[:]))
				if cap(resp) < n {
					resp = make([]byte, n)
				}
				if _, err := io.ReadFull(nc, resp[:n]); err != nil {
					b.Fatal(err)
				}
				return n
			}
			var n int
			deadline := time.Now().Add(10 * time.Second)
			for n = roundTrip(); n < 5<<20; n = roundTrip() { // until every partition is readable
				if time.Now().After(deadline) {
					b.Fatalf("a response of %d bytes, want about 6 MiB", n)
				}
			}
			b.ReportAllocs()
			b.SetBytes(int64(n))
			cpu0 := processCPU(b)
			b.ResetTimer()
			for range b.N {
				roundTrip()
			}
			b.StopTimer()
			// NB: wall time swings with the machine's load; the process's
			// CPU time (broker and the reading side) much less.
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the process's user and system CPU time so far.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// appendFetchFrame frames req (version set) as a v1-header request.
func appendFetchFrame(req *kmsg.FetchRequest) []byte {
	out := binary.BigEndian.AppendUint32(nil, 0)
	out = binary.BigEndian.AppendUint16(out, uint16(req.Key()))
	out = binary.BigEndian.AppendUint16(out, uint16(req.GetVersion()))
	out = binary.BigEndian.AppendUint32(out, 7) // correlation id
	out = binary.BigEndian.AppendUint16(out, uint16(len("bench")))
	out = append(out, "bench"...)
	if req.IsFlexible() {
		out = append(out, 0) // no header tags
	}
	out = req.AppendTo(out)
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out
}
