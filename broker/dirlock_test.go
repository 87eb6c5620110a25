package broker

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kgo"
)

// secondBrokerEnv makes the re-executed test binary open a broker on the
// named data directory (see TestMain) and report what Open said.
const secondBrokerEnv = "WEIR_TEST_SECOND_BROKER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(secondBrokerEnv); dir != "" {
		os.Exit(runSecondBroker(dir))
	}
	os.Exit(m.Run())
}

// runSecondBroker is the second process: it exits 3 with Open's error on
// stderr when the directory is locked, 0 if it could open it.
func runSecondBroker(dir string) int {
	b, err := Open(Options{Listen: "127.0.0.1:0", DataDir: dir, Logger: testLogger()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		if IsDataDirLocked(err) {
			return 3
		}
		return 1
	}
	_ = b.Close()
	return 0
}

// dirState lists every file under dir with its size and modification time.
func dirState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = fmt.Sprintf("%v %d %d", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// produceOne writes one record to topic and returns once it is acknowledged.
func produceOne(t *testing.T, b *Broker, topic, value string) {
	t.Helper()
	cl := newClient(t, b, kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, kgo.StringRecord(value)).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// TestDataDirLockedInProcess: a second Open of a data directory in use is
// refused at once, names the directory and this process's pid, and changes
// nothing in the directory; once the first broker is closed the directory
// opens with its data.
func TestDataDirLockedInProcess(t *testing.T) {
	dir := t.TempDir()
	first, err := Open(Options{Listen: "127.0.0.1:0", DataDir: dir, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	produceOne(t, first, "locked", "v1")
	before := dirState(t, dir)

	start := time.Now()
	second, err := Open(Options{Listen: "127.0.0.1:0", DataDir: dir, Logger: testLogger()})
	if err == nil {
		_ = second.Close()
		t.Fatalf("a second broker opened data directory %s while the first serves it", dir)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("refusal took %v", took)
	}
	if !IsDataDirLocked(err) {
		t.Errorf("IsDataDirLocked(%v) = false", err)
	}
	for _, want := range []string{dir, "pid " + strconv.Itoa(os.Getpid())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if diff := cmp.Diff(before, dirState(t, dir)); diff != "" {
		t.Errorf("the refused Open changed the data directory (-before +after):\n%s", diff)
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again := startBroker(t, Options{DataDir: dir})
	var got []string
	for _, r := range consumeN(t, again, "locked", 1) {
		got = append(got, string(r.Value))
	}
	if diff := cmp.Diff([]string{"v1"}, got); diff != "" {
		t.Errorf("after reopening (-want +got):\n%s", diff)
	}
}

// TestDataDirLockedSecondProcess: a second broker process on a data
// directory in use exits at once with an error naming the directory and
// this (the holding) process's pid.
func TestDataDirLockedSecondProcess(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, Options{DataDir: dir})
	produceOne(t, b, "locked", "v1")
	before := dirState(t, dir)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), secondBrokerEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	code := -1
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err == nil {
		code = 0
	}
	if code != 3 {
		t.Fatalf("second broker process: %v (exit %d), want exit 3 (data directory locked); stderr:\n%s", err, code, stderr.String())
	}
	msg := stderr.String()
	want := fmt.Sprintf("directory %s is in use by process %d", dir, os.Getpid())
	if !strings.Contains(msg, want) {
		t.Errorf("second process said %q, want it to say %q", msg, want)
	}
	if diff := cmp.Diff(before, dirState(t, dir)); diff != "" {
		t.Errorf("the refused process changed the data directory (-before +after):\n%s", diff)
	}
}

// TestFailedOpenReleasesDataDir: an Open that fails after locking the data
// directory (here: its listen address is taken) releases it.
func TestFailedOpenReleasesDataDir(t *testing.T) {
	taken := startBroker(t, Options{})
	dir := t.TempDir()
	if b, err := Open(Options{Listen: taken.Addr(), DataDir: dir, Logger: testLogger()}); err == nil {
		_ = b.Close()
		t.Fatalf("Open on the taken address %s succeeded", taken.Addr())
	} else if IsDataDirLocked(err) {
		t.Fatalf("Open on the taken address failed for the lock: %v", err)
	}
	startBroker(t, Options{DataDir: dir})
}
