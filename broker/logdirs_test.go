package broker

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestDescribeLogDirsSizesMatchSegments produces to a topic (small
// segments, so a partition has several) and checks that DescribeLogDirs
// (through kadm) reports the broker's data directory and, for every
// partition, the bytes its segment files hold on disk.
func TestDescribeLogDirsSizesMatchSegments(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, Options{DataDir: dir})
	cl := newClient(t, b)
	adm := kadm.NewClient(cl)
	ctx := testCtx(t)
	if _, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{"segment.bytes": ptr("4096")}, "sized"); err != nil {
		t.Fatal(err)
	}
	// Produced in rounds: each round's records of a partition are a
	// batch, and segments roll at 4 KiB.
	pc := newClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for round := range 40 {
		var recs []*kgo.Record
		for i := range 30 {
			recs = append(recs, &kgo.Record{Topic: "sized", Partition: int32(i % 3), Value: []byte(strings.Repeat("v", 20+(round+i)%50))})
		}
		if err := pc.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	described, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(described) != 1 {
		t.Fatalf("log dirs of %d brokers, want 1: %v", len(described), described)
	}
	var dirs kadm.DescribedLogDirs
	for _, ds := range described {
		dirs = ds
	}
	if len(dirs) != 1 {
		t.Fatalf("log dirs: %v", described)
	}
	for name, d := range dirs {
		if d.Err != nil {
			t.Fatalf("dir %s: %v", name, d.Err)
		}
		if rel, err := filepath.Rel(dir, d.Dir); err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("log dir %q is not under the data directory %q", d.Dir, dir)
		}
		if d.TotalBytes <= 0 || d.UsableBytes < 0 || d.UsableBytes > d.TotalBytes {
			t.Errorf("dir %s: total %d, usable %d", d.Dir, d.TotalBytes, d.UsableBytes)
		}
		onDisk := segmentBytes(t, dir, "sized")
		for p := range int32(3) {
			got, ok := d.Topics["sized"][p]
			if !ok {
				t.Fatalf("partition %d not described: %v", p, d.Topics["sized"])
			}
			if got.Size != onDisk[p] || got.Size == 0 {
				t.Errorf("partition %d: described %d bytes, segment files hold %d", p, got.Size, onDisk[p])
			}
		}
	}
	// Asking for one partition describes that one only.
	one, err := adm.DescribeAllLogDirs(ctx, kadm.TopicsSet{"sized": {1: {}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, dirs := range one {
		d := dirs[dir]
		if len(d.Topics) != 1 || len(d.Topics["sized"]) != 1 {
			t.Errorf("described for sized/1: %v", d.Topics)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// segmentBytes sums the sizes of the .log segment files of each partition
// of topic under the data directory.
func segmentBytes(t *testing.T, dataDir, topic string) map[int32]int64 {
	t.Helper()
	out := map[int32]int64{}
	segments := 0
	// A partition's segments are topics/<topic>/<partition>/<base>.log.
	err := filepath.WalkDir(filepath.Join(dataDir, "topics", topic), func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || filepath.Ext(path) != ".log" {
			return err
		}
		p, err := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		if err != nil {
			return nil
		}
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		out[int32(p)] += st.Size()
		segments++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if segments <= 3 {
		t.Fatalf("%d segment files for 3 partitions: the test wants several per partition", segments)
	}
	return out
}
