package proccluster

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var build struct {
	once    sync.Once
	dir     string
	bin     string
	err     error
	mainRan bool
}

// Main runs the tests of a package that uses this one and then removes
// the weir binary built for them. Call it from TestMain:
//
//	func TestMain(m *testing.M) { proccluster.Main(m) }
func Main(m *testing.M) {
	build.mainRan = true
	code := m.Run()
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// Binary returns the path of the weir binary, built from this module's
// cmd/weir on first use.
func Binary(t testing.TB) string {
	t.Helper()
	if !build.mainRan {
		t.Fatal("proccluster: the test binary does not run proccluster.Main from TestMain (it removes the binary built for the tests)")
	}
	build.once.Do(func() {
		var root []byte
		root, build.err = exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
		if build.err != nil {
			build.err = fmt.Errorf("proccluster: find the module's directory: %w", build.err)
			return
		}
		build.dir, build.err = os.MkdirTemp("", "weir-proccluster-")
		if build.err != nil {
			return
		}
		build.bin = filepath.Join(build.dir, "weir")
		cmd := exec.Command("go", "build", "-o", build.bin, "./cmd/weir")
		cmd.Dir = strings.TrimSpace(string(root))
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("proccluster: go build ./cmd/weir: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin
}

// Options say what cluster to start.
type Options struct {
	// Nodes is the number of nodes, each a controller voter and a broker.
	// Default 3.
	Nodes int
	// Args are extra `weir broker` flags given to every node. Default none.
	Args []string
	// ReadyTimeout bounds the wait for a node to serve after it starts.
	// Default 30s.
	ReadyTimeout time.Duration
}

// Cluster is a running set of weir broker processes.
type Cluster struct {
	t      testing.TB
	bin    string
	opts   Options
	voters string
	nodes  []*Node
}

// Node is one weir broker process of a Cluster. Its methods are for the
// test's goroutine.
type Node struct {
	c *Cluster
	// ID is the node id, from 1.
	ID int32
	// Addr is the client listener's address.
	Addr string
	// ControllerAddr is the controller listener's address (its voter
	// address).
	ControllerAddr string
	// DataDir is the node's data directory; it survives restarts.
	DataDir string
	// LogPath is the file that holds the node's output, of every start.
	LogPath string

	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd's process has exited
	waitErr error         // set before exited is closed
	stopped bool          // SIGSTOPped and not yet continued
}

// Start starts a cluster of opts.Nodes processes and waits until every
// node serves. It stops them in t.Cleanup.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 30 * time.Second
	}
	c := &Cluster{t: t, bin: Binary(t), opts: opts}
	dir := t.TempDir()
	var voters []string
	for i := range opts.Nodes {
		n := &Node{c: c, ID: int32(i + 1), Addr: freeAddr(t), ControllerAddr: freeAddr(t),
			DataDir: filepath.Join(dir, fmt.Sprintf("data-%d", i+1)), LogPath: filepath.Join(dir, fmt.Sprintf("node-%d.log", i+1))}
		c.nodes = append(c.nodes, n)
		voters = append(voters, fmt.Sprintf("%d@%s", n.ID, n.ControllerAddr))
	}
	c.voters = strings.Join(voters, ",")
	t.Cleanup(c.stopAll)
	for _, n := range c.nodes {
		n.start()
	}
	for _, n := range c.nodes {
		n.WaitServing()
	}
	return c
}

// Nodes returns the nodes, in node id order.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// Node returns the node with id.
func (c *Cluster) Node(id int32) *Node { return c.nodes[id-1] }

// Voters returns the --controller-voters value every node was given.
func (c *Cluster) Voters() string { return c.voters }

// Addrs returns every node's client address.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.Addr)
	}
	return out
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start starts the node's process, its output appended to its log; extra
// are flags for this start only.
func (n *Node) start(extra ...string) {
	t := n.c.t
	t.Helper()
	logf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "=== proccluster: starting node %d at %s\n", n.ID, time.Now().Format(time.RFC3339Nano))
	args := append([]string{"broker", "--node-id", fmt.Sprint(n.ID), "--controller-voters", n.c.voters,
		"--listen", n.Addr, "--data-dir", n.DataDir}, n.c.opts.Args...)
	args = append(args, extra...)
	cmd := exec.Command(n.c.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		t.Fatalf("proccluster: start node %d: %v", n.ID, err)
	}
	n.cmd, n.exited, n.stopped = cmd, make(chan struct{}), false
	exited := n.exited
	go func() {
		n.waitErr = cmd.Wait()
		_ = logf.Close()
		close(exited)
	}()
}

// Running reports whether the node's process is alive (perhaps stopped).
func (n *Node) Running() bool {
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// Pid returns the process id of the node's current process.
func (n *Node) Pid() int { return n.cmd.Process.Pid }

// WaitServing waits until the node answers an ApiVersions request on its
// client listener; the test fails if it does not within
// Options.ReadyTimeout or if the process exits.
func (n *Node) WaitServing() {
	t := n.c.t
	t.Helper()
	deadline := time.Now().Add(n.c.opts.ReadyTimeout)
	var err error
	for time.Now().Before(deadline) {
		if !n.Running() {
			t.Fatalf("proccluster: node %d exited (%v) before serving; log:\n%s", n.ID, n.waitErr, n.Tail(100))
		}
		if err = n.ping(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	t.Fatalf("proccluster: node %d not serving on %s within %v: %v", n.ID, n.Addr, n.c.opts.ReadyTimeout, err)
}

func (n *Node) ping() error {
	cl, err := n.Client()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = cl.SeedBrokers()[0].Request(ctx, kmsg.NewPtrApiVersionsRequest())
	return err
}

// Client returns a franz-go client seeded with this node alone; requests
// sent with its SeedBrokers()[0] reach this node. The caller closes it.
func (n *Node) Client(opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(n.Addr), kgo.RequestRetries(0),
		kgo.DialTimeout(time.Second)}, opts...)...)
}

func (n *Node) signal(sig syscall.Signal) {
	t := n.c.t
	t.Helper()
	if !n.Running() {
		t.Fatalf("proccluster: %v to node %d, which is not running", sig, n.ID)
	}
	if err := n.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("proccluster: %v to node %d: %v", sig, n.ID, err)
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (n *Node) Kill() {
	n.c.t.Helper()
	n.signal(syscall.SIGKILL)
	<-n.exited
	n.stopped = false
}

// Terminate sends SIGTERM (a controlled shutdown: the node hands its
// leaderships away first) and waits for the process to exit.
func (n *Node) Terminate() {
	n.c.t.Helper()
	n.signal(syscall.SIGTERM)
	<-n.exited
	n.stopped = false
}

// Stop sends SIGSTOP: the process is frozen until Cont.
func (n *Node) Stop() {
	n.c.t.Helper()
	n.signal(syscall.SIGSTOP)
	n.stopped = true
}

// Cont sends SIGCONT to a stopped node.
func (n *Node) Cont() {
	n.c.t.Helper()
	n.signal(syscall.SIGCONT)
	n.stopped = false
}

// Restart starts a node whose process has exited again, with the same
// flags and data directory, and waits until it serves.
func (n *Node) Restart() { n.RestartWith() }

// RestartWith is Restart with extra flags for this start only.
func (n *Node) RestartWith(extra ...string) {
	t := n.c.t
	t.Helper()
	if n.Running() {
		t.Fatalf("proccluster: restart of node %d, which is still running", n.ID)
	}
	n.start(extra...)
	n.WaitServing()
}

// RestartExpectingExit starts a node whose process has exited again and
// waits for the new process to exit by itself, as a node refusing to start
// does; it returns the exit error (nil for exit status 0). The test fails
// if the process still runs after within (it is then killed).
func (n *Node) RestartExpectingExit(within time.Duration) error {
	t := n.c.t
	t.Helper()
	if n.Running() {
		t.Fatalf("proccluster: restart of node %d, which is still running", n.ID)
	}
	n.start()
	select {
	case <-n.exited:
		return n.waitErr
	case <-time.After(within):
		n.Kill()
		t.Fatalf("proccluster: node %d still running %v after its restart; log:\n%s", n.ID, within, n.Tail(40))
		return nil
	}
}

// Tail returns the last lines of the node's log.
func (n *Node) Tail(lines int) string {
	data, err := os.ReadFile(n.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	var all []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		all = append(all, sc.Text())
	}
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// stopAll stops every node: continued if stopped, then SIGTERM to all at
// once (a node's controlled shutdown asks the controller, which needs a
// quorum), SIGKILL for any still running after 15s. On a failed test it
// prints the tail of every node's log.
func (c *Cluster) stopAll() {
	for _, n := range c.nodes {
		if n.cmd == nil || !n.Running() {
			continue
		}
		if n.stopped {
			_ = n.cmd.Process.Signal(syscall.SIGCONT)
		}
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	expired := false
	for _, n := range c.nodes {
		if n.cmd == nil {
			continue
		}
		if !expired {
			select {
			case <-n.exited:
				continue
			case <-deadline.C:
				expired = true
			}
		}
		if n.Running() {
			c.t.Errorf("proccluster: node %d still running 15s after SIGTERM; killed", n.ID)
			_ = n.cmd.Process.Kill()
			<-n.exited
		}
	}
	if c.t.Failed() {
		for _, n := range c.nodes {
			c.t.Logf("proccluster: node %d (%s, data %s), last lines of %s:\n%s", n.ID, n.Addr, n.DataDir, n.LogPath, n.Tail(60))
		}
	}
}

// Shutdown stops every node as the test's cleanup does (SIGTERM, a
// controlled shutdown each), so that a test can read the data directories
// afterwards. Nodes stay stopped.
func (c *Cluster) Shutdown() { c.stopAll() }
