package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestClusterQuickstartProcesses runs the README's cluster quickstart as
// separate weir processes (on free loopback ports instead of the README's
// fixed ones, so that it cannot collide with anything else on the
// machine): three brokers, kcat -L shows the three of them and a
// controller, and a topic with replication factor 3 is created. SIGTERM
// stops each process cleanly.
func TestClusterQuickstartProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the weir binary and starts processes")
	}
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		msg := "kcat not installed (apt-get install kcat): the cluster quickstart's kcat -L check cannot run"
		if os.Getenv("WEIR_REQUIRE_CLIENTS") == "1" {
			t.Fatalf("WEIR_REQUIRE_CLIENTS=1 but %s", msg)
		}
		t.Skip("SKIPPED LOUDLY: " + msg)
	}
	bin := filepath.Join(t.TempDir(), "weir")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	var ctl, client []string
	for range 3 {
		ctl, client = append(ctl, free()), append(client, free())
	}
	voters := fmt.Sprintf("1@%s,2@%s,3@%s", ctl[0], ctl[1], ctl[2])
	dir := t.TempDir()
	var procs []*exec.Cmd
	var logs []*os.File
	// Stop all three at once (a node's SIGTERM waits for the controller to
	// move its leaderships away, which needs the others).
	t.Cleanup(func() {
		for _, cmd := range procs {
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
		for i, cmd := range procs {
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					log, _ := os.ReadFile(logs[i].Name())
					t.Errorf("node %d exited with %v after SIGTERM:\n%s", i+1, err, log)
				}
			case <-time.After(15 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Errorf("node %d did not stop within 15s of SIGTERM", i+1)
			}
			_ = logs[i].Close()
		}
	})
	for i := range 3 {
		cmd := exec.Command(bin, "broker", "--node-id", fmt.Sprint(i+1), "--controller-voters", voters,
			"--listen", client[i], "--data-dir", filepath.Join(dir, fmt.Sprintf("d%d", i+1)))
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("log%d", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
		logs = append(logs, logf)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var last string
	for {
		out, _ := exec.CommandContext(ctx, kcat, "-b", client[0], "-L", "-m", "2").CombinedOutput()
		last = string(out)
		if strings.Contains(last, " 3 brokers:") && strings.Contains(last, "(controller)") {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("kcat -L never showed 3 brokers and a controller; last output:\n%s", last)
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
	out, err := exec.CommandContext(ctx, bin, "topic", "create", "orders", "--partitions", "6",
		"--replication-factor", "3", "--brokers", client[1]).CombinedOutput()
	if err != nil || string(out) != "Created topic orders (6 partitions, replication factor 3).\n" {
		t.Fatalf("topic create: %v: %s", err, out)
	}
}
