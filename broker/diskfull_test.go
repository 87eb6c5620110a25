package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/broker/internal/storage"
)

// logCapture is a slog handler that keeps every record's message and
// attributes (and prints them under WEIR_TEST_LOG).
type logCapture struct {
	mu    sync.Mutex
	lines []string
}

func (c *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (c *logCapture) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *logCapture) WithGroup(string) slog.Handler            { return c }

func (c *logCapture) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	c.mu.Lock()
	c.lines = append(c.lines, b.String())
	c.mu.Unlock()
	if os.Getenv("WEIR_TEST_LOG") != "" {
		fmt.Fprintln(os.Stderr, b.String())
	}
	return nil
}

// matching returns the captured lines containing s.
func (c *logCapture) matching(s string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, l := range c.lines {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// TestStorageErrorsCountedAndRateLimited: every storage failure of an
// append counts; the log gets one line per reason per interval, and the
// next line says how many were not logged.
func TestStorageErrorsCountedAndRateLimited(t *testing.T) {
	capture := &logCapture{}
	h := newStorageHealth(slog.New(capture), t.TempDir())
	now := time.Unix(1000, 0)
	h.now = func() time.Time { return now }
	full := fmt.Errorf("%w: write x: %w", storage.ErrDiskFull, syscall.ENOSPC)
	for range 5 {
		h.appendFailed("/d/topics/t/0", full)
	}
	h.appendFailed("/d/topics/t/0", fmt.Errorf("%w: fsync failed", storage.ErrStorage))
	h.appendFailed("/d/topics/t/0", storage.ErrCorrupt) // not a storage failure
	if got := len(capture.matching("disk full")); got != 1 {
		t.Fatalf("%d disk-full lines for 5 failures within the interval, want 1:\n%s", got, strings.Join(capture.lines, "\n"))
	}
	if got := len(capture.matching("storage error")); got != 1 {
		t.Fatalf("%d storage-error lines, want 1", got)
	}
	now = now.Add(storageErrorLogEvery)
	h.appendFailed("/d/topics/t/0", full)
	lines := capture.matching("disk full")
	if len(lines) != 2 || !strings.Contains(lines[1], "not_logged_since_last=4") {
		t.Fatalf("after the interval: %q, want a second line saying 4 were not logged", lines)
	}
	reg := prometheus.NewRegistry()
	if err := h.register(reg); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "weir_storage_errors_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	if diff := cmp.Diff(map[string]float64{reasonDiskFull: 6, reasonIO: 1}, got); diff != "" {
		t.Errorf("weir_storage_errors_total (-want +got):\n%s", diff)
	}
}

// fullDisk is how a full-disk test fills and frees its disk.
type fullDisk struct {
	dir   string // the broker's data directory
	logFS vfs.FS // the partition logs' filesystem (nil: the OS)
	// real is set when the disk is a real filesystem that fills up (the
	// broker's startup free-space check can see it).
	real bool
	// fill makes the disk full; produce sends one batch of the given
	// size to topic "big" and returns the error code. fill returns how
	// many produces it saw fail with KAFKA_STORAGE_ERROR.
	fill func(t *testing.T, produce func(size int) int16) int
	// deleted is called after topic "big" is deleted: it checks that space
	// came back (or, simulated, gives it back).
	deleted func(t *testing.T)
	// topUp fills the pages freed since fill (a real disk only).
	topUp func(t *testing.T)
}

// fullDiskScenario: values produced before the disk filled are read back
// after a restart on the full disk, produces on the full disk get
// KAFKA_STORAGE_ERROR (logged, rate-limited, and counted), and deleting a
// topic frees space so that produces work again.
func fullDiskScenario(t *testing.T, d fullDisk) {
	capture := &logCapture{}
	opts := Options{
		Listen: "127.0.0.1:0", DataDir: d.dir, MetricsAddr: "127.0.0.1:0", Logger: slog.New(capture),
		CleanInterval: -1, logFS: d.logFS,
	}
	b1, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b1.Close()
	ctx := testCtx(t)
	c1 := newClient(t, b1)
	adm := kadm.NewClient(c1)
	for _, topic := range []string{"keep", "big"} {
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	for i := range 20 {
		v := fmt.Sprintf("keep-%d", i)
		if code := produceRaw(t, c1, "keep", rawBatch(v)); code != 0 {
			t.Fatalf("produce %s: %v", v, kerr.ErrorForCode(code))
		}
		want = append(want, v)
	}

	storageErrs := 0
	firstFailure := time.Now()
	storageErrs += d.fill(t, func(size int) int16 {
		return produceRaw(t, c1, "big", rawBatch(strings.Repeat("x", size)))
	})
	// NB: larger than a page, so that a real filesystem cannot fit it in
	// the last page of the segment, allocated already.
	tooBig := strings.Repeat("y", 8<<10)
	for i := range 3 {
		if code := produceRaw(t, c1, "keep", rawBatch(tooBig)); code != kerr.KafkaStorageError.Code {
			t.Fatalf("produce %d on a full disk: %v, want KAFKA_STORAGE_ERROR", i, kerr.ErrorForCode(code))
		}
		storageErrs++
	}
	window := time.Since(firstFailure)
	m := scrape(t, b1)
	if got := m["weir_storage_errors_total"]["reason=disk_full,"]; got != float64(storageErrs) {
		t.Errorf("weir_storage_errors_total{reason=disk_full} = %v, want the %d KAFKA_STORAGE_ERROR answers", got, storageErrs)
	}
	lines := capture.matching("disk full: append refused")
	if len(lines) == 0 {
		t.Errorf("no log line says the disk is full after %d refused produces", storageErrs)
	} else if window < storageErrorLogEvery && len(lines) != 1 {
		t.Errorf("%d disk-full lines for %d failures within %v, want 1 (rate-limited):\n%s", len(lines), storageErrs, window, strings.Join(lines, "\n"))
	}
	if err := b1.Close(); err != nil {
		t.Logf("close on a full disk: %v", err)
	}

	// Restart on the full disk. On a real one, without the lock file: the
	// new one cannot hold a pid (no free page), yet the lock holds.
	if d.real {
		if err := os.Remove(filepath.Join(d.dir, "weir.lock")); err != nil {
			t.Fatal(err)
		}
		d.topUp(t)
	}
	opts.MetricsAddr = "127.0.0.1:0"
	b2, err := Open(opts)
	if err != nil {
		t.Fatalf("restart on a full disk: %v", err)
	}
	defer b2.Close()
	if d.real {
		if len(capture.matching("disk full: the data directory's filesystem")) == 0 {
			t.Errorf("the restarted broker did not say in its log that the disk is full")
		}
		if len(capture.matching("lock file does not name this process")) == 0 {
			t.Errorf("the restarted broker did not say that its lock file holds no pid")
		}
		b3, err := Open(Options{Listen: "127.0.0.1:0", DataDir: d.dir, Logger: testLogger()})
		if err == nil {
			_ = b3.Close()
			t.Fatal("a second broker opened the full disk's data directory")
		}
		if !IsDataDirLocked(err) || !strings.Contains(err.Error(), d.dir) {
			t.Errorf("second broker on the full disk: %v, want a lock error naming %s", err, d.dir)
		}
	}
	got := values(consumeN(t, b2, "keep", len(want)))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("read after the restart on a full disk (-want +got):\n%s", diff)
	}
	c2 := newClient(t, b2)
	if code := produceRaw(t, c2, "keep", rawBatch(tooBig)); code != kerr.KafkaStorageError.Code {
		t.Fatalf("produce after the restart on a full disk: %v, want KAFKA_STORAGE_ERROR", kerr.ErrorForCode(code))
	}
	if got := scrape(t, b2)["weir_storage_errors_total"]["reason=disk_full,"]; got != 1 {
		t.Errorf("restarted broker: weir_storage_errors_total{reason=disk_full} = %v, want 1", got)
	}

	// Deleting a topic frees space.
	dr, err := kadm.NewClient(c2).DeleteTopics(ctx, "big")
	if err != nil {
		t.Fatalf("delete topic on a full disk: %v", err)
	}
	if err := dr.Error(); err != nil {
		t.Fatalf("delete topic on a full disk: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d.dir, "topics", "big")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("topic directory of big after the delete: %v", err)
	}
	d.deleted(t)
	if code := produceRaw(t, c2, "keep", rawBatch("after-delete")); code != 0 {
		t.Fatalf("produce after the delete freed space: %v", kerr.ErrorForCode(code))
	}
	want = append(want, "after-delete")
	if diff := cmp.Diff(want, values(consumeN(t, b2, "keep", len(want)))); diff != "" {
		t.Fatalf("read after the delete (-want +got):\n%s", diff)
	}
}

func values(rs []*kgo.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r.Value)
	}
	return out
}

// TestFullDiskInjected runs the full-disk scenario on the fault-injecting
// filesystem: once "full", every write and file creation of the partition
// logs fails with ENOSPC; deleting the topic "gives the space back".
func TestFullDiskInjected(t *testing.T) {
	full := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch op.Kind {
		case errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpCreate:
			return fmt.Errorf("injected: %w", syscall.ENOSPC)
		}
		return nil
	})}
	fullDiskScenario(t, fullDisk{
		dir:   t.TempDir(),
		logFS: errorfs.Wrap(vfs.Default, full),
		fill: func(t *testing.T, produce func(int) int16) int {
			for i := range 5 {
				if code := produce(1000); code != 0 {
					t.Fatalf("produce %d to big: %v", i, kerr.ErrorForCode(code))
				}
			}
			full.On()
			return 0
		},
		deleted: func(*testing.T) { full.Off() },
	})
}

// TestCleanerOnFullDiskLogsOncePerPass: when compaction of several
// partitions fails because the disk is full (here: creating a compacted
// segment fails with ENOSPC), the cleaner says so in one line per pass
// naming how many partitions failed, not one line per partition.
func TestCleanerOnFullDiskLogsOncePerPass(t *testing.T) {
	inj := errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpCreate && strings.HasSuffix(op.Path, ".cleaned") {
			return fmt.Errorf("injected: %w", syscall.ENOSPC)
		}
		return nil
	}))
	capture := &logCapture{}
	b, err := Open(Options{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Logger: slog.New(capture),
		CleanInterval: 50 * time.Millisecond, logFS: inj})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := testCtx(t)
	c := newClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if _, err := kadm.NewClient(c).CreateTopic(ctx, 2, 1, map[string]*string{
		"cleanup.policy": kadm.StringPtr("compact"), "segment.bytes": kadm.StringPtr("1024"),
	}, "compacted"); err != nil {
		t.Fatal(err)
	}
	// Each partition gets several sealed segments of the same few keys.
	for i := range 40 {
		for p := range int32(2) {
			r := &kgo.Record{Topic: "compacted", Partition: p, Key: fmt.Appendf(nil, "k%d", i%3), Value: []byte(strings.Repeat("v", 200))}
			if err := c.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// NB: a pass that ran while only one partition had rolled counts one;
	// wait for a pass that found both.
	deadline := time.Now().Add(20 * time.Second)
	for {
		found := false
		for _, l := range capture.matching("disk full: retention or compaction could not finish") {
			found = found || strings.Contains(l, " partitions=2 ")
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cleaner disk-full line within 20s; log:\n%s", strings.Join(capture.matching(""), "\n"))
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	if lines := capture.matching("cleaning partition"); len(lines) != 0 {
		t.Errorf("per-partition cleaner warnings on a full disk:\n%s", strings.Join(lines, "\n"))
	}
}
