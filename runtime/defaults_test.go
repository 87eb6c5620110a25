package runtime_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
	"github.com/weir-dev/weir/runtime"
)

// TestDefaultStateDir: an application given no StateDir keeps its state
// under os.TempDir()/weir-streams/<application id>, and its embedded
// broker's data under that directory's broker/.
func TestDefaultStateDir(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // os.TempDir on Unix
	topo, err := orders.Topology(true)
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(tmp, "weir-streams", "orders")
	if got := runtime.DefaultStateDir("orders"); got != want {
		t.Errorf("DefaultStateDir(orders) = %q, want %q", got, want)
	}

	// With brokers given, New only locks the directory: its lock file is
	// all it holds before Run.
	app, err := runtime.New(topo, runtime.ApplicationID("orders"), runtime.Brokers("127.0.0.1:1"), runtime.Logger(quietLogger()))
	if err != nil {
		t.Fatalf("New without StateDir: %v", err)
	}
	if got := app.StateDir(); got != want {
		t.Errorf("StateDir() = %q, want %q", got, want)
	}
	ents, err := os.ReadDir(want)
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	if err != nil || len(ents) != 1 || ents[0].Name() != "weir.lock" {
		t.Errorf("New with brokers left %v in %s (err %v), want only its lock file before Run", ents, want, err)
	}

	// Without brokers, the embedded broker's data goes under it.
	app, err = runtime.New(topo, runtime.ApplicationID("orders"), runtime.Logger(quietLogger()))
	if err != nil {
		t.Fatalf("New with neither StateDir nor Brokers: %v", err)
	}
	defer app.Close()
	if got := app.StateDir(); got != want {
		t.Errorf("StateDir() = %q, want %q", got, want)
	}
	if fi, err := os.Stat(filepath.Join(want, "broker")); err != nil || !fi.IsDir() {
		t.Errorf("embedded broker data directory %s: %v", filepath.Join(want, "broker"), err)
	}

	// An explicit StateDir wins.
	mine := t.TempDir()
	app2, err := runtime.New(topo, runtime.ApplicationID("orders"), runtime.Brokers("127.0.0.1:1"), runtime.StateDir(mine))
	if err != nil {
		t.Fatal(err)
	}
	defer app2.Close()
	if got := app2.StateDir(); got != mine {
		t.Errorf("StateDir() = %q, want the option's %q", got, mine)
	}
}

// TestNewReportsEveryProblem: New names every bad option at once, an
// application id that cannot name a default state directory among them,
// and starts no embedded broker when any is bad.
func TestNewReportsEveryProblem(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	topo, err := orders.Topology(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"../escape", "a/b", "..", "."} {
		_, err := runtime.New(topo, runtime.ApplicationID(id), runtime.Workers(-1), runtime.CommitInterval(-1))
		if err == nil {
			t.Errorf("New(id %q, workers -1, commit interval -1) = nil error", id)
			continue
		}
		for _, want := range []string{"application id " + strings.ReplaceAll(`"`+id+`"`, `\`, `\\`) + " cannot name a directory", "workers -1 < 0", "commit interval -1ns < 0"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("New(id %q): error %q does not say %q", id, err, want)
			}
		}
	}
	if _, err := runtime.New(topo); err == nil || !strings.Contains(err.Error(), "application id is required") {
		t.Errorf("New with no application id: error %v, want it to say the id is required", err)
	}
	// No embedded broker (nor any directory) was created for the bad options.
	if ents, err := os.ReadDir(tmp); err != nil || len(ents) != 0 {
		t.Errorf("temp dir after refused News holds %v (err %v), want nothing", ents, err)
	}
}

// TestApplicationIDMustPrefixTopics: an id that cannot prefix Kafka topic
// names is refused by New, naming the character, with nothing created.
func TestApplicationIDMustPrefixTopics(t *testing.T) {
	topo, err := orders.Topology(true)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for id, want := range map[string]string{
		"orders app":             `has ' ' at byte 6`,
		"orders:v2":              `has ':' at byte 6`,
		"zählen":                 `has 'ä' at byte 1`,
		strings.Repeat("a", 151): "is 151 characters long; at most 150",
	} {
		_, err := runtime.New(topo, runtime.ApplicationID(id), runtime.StateDir(filepath.Join(dir, "x")))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New(id %q) = %v, want an error saying %q", id, err, want)
		}
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("state dir parent after refused News holds %v (err %v), want nothing", ents, err)
	}
}

// TestMetricsAddrKnownAfterNew: the endpoint's address (port 0 picks one)
// is known from New on, before Run; a taken address fails New.
func TestMetricsAddrKnownAfterNew(t *testing.T) {
	topo, err := orders.Topology(true)
	if err != nil {
		t.Fatal(err)
	}
	a, err := runtime.New(topo, runtime.ApplicationID("metrics-addr"), runtime.Brokers("127.0.0.1:1"),
		runtime.StateDir(t.TempDir()), runtime.MetricsAddr("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	addr := a.MetricsAddr()
	if host, port, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("MetricsAddr = %q (%v), want 127.0.0.1 with the chosen port", addr, err)
	}
	_, err = runtime.New(topo, runtime.ApplicationID("metrics-addr-2"), runtime.Brokers("127.0.0.1:1"),
		runtime.StateDir(t.TempDir()), runtime.MetricsAddr(addr))
	if err == nil || !strings.Contains(err.Error(), "metrics address") {
		t.Errorf("New on the taken address %s = %v, want a metrics address error", addr, err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// Closed without Run: the address is free again.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("address %s still taken after Close: %v", addr, err)
	}
	ln.Close()
}

// TestRunStoppedDuringStartup: a context ended while Run is still starting
// (creating topics, here against a listener that accepts connections and
// never answers) is a clean stop, as it is once the instance runs.
//
// NB: not against an address where nothing listens: franz-go gives up at
// once on a refused dial to its only seed, so Run could fail before the
// context ended. The context ends once Run has connected.
func TestRunStoppedDuringStartup(t *testing.T) {
	topo, err := orders.Topology(true)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var conns []net.Conn // held open, never answered
	connected := make(chan struct{})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if conns = append(conns, c); len(conns) == 1 {
				close(connected)
			}
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	a, err := runtime.New(topo, runtime.ApplicationID("stopped-early"), runtime.Brokers(ln.Addr().String()),
		runtime.StateDir(t.TempDir()), runtime.Logger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case <-connected:
	case err := <-done:
		t.Fatalf("Run returned before it connected: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not connect within 30s")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run stopped during startup = %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of its context ending")
	}
}
