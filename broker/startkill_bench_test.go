package broker

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkStartAfterKill times a broker's start on what a kill leaves (a
// copy of a running broker's data directory: 100 partitions of 16 KiB
// segments, about 20 sealed each) until every partition took a produce.
// "checkpoint" is the directory as copied; "no-checkpoint" has the
// partitions' recovery-point checkpoints removed, so every sealed segment
// is opened and checked, as before they existed. Compare ns/op in one run.
func BenchmarkStartAfterKill(b *testing.B) {
	const partitions = 100
	dir := b.TempDir()
	src := startBroker(b, Options{CleanInterval: -1, DataDir: filepath.Join(dir, "live")})
	ctx := context.Background()
	val := make([]byte, 100)
	p := newClient(b, src, kgo.DefaultProduceTopic("k"), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if _, err := kadm.NewClient(p).CreateTopic(ctx, partitions, 1, map[string]*string{"segment.bytes": kadm.StringPtr(strconv.Itoa(16 << 10))}, "k"); err != nil {
		b.Fatal(err)
	}
	for i := range 200_000 {
		p.Produce(ctx, &kgo.Record{Partition: int32(i % partitions), Value: val}, nil)
	}
	if err := p.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"checkpoint", "no-checkpoint"} {
		b.Run(mode, func(b *testing.B) {
			b.ReportAllocs()
			for i := range b.N {
				b.StopTimer()
				img := filepath.Join(dir, mode+strconv.Itoa(i))
				copyTree(b, filepath.Join(dir, "live"), img, mode == "no-checkpoint")
				b.StartTimer()
				br, err := Open(Options{CleanInterval: -1, DataDir: img, Listen: "127.0.0.1:0", Logger: testLogger()})
				if err != nil {
					b.Fatal(err)
				}
				c, err := kgo.NewClient(kgo.SeedBrokers(br.Addr()), kgo.DefaultProduceTopic("k"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
				if err != nil {
					b.Fatal(err)
				}
				for j := range partitions {
					c.Produce(ctx, &kgo.Record{Partition: int32(j), Value: val}, nil)
				}
				err = c.Flush(ctx)
				b.StopTimer()
				c.Close()
				if cerr := br.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					b.Fatal(err)
				}
				os.RemoveAll(img)
				b.StartTimer()
			}
		})
	}
}

// copyTree copies the data directory from to to, leaving out the lock
// file and, if noCheckpoints, the recovery-point checkpoints.
func copyTree(b *testing.B, from, to string, noCheckpoints bool) {
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		if d.Name() == "weir.lock" || (noCheckpoints && d.Name() == "recovery-point-checkpoint") {
			return nil
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(filepath.Join(to, rel))
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		b.Fatal(err)
	}
}
