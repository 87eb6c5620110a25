package dirlock

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSecondAcquireInProcessRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // Acquire creates it
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.PIDError(); err != nil {
		t.Fatalf("pid not written: %v", err)
	}
	_, err = Acquire(dir)
	var le *LockedError
	if !errors.As(err, &le) || !IsLocked(err) {
		t.Fatalf("second Acquire of %s: got %v, want a LockedError", dir, err)
	}
	if le.PID != os.Getpid() || le.Dir != dir {
		t.Errorf("LockedError{Dir: %q, PID: %d}, want {%q, %d}", le.Dir, le.PID, dir, os.Getpid())
	}
	for _, want := range []string{dir, strconv.Itoa(os.Getpid())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	l2, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	defer l2.Release()
}

// TestPIDRewrittenInPlace: a new holder overwrites a longer stale pid and
// the file keeps its fixed size.
func TestPIDRewrittenInPlace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	if err := os.WriteFile(path, []byte("123456789012345678901234567890\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != strconv.Itoa(os.Getpid()) || len(b) != pidWidth {
		t.Errorf("lock file holds %q (%d bytes), want pid %d in %d bytes", b, len(b), os.Getpid(), pidWidth)
	}
}

// helperEnv makes the test binary, re-executed, hold the lock of the named
// directory until its stdin closes.
const helperEnv = "WEIR_DIRLOCK_HOLD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		os.Exit(holdLock(dir))
	}
	os.Exit(m.Run())
}

func holdLock(dir string) int {
	l, err := Acquire(dir)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("locked")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes stdin
	_ = l.Release()
	return 0
}

// TestSecondProcessRefused: another process holds the lock; Acquire here
// fails at once naming the directory and that process's pid, and succeeds
// once the other process has exited.
func TestSecondProcessRefused(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "locked" {
		t.Fatalf("helper: %q, %v", line, err)
	}

	start := time.Now()
	_, err = Acquire(dir)
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("Acquire while process %d holds %s: %v, want a LockedError", cmd.Process.Pid, dir, err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("refusal took %v; it must not wait", took)
	}
	if le.PID != cmd.Process.Pid {
		t.Errorf("holder pid %d, want the helper's %d", le.PID, cmd.Process.Pid)
	}
	want := fmt.Sprintf("directory %s is in use by process %d", dir, cmd.Process.Pid)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}

	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	l, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after the holder exited: %v", err)
	}
	_ = l.Release()
}

// TestLockReleasedWhenHolderKilled: kill -9 of the holder frees the lock.
func TestLockReleasedWhenHolderKilled(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	if _, err := cmd.StdinPipe(); err != nil { // never closed: the helper waits
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper: %q", line)
	}
	if _, err := Acquire(dir); !IsLocked(err) {
		t.Fatalf("Acquire while held: %v", err)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait() // the process is gone, and its descriptors with it
	l, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after kill -9 of the holder: %v", err)
	}
	_ = l.Release()
}
