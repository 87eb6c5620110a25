package broker

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// buildWeir builds the weir binary into a temp dir.
func buildWeir(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "weir")
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("SKIPPING: no go toolchain on PATH to build weir: %v", err)
	}
	cmd := exec.Command(gobin, "build", "-o", bin, "github.com/weir-dev/weir/cmd/weir")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building weir: %v\n%s", err, out)
	}
	return bin
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// brokerProc is a weir broker child process.
type brokerProc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
}

func startProc(t *testing.T, bin, addr, dir string) *brokerProc {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "broker", "--listen", addr, "--data-dir", dir, "--fsync", "group", "--log-level", "warn")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &brokerProc{cmd: cmd, stderr: &stderr}
	deadline := time.Now().Add(30 * time.Second)
	for {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			nc.Close()
			return p
		}
		if time.Now().After(deadline) {
			p.kill()
			t.Fatalf("broker did not start listening on %s: %v\n%s", addr, err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}

func (p *brokerProc) kill() {
	if p.cmd.ProcessState != nil {
		return // already waited for
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

// TestCrashKillNineExactlyOnce SIGKILLs a broker process repeatedly while
// an idempotent acks=all producer writes (16 KiB segments). After the last restart every
// acknowledged record is in the log exactly once, and no record appears
// twice. Then a SIGTERM stops it cleanly and a restart has every record.
// WEIR_CRASH_KILLS sets the number of kills (default 4).
func TestCrashKillNineExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the weir binary; skipped with -short")
	}
	kills := 4
	if v, err := strconv.Atoi(os.Getenv("WEIR_CRASH_KILLS")); err == nil {
		kills = v
	}
	start := time.Now()
	bin := buildWeir(t)
	t.Logf("built weir in %v", time.Since(start).Round(time.Millisecond))
	addr, dir := freePort(t), t.TempDir()
	proc := startProc(t, bin, addr, dir)
	t.Cleanup(func() { proc.kill() })

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	// Small segments, so that kills land across rolls and recovery-point
	// checkpoints, and restarts take sealed segments from them.
	segs := map[string]*string{"segment.bytes": kadm.StringPtr("16384")}
	if _, err := kadm.NewClient(adm).CreateTopic(ctx, 3, 1, segs, "crash"); err != nil {
		t.Fatal(err)
	}
	adm.Close()

	p, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("crash"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(2*time.Minute),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.MetadataMinAge(50*time.Millisecond), kgo.MaxBufferedRecords(200)) // keeps the run short: the loop blocks on a full buffer
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	var mu sync.Mutex
	acked := map[string]bool{}
	failed := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			v := fmt.Sprintf("r-%07d", i)
			p.Produce(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i % 31)), Value: []byte(v)}, func(r *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed++
					return
				}
				acked[v] = true
			})
		}
	})
	nacked := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	waitProgress := func(from int) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for nacked() < from+300 {
			if time.Now().After(deadline) {
				t.Fatalf("producer made no progress (%d acked)\n%s", nacked(), proc.stderr.String())
			}
			time.Sleep(5 * time.Millisecond) // polling with a deadline
		}
	}
	for range kills {
		waitProgress(nacked())
		proc.kill()
		proc = startProc(t, bin, addr, dir)
		t.Logf("killed and restarted at %v with %d acknowledged", time.Since(start).Round(time.Millisecond), nacked())
	}
	waitProgress(nacked())
	close(stop)
	wg.Wait()
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	want := len(acked)
	mu.Unlock()
	t.Logf("%d kills, %d records acknowledged, %d failed", kills, want, failed)

	// Read everything back.
	c, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("crash"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ends, err := kadm.NewClient(c).ListEndOffsets(ctx, "crash")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	seen := map[string]int{}
	for n := int64(0); n < total; {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records: %v", n, total, ctx.Err())
		}
		fs.EachError(func(s string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", s, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			seen[string(r.Value)]++
			n++
		})
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("record %s is in the log %d times", v, n)
		}
	}
	mu.Lock()
	for v := range acked {
		if seen[v] != 1 {
			t.Errorf("acknowledged record %s is in the log %d times", v, seen[v])
		}
	}
	mu.Unlock()
	c.Close()
	p.Close()

	// Finally a graceful stop: SIGTERM ends the process with status 0, and
	// a restart has every record.
	if err := proc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- proc.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("broker exited after SIGTERM with %v\n%s", err, proc.stderr.String())
		}
	case <-ctx.Done():
		t.Fatalf("broker did not stop on SIGTERM\n%s", proc.stderr.String())
	}
	proc = startProc(t, bin, addr, dir)
	adm, err = kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ends2, err := kadm.NewClient(adm).ListEndOffsets(ctx, "crash")
	if err != nil {
		t.Fatal(err)
	}
	var total2 int64
	ends2.Each(func(o kadm.ListedOffset) { total2 += o.Offset })
	if total2 != total {
		t.Fatalf("after a graceful restart the log holds %d records, had %d", total2, total)
	}
}
