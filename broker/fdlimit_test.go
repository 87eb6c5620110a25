//go:build linux

package broker

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// fdChildEnv, when set in the environment, makes TestLowFileLimit run as
// the broker process of its parent (the value names the mode).
const fdChildEnv = "WEIR_FDLIMIT_CHILD"

// childFileLimit is the open-file limit of the broker process.
const childFileLimit = 128

// TestLowFileLimit is issue 12's third defect: a broker under a low
// RLIMIT_NOFILE that many idle connections reach keeps serving. The broker
// runs in a child process (this test binary re-executed, which lowers its
// own limit first) so that the limit does not touch the rest of the tests;
// the parent floods it with idle connections and runs a well-behaved
// client beside them.
//
//   - emfile: no connection limit, so accept runs out of descriptors; it
//     must be retried (logged) until the idle timeout frees some, and
//     then serve the client. Before the fix the accept loop returned and
//     the broker stopped.
//   - limit: the default connection limit (3/4 of the open-file limit)
//     refuses the flood's excess, so accept never runs out; a producer
//     and a consumer connected before the flood go on undisturbed.
func TestLowFileLimit(t *testing.T) {
	if mode := os.Getenv(fdChildEnv); mode != "" {
		runLowFileLimitChild(t, mode)
		return
	}
	for _, mode := range []string{"emfile", "limit"} {
		t.Run(mode, func(t *testing.T) { testLowFileLimit(t, mode) })
	}
}

// fdChild is a broker child process.
type fdChild struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // the child's stdout, line by line
	stderr lockedBuffer
	addr   string
	// died is the child's "SERVE returned" line once it printed one: its
	// accept loop ended. The parent's context is cancelled then, and when
	// the child's stdout closes.
	died atomic.Value
}

// why returns what the child said when its accept loop ended, if it did.
func (c *fdChild) why() string {
	if l, ok := c.died.Load().(string); ok {
		return "; broker process: " + l
	}
	return ""
}

// startFDChild starts the broker child in mode and waits for its address;
// cancel is called if the child's accept loop ends or its output does.
func startFDChild(t *testing.T, mode string, cancel context.CancelFunc) *fdChild {
	t.Helper()
	c := &fdChild{lines: make(chan string, 16)}
	c.cmd = exec.Command(os.Args[0], "-test.run=^TestLowFileLimit$", "-test.timeout=90s")
	c.cmd.Env = append(os.Environ(), fdChildEnv+"="+mode, "WEIR_FDLIMIT_DIR="+t.TempDir())
	c.cmd.Stderr = &c.stderr
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.stdin.Close()
		done := make(chan struct{})
		go func() { _ = c.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = c.cmd.Process.Kill()
			<-done
		}
	})
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "SERVE ") {
				c.died.Store(l)
				cancel()
			}
			c.lines <- sc.Text()
		}
		cancel()
	}()
	c.addr = c.expect(t, "ADDR ")
	return c
}

// expect returns the rest of the child's next stdout line starting with
// prefix, skipping others.
func (c *fdChild) expect(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatalf("broker process ended before printing %q; its stderr:\n%s", prefix, tail(c.stderr.String(), 4000))
			}
			if rest, found := strings.CutPrefix(l, prefix); found {
				return rest
			}
			if strings.HasPrefix(l, "SERVE ") {
				t.Fatalf("broker process: %s", l)
			}
		case <-timeout:
			t.Fatalf("no %q line from the broker process within 60s", prefix)
		}
	}
}

// lockedBuffer is a bytes.Buffer that a child process writes while the
// test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// flood opens n connections to addr that send nothing and holds each
// until the broker closes it or stop is closed; wait waits for them all to
// end. closed is closed once the broker has closed one of them (a refusal
// or an idle timeout) before stop.
func flood(addr string, n int, stop <-chan struct{}) (wait func(), closed <-chan struct{}) {
	var wg sync.WaitGroup
	byBroker := make(chan struct{})
	var once sync.Once
	for range n {
		wg.Go(func() {
			nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				return
			}
			defer nc.Close()
			stopped := make(chan struct{})
			go func() {
				select {
				case <-stop:
				case <-time.After(60 * time.Second):
				}
				close(stopped)
				_ = nc.SetReadDeadline(time.Now())
			}()
			var b [1]byte
			_, _ = nc.Read(b[:])
			select {
			case <-stopped:
			default:
				once.Do(func() { close(byBroker) })
			}
		})
	}
	return wg.Wait, byBroker
}

func testLowFileLimit(t *testing.T, mode string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	child := startFDChild(t, mode, cancel)
	const topic = "survivor"
	const n = 200
	var want []*kgo.Record
	for i := range n {
		want = append(want, &kgo.Record{Key: []byte(strconv.Itoa(i % 7)), Value: []byte(fmt.Sprintf("v%04d", i))})
	}

	// The topic exists (and its log files are open) before the flood.
	adm, err := kgo.NewClient(kgo.SeedBrokers(child.addr))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(adm).CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	adm.Close()

	var consumer *kgo.Client
	cons := func() *kgo.Client {
		if consumer == nil {
			var err error
			consumer, err = kgo.NewClient(kgo.SeedBrokers(child.addr), kgo.ConsumeTopics(topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(consumer.Close)
		}
		return consumer
	}
	var got []*kgo.Record
	var prod *kgo.Client
	if mode == "limit" {
		// Connected before the flood: it must go on undisturbed.
		prod, err = kgo.NewClient(kgo.SeedBrokers(child.addr), kgo.DefaultProduceTopic(topic))
		if err != nil {
			t.Fatal(err)
		}
		defer prod.Close()
		if err := produceCtx(ctx, prod, want[:n/2]...); err != nil {
			t.Fatalf("produce before the flood: %v%s", err, child.why())
		}
		for len(got) < n/2 && ctx.Err() == nil {
			got = append(got, poll(t, ctx, cons())...)
		}
	}

	stop := make(chan struct{})
	const floodConns = 3 * childFileLimit
	floodDone, floodClosed := flood(child.addr, floodConns, stop)
	defer func() {
		close(stop)
		floodDone()
	}()
	if mode == "limit" {
		// The flood has reached the limit once the broker refuses one of
		// its connections; the produce below runs beside a full broker.
		select {
		case <-floodClosed:
		case <-ctx.Done():
			t.Fatalf("the broker closed none of the flood's %d connections%s", floodConns, child.why())
		}
	}

	if mode == "emfile" {
		// Connected after the flood: served once the idle timeout frees
		// descriptors.
		prod, err = kgo.NewClient(kgo.SeedBrokers(child.addr), kgo.DefaultProduceTopic(topic))
		if err != nil {
			t.Fatal(err)
		}
		defer prod.Close()
		if err := produceCtx(ctx, prod, want[:n/2]...); err != nil {
			t.Fatalf("produce during the flood: %v%s", err, child.why())
		}
	}
	start := time.Now()
	if err := produceCtx(ctx, prod, want[n/2:]...); err != nil {
		t.Fatalf("produce during the flood: %v%s", err, child.why())
	}
	t.Logf("produce during the flood took %v", time.Since(start))

	for len(got) < n && ctx.Err() == nil {
		got = append(got, poll(t, ctx, cons())...)
	}
	if diff := cmp.Diff(recordSet(want), recordSet(got)); diff != "" {
		t.Fatalf("records%s (-produced +consumed):\n%s", child.why(), diff)
	}

	// Ask the broker for its counters and let it exit.
	_ = child.stdin.Close()
	res := child.expect(t, "RESULT ")
	t.Logf("broker process: %s", res)
	counts := map[string]int{}
	for _, f := range strings.Fields(res) {
		k, v, _ := strings.Cut(f, "=")
		counts[k], _ = strconv.Atoi(v)
	}
	switch mode {
	case "emfile":
		if counts["accept_errors"] == 0 {
			t.Errorf("accept never failed: the flood did not exhaust the descriptors (raise it)")
		}
		if counts["idle"] == 0 {
			t.Errorf("no connection closed as idle")
		}
		if !strings.Contains(child.stderr.String(), "accept failed; retrying") {
			t.Errorf("no log line for the failed accepts; stderr:\n%s", tail(child.stderr.String(), 4000))
		}
	case "limit":
		if counts["accept_errors"] != 0 {
			t.Errorf("accept failed %d times under the connection limit", counts["accept_errors"])
		}
		if counts["max_connections"] == 0 {
			t.Errorf("no connection refused for max_connections")
		}
	}
}

// produceCtx produces recs and waits for them, or for ctx (the records of
// an idempotent producer in flight to a dead broker wait for it forever).
func produceCtx(ctx context.Context, cl *kgo.Client, recs ...*kgo.Record) error {
	done := make(chan error, 1)
	go func() { done <- cl.ProduceSync(ctx, recs...).FirstErr() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// poll returns the records of one poll, failing the test on a fetch
// error.
func poll(t *testing.T, ctx context.Context, c *kgo.Client) []*kgo.Record {
	t.Helper()
	fs := c.PollFetches(ctx)
	fs.EachError(func(tp string, p int32, err error) {
		if ctx.Err() == nil {
			t.Errorf("fetch %s/%d: %v", tp, p, err)
		}
	})
	return fs.Records()
}

// runLowFileLimitChild is the broker process: it lowers its open-file
// limit, serves, prints its address, and once stdin closes prints its
// counters and exits. If the accept loop ends first it says so and fails.
func runLowFileLimitChild(t *testing.T, mode string) {
	rl := syscall.Rlimit{Cur: childFileLimit, Max: childFileLimit}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatalf("setrlimit: %v", err)
	}
	opts := Options{
		Listen: "127.0.0.1:0", DataDir: os.Getenv("WEIR_FDLIMIT_DIR"), CleanInterval: -1,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	switch mode {
	case "emfile":
		opts.MaxConnections = -1
		opts.ConnectionsMaxIdle = 500 * time.Millisecond
	case "limit":
		opts.ConnectionsMaxIdle = -1
	}
	b, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	reg := prometheus.NewRegistry()
	if err := b.srv.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("ADDR %s\n", b.Addr())
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	select {
	case <-stdinClosed:
	case <-b.served:
		fmt.Printf("SERVE returned: %v\n", b.srvErr)
		t.Fatalf("the accept loop returned: %v", b.srvErr)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "weir_accept_errors_total":
				counts["accept_errors"] += m.GetCounter().GetValue()
			case "weir_connections_closed_total":
				for _, l := range m.GetLabel() {
					if l.GetName() == "reason" {
						counts[l.GetValue()] += m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	fmt.Printf("RESULT accept_errors=%d idle=%d max_connections=%d\n",
		int(counts["accept_errors"]), int(counts["idle"]), int(counts["max_connections"]))
}

// TestConnectionOptionDefaults checks the connection options' defaults
// and validation.
func TestConnectionOptionDefaults(t *testing.T) {
	var o Options
	o.EnsureDefaults()
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	wantMax := -1 // an open-file limit that large is no limit
	if rl.Cur < 1<<30 {
		wantMax = int(rl.Cur / 4 * 3)
	}
	got := [4]any{o.FrameReadTimeout, o.ConnectionsMaxIdle, o.MaxConnections, o.MaxConnectionsPerIP}
	want := [4]any{30 * time.Second, 10 * time.Minute, wantMax, 0}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("defaults (-want +got) [FrameReadTimeout ConnectionsMaxIdle MaxConnections MaxConnectionsPerIP]:\n%s", diff)
	}
	o.MaxConnectionsPerIP = -1
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "max connections per IP -1") {
		t.Fatalf("negative MaxConnectionsPerIP: got %v", err)
	}
}
