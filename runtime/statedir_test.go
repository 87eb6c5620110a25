package runtime_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/broker"
	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
	"github.com/weir-dev/weir/runtime"
)

// secondInstanceEnv makes the re-executed test binary create an instance
// on the named state directory (see TestMain) and report what New said.
const secondInstanceEnv = "WEIR_TEST_SECOND_INSTANCE_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(secondInstanceEnv); dir != "" {
		os.Exit(runSecondInstance(dir))
	}
	os.Exit(m.Run())
}

// runSecondInstance is the second process: it exits 3 with New's error on
// stderr when the state directory is locked, 0 if New succeeded.
func runSecondInstance(dir string) int {
	a, err := newEmbedded(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		if runtime.IsStateDirLocked(err) {
			return 3
		}
		return 1
	}
	_ = a.Close()
	return 0
}

// newEmbedded creates an orders-per-minute instance with an embedded broker
// whose data lives under dir.
func newEmbedded(dir string) (*runtime.Application, error) {
	topo, err := orders.Topology(false)
	if err != nil {
		return nil, err
	}
	return runtime.New(topo, runtime.ApplicationID("orders-app"), runtime.StateDir(dir), runtime.Logger(quietLogger()))
}

// TestStateDirLockedInProcess: while an instance (with its embedded broker
// under the state directory) holds a state directory, a second instance on
// it is refused at once with the directory and this process's pid, and so
// is a broker opened on the embedded broker's data directory; after Close
// the directory can be used again.
func TestStateDirLockedInProcess(t *testing.T) {
	dir := t.TempDir()
	first, err := newEmbedded(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()

	start := time.Now()
	second, err := newEmbedded(dir)
	if err == nil {
		_ = second.Close()
		t.Fatalf("a second instance opened state directory %s while the first holds it", dir)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("refusal took %v", took)
	}
	if !runtime.IsStateDirLocked(err) {
		t.Errorf("IsStateDirLocked(%v) = false", err)
	}
	want := fmt.Sprintf("directory %s is in use by this process (pid %d)", dir, os.Getpid())
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}

	bdir := filepath.Join(dir, "broker")
	b, err := broker.Open(broker.Options{Listen: "127.0.0.1:0", DataDir: bdir, Logger: quietLogger()})
	if err == nil {
		_ = b.Close()
		t.Fatalf("a broker opened %s while the instance's embedded broker serves it", bdir)
	}
	if !broker.IsDataDirLocked(err) || !strings.Contains(err.Error(), bdir) {
		t.Errorf("broker on the embedded broker's directory: %v, want a lock error naming %s", err, bdir)
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := newEmbedded(dir)
	if err != nil {
		t.Fatalf("instance after the first closed: %v", err)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestStateDirLockedSecondProcess: a second process creating an instance on
// a state directory in use fails at once naming the directory and this
// (the holding) process's pid.
func TestStateDirLockedSecondProcess(t *testing.T) {
	dir := t.TempDir()
	first, err := newEmbedded(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), secondInstanceEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	code := -1
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err == nil {
		code = 0
	}
	if code != 3 {
		t.Fatalf("second instance process: %v (exit %d), want exit 3 (state directory locked); stderr:\n%s", err, code, stderr.String())
	}
	want := fmt.Sprintf("directory %s is in use by process %d", dir, os.Getpid())
	if msg := stderr.String(); !strings.Contains(msg, want) {
		t.Errorf("second process said %q, want it to say %q", msg, want)
	}
}
