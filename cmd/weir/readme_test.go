//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The README's shell blocks are run by TestREADME in the order they appear,
// as a reader pastes them into terminals. Each ```sh block must follow a
// marker line saying how:
//
//	<!-- readme-test: run -->                   run it; it must exit 0
//	<!-- readme-test: run expect="REGEXP" -->   ... and its output must match REGEXP
//	<!-- readme-test: run until="REGEXP" -->    run it again until its output matches REGEXP
//	<!-- readme-test: run requires="PROG" -->   skip it (loudly) when PROG is not installed
//	<!-- readme-test: background="REGEXP" -->   start it, wait until its output matches REGEXP,
//	                                            leave it running (a terminal of its own);
//	                                            Ctrl-C (SIGINT) stops it when the test ends,
//	                                            and it must then exit 0
//	<!-- readme-test: until-ctrl-c="REGEXP" --> start it, wait for REGEXP, Ctrl-C it at once,
//	                                            and it must exit 0
//	<!-- readme-test: jobs="REGEXP" -->         a cluster in one block: stop the blocks left
//	                                            running (their terminals close; the cluster
//	                                            takes their ports), start each line ending
//	                                            in & as a job of its own, run the other
//	                                            lines in order (the first again until its
//	                                            output matches REGEXP; each must exit 0),
//	                                            and Ctrl-C the jobs together when the test
//	                                            ends (each must then exit 0); the block
//	                                            runs in a directory of its own under the
//	                                            test's temporary directory
//	<!-- readme-test: skip="REASON" -->         not run, for the reason given
//
// run and jobs take requires="PROG" too.
//
// so that a new block cannot go untested by accident.
var readmeMarker = regexp.MustCompile(`^<!-- readme-test: (.*) -->$`)

// markerAttr matches one `name` or `name="value"` of a marker.
var markerAttr = regexp.MustCompile(`([a-z-]+)(?:="([^"]*)")?`)

// readmeBlock is one shell block of the README and how to run it.
type readmeBlock struct {
	line  int               // the README line of the opening fence
	kind  string            // run, background, until-ctrl-c, jobs, skip
	attrs map[string]string // the marker's attributes, the kind's value included
	text  string
}

func parseREADME(t *testing.T, path string) []readmeBlock {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []readmeBlock
	var marker map[string]string
	var kind string
	markerLine := 0
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if m := readmeMarker.FindStringSubmatch(l); m != nil {
			marker, kind, markerLine = map[string]string{}, "", i+1
			for _, a := range markerAttr.FindAllStringSubmatch(m[1], -1) {
				if kind == "" {
					kind = a[1]
				}
				marker[a[1]] = a[2]
			}
			continue
		}
		fence := strings.TrimSpace(l)
		if !strings.HasPrefix(fence, "```") {
			if marker != nil && strings.TrimSpace(l) != "" {
				t.Fatalf("README.md:%d: marker not followed by a code block", markerLine)
			}
			continue
		}
		lang := strings.TrimPrefix(fence, "```")
		start := i + 1
		var body []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, lines[i])
		}
		if lang != "sh" && lang != "bash" && lang != "shell" {
			if marker != nil {
				t.Fatalf("README.md:%d: readme-test marker on a %q block; only shell blocks are run", start, lang)
			}
			continue
		}
		if marker == nil {
			t.Fatalf("README.md:%d: shell block without a <!-- readme-test: ... --> marker; every command of the README is tested or says why not", start)
		}
		switch kind {
		case "run", "background", "until-ctrl-c", "jobs", "skip":
		default:
			t.Fatalf("README.md:%d: unknown readme-test kind %q", markerLine, kind)
		}
		if kind != "run" && marker[kind] == "" {
			t.Fatalf("README.md:%d: %s needs a value (%s=\"...\")", markerLine, kind, kind)
		}
		blocks = append(blocks, readmeBlock{line: start, kind: kind, attrs: marker, text: strings.Join(body, "\n")})
		marker = nil
	}
	return blocks
}

// readmeEnv is where the blocks run.
type readmeEnv struct {
	repo, tmp, addr string
	// dir, when set, is where the blocks run instead of repo.
	dir string
	env []string
	// ports maps the README's other loopback addresses (a cluster's
	// 127.0.0.1:9093, ...) to free ones, each always to the same one.
	ports map[string]string
	// freeAddr returns a free loopback address for ports.
	freeAddr func() string
}

// substitute adapts a block to the test, in three ways only:
//   - 127.0.0.1:9092, the README's broker address, becomes a free loopback
//     port, so the test neither needs 9092 free nor meets a broker of yours
//     (the weir commands, which default to that address, get the port in
//     WEIR_BROKERS); every other 127.0.0.1:PORT (the cluster quickstart's
//     listeners) becomes a free loopback port of its own, the same one
//     wherever it appears;
//   - `weir broker` without a --listen of its own gets --listen with that
//     address and --data-dir in the test's temporary directory (one with
//     --listen, a cluster node's, names its own relative --data-dir, and
//     its jobs block runs in a directory under the temporary one);
//   - a `go run ./examples/...` line gets its -state-dir (or the example's
//     default one) inside the test's temporary directory,
//   - any other line's relative --data-dir (weir user, weir acl, a weir
//     broker with --listener) is moved inside the test's temporary
//     directory,
//
// so that a run leaves nothing in the clone and never reads data an earlier
// run (or you) left there. Everything else runs as written.
func (e readmeEnv) substitute(text string) string {
	text = loopbackAddr.ReplaceAllStringFunc(text, func(a string) string {
		if a == "127.0.0.1:9092" {
			return e.addr
		}
		if _, ok := e.ports[a]; !ok {
			e.ports[a] = e.freeAddr()
		}
		return e.ports[a]
	})
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "weir broker") && !strings.Contains(l, "--listen"):
			lines[i] = "weir broker --listen " + e.addr + " --data-dir " + filepath.Join(e.tmp, "weir-data") + strings.TrimPrefix(l, "weir broker")
		case relDataDir.MatchString(l) && !strings.Contains(l, "--listen "):
			lines[i] = relDataDir.ReplaceAllString(l, "--data-dir "+filepath.Join(e.tmp, "$1"))
		case strings.HasPrefix(l, "go run ./examples/"):
			fields := strings.Fields(l)
			if j := slicesIndex(fields, "-state-dir"); j >= 0 && j+1 < len(fields) {
				lines[i] = strings.Replace(l, "-state-dir "+fields[j+1], "-state-dir "+filepath.Join(e.tmp, fields[j+1]), 1)
			} else {
				pkg := fields[2]
				lines[i] = strings.Replace(l, pkg, pkg+" -state-dir "+filepath.Join(e.tmp, filepath.Base(pkg)+"-data"), 1)
			}
		}
	}
	return strings.Join(lines, "\n")
}

// relDataDir matches a relative --data-dir flag and its value.
var relDataDir = regexp.MustCompile(`--data-dir ([^/\s][^\s]*)`)

// loopbackAddr matches a loopback address with its port in the README.
var loopbackAddr = regexp.MustCompile(`127\.0\.0\.1:[0-9]+\b`)

func slicesIndex(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// lockedBuffer collects a background process's output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
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

// bash returns a command running script with bash, in the repository, in its
// own process group so that a Ctrl-C can be sent to all it started (go run
// and the program it built), as a terminal does.
func (e readmeEnv) bash(ctx context.Context, script string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = e.repo
	if e.dir != "" {
		cmd.Dir = e.dir
	}
	cmd.Env = e.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Deadlines: generous, since a go run may compile on a loaded machine; each
// bounds a wait that ends as soon as its condition holds.
const (
	readmeReadyTimeout = 4 * time.Minute
	readmeStopTimeout  = 30 * time.Second
	readmeRunTimeout   = 4 * time.Minute
)

// background starts a block and waits until its output matches ready. It
// returns a stop function sending Ctrl-C and checking a clean exit.
func (e readmeEnv) background(t *testing.T, b readmeBlock, script, ready string) (stop func() error) {
	t.Helper()
	readyRE, err := regexp.Compile(ready)
	if err != nil {
		t.Fatalf("README.md:%d: %q: %v", b.line, ready, err)
	}
	out := &lockedBuffer{}
	cmd := e.bash(context.Background(), script)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("README.md:%d: %v", b.line, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop = func() error {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		select {
		case err := <-exited:
			if err != nil && !goRunInterrupted(script, err, out.String()) {
				return fmt.Errorf("README.md:%d: after Ctrl-C: %v\n%s", b.line, err, out)
			}
			return nil
		case <-time.After(readmeStopTimeout):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
			return fmt.Errorf("README.md:%d: still running %v after Ctrl-C\n%s", b.line, readmeStopTimeout, out)
		}
	}
	deadline := time.Now().Add(readmeReadyTimeout)
	for !readyRE.MatchString(out.String()) {
		select {
		case err := <-exited:
			t.Fatalf("README.md:%d: exited (%v) before printing %q:\n%s", b.line, err, ready, out)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = stop()
			t.Fatalf("README.md:%d: no %q within %v:\n%s", b.line, ready, readmeReadyTimeout, out)
		}
	}
	return stop
}

// goRunInterrupted reports the exit of a `go run` whose program stopped
// cleanly on Ctrl-C: the go command itself exits 1 when it was interrupted,
// whatever its program returned, and it says "exit status N" only when the
// program failed.
func goRunInterrupted(script string, err error, out string) bool {
	var ee *exec.ExitError
	return strings.HasPrefix(script, "go run ") && errors.As(err, &ee) && ee.ExitCode() == 1 &&
		!strings.Contains(out, "exit status ")
}

// run runs a block to its end; with until, again until its output matches
// until.
func (e readmeEnv) run(t *testing.T, b readmeBlock, script string) {
	t.Helper()
	var until *regexp.Regexp
	if u, ok := b.attrs["until"]; ok {
		var err error
		if until, err = regexp.Compile(u); err != nil {
			t.Fatalf("README.md:%d: until=%q: %v", b.line, u, err)
		}
	}
	deadline := time.Now().Add(readmeRunTimeout)
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		out, err := e.bash(ctx, script).CombinedOutput()
		cancel()
		if err == nil && (until == nil || until.Match(out)) {
			t.Logf("README.md:%d (attempt %d):\n%s", b.line, attempt, out)
			if x, ok := b.attrs["expect"]; ok {
				if re, err := regexp.Compile(x); err != nil {
					t.Fatalf("README.md:%d: expect=%q: %v", b.line, x, err)
				} else if !re.Match(out) {
					t.Fatalf("README.md:%d: output does not match %q", b.line, x)
				}
			}
			return
		}
		if until == nil {
			t.Fatalf("README.md:%d: %v\n%s", b.line, err, out)
		}
		if time.Now().After(deadline) {
			t.Fatalf("README.md:%d: output without %q after %v (%d attempts; last error %v):\n%s", b.line, until, readmeRunTimeout, attempt, err, out)
		}
		time.Sleep(500 * time.Millisecond) // between attempts of a polled command, not a synchronization
	}
}

// jobs runs a jobs block (see the marker's description at the top): it
// returns a stop function that Ctrl-Cs every job at once and checks that
// each exits 0.
func (e readmeEnv) jobs(t *testing.T, b readmeBlock, script string) (stop func() error) {
	t.Helper()
	dir := filepath.Join(e.tmp, fmt.Sprintf("jobs-line%d", b.line))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	e.dir = dir
	type job struct {
		line   string
		cmd    *exec.Cmd
		out    *lockedBuffer
		exited chan error
	}
	var jobs []*job
	var rest []string
	for _, l := range strings.Split(script, "\n") {
		cmdText, _, _ := strings.Cut(l, "#")
		cmdText = strings.TrimSpace(cmdText)
		switch {
		case cmdText == "":
		case strings.HasSuffix(cmdText, "&") && !strings.HasSuffix(cmdText, "&&"):
			j := &job{line: cmdText, out: &lockedBuffer{}, exited: make(chan error, 1)}
			j.cmd = e.bash(context.Background(), strings.TrimSpace(strings.TrimSuffix(cmdText, "&")))
			j.cmd.Stdout, j.cmd.Stderr = j.out, j.out
			if err := j.cmd.Start(); err != nil {
				t.Fatalf("README.md:%d: %s: %v", b.line, cmdText, err)
			}
			go func() { j.exited <- j.cmd.Wait() }()
			jobs = append(jobs, j)
		default:
			rest = append(rest, l)
		}
	}
	stop = func() error {
		for _, j := range jobs {
			_ = syscall.Kill(-j.cmd.Process.Pid, syscall.SIGINT)
		}
		var errs []error
		timeout := time.NewTimer(readmeStopTimeout)
		defer timeout.Stop()
		for _, j := range jobs {
			select {
			case err := <-j.exited:
				if err != nil {
					errs = append(errs, fmt.Errorf("README.md:%d: %s: after Ctrl-C: %v\n%s", b.line, j.line, err, j.out))
				}
			case <-timeout.C:
				for _, j := range jobs {
					_ = syscall.Kill(-j.cmd.Process.Pid, syscall.SIGKILL)
				}
				return fmt.Errorf("README.md:%d: %s: still running %v after Ctrl-C\n%s", b.line, j.line, readmeStopTimeout, j.out)
			}
		}
		return errors.Join(errs...)
	}
	if len(jobs) == 0 || len(rest) == 0 {
		_ = stop()
		t.Fatalf("README.md:%d: a jobs block needs lines ending in & and lines to run after them", b.line)
	}
	// A job that exits early fails the block with its output.
	t.Cleanup(func() {
		if t.Failed() {
			for _, j := range jobs {
				t.Logf("README.md:%d: %s:\n%s", b.line, j.line, j.out)
			}
		}
	})
	for i, l := range rest {
		lb := readmeBlock{line: b.line, kind: "run", attrs: map[string]string{}, text: l}
		if i == 0 {
			lb.attrs["until"] = b.attrs["jobs"]
		}
		e.run(t, lb, l)
	}
	return stop
}

// requires skips a block (loudly) whose requires="PROG" is not installed,
// or fails it when WEIR_REQUIRE_CLIENTS=1.
func requires(t *testing.T, b readmeBlock) {
	t.Helper()
	prog := b.attrs["requires"]
	if prog == "" {
		return
	}
	if _, err := exec.LookPath(prog); err != nil {
		msg := fmt.Sprintf("README.md:%d needs %s, which is not installed (%v)", b.line, prog, err)
		if os.Getenv("WEIR_REQUIRE_CLIENTS") == "1" {
			t.Fatalf("WEIR_REQUIRE_CLIENTS=1 but %s", msg)
		}
		t.Skip("SKIPPING: " + msg)
	}
}

// freeLoopbackAddr returns a loopback address with a port free a moment
// ago.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestREADME runs every shell block of README.md in order, as a reader
// pasting them would, with the weir binary built by the README's own
// `go install ./cmd/weir` (GOBIN points into the test's temporary
// directory, which is first on PATH). See substitute for the only changes
// made to the blocks.
func TestREADME(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("bash is needed to run the README's blocks:", err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("go is needed on PATH to run the README's blocks:", err)
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bin")
	e := readmeEnv{repo: repo, tmp: tmp, addr: freeLoopbackAddr(t), ports: map[string]string{},
		freeAddr: func() string { return freeLoopbackAddr(t) }}
	for _, kv := range os.Environ() {
		// WEIR_BROKERS, GOBIN and PATH are set below.
		if !strings.HasPrefix(kv, "WEIR_BROKERS=") && !strings.HasPrefix(kv, "GOBIN=") && !strings.HasPrefix(kv, "PATH=") {
			e.env = append(e.env, kv)
		}
	}
	// The weir commands' default broker, 127.0.0.1:9092, is the test's
	// broker too: the environment variable they read instead of it.
	e.env = append(e.env, "WEIR_BROKERS="+e.addr)
	e.env = append(e.env, "GOBIN="+bin, "PATH="+bin+string(os.PathListSeparator)+filepath.Dir(goBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Logf("broker address 127.0.0.1:9092 -> %s; data under %s", e.addr, tmp)

	blocks := parseREADME(t, filepath.Join(repo, "README.md"))
	if len(blocks) == 0 {
		t.Fatal("no shell block found in README.md")
	}
	// Background blocks stop in reverse order at the end, as a reader
	// closes terminals: the instances before the broker they use.
	var stops []func() error
	t.Cleanup(func() {
		for i := len(stops) - 1; i >= 0; i-- {
			if err := stops[i](); err != nil {
				t.Error(err)
			}
		}
	})
	for _, b := range blocks {
		script := e.substitute(b.text)
		name := fmt.Sprintf("line%d_%s", b.line, b.kind)
		ok := t.Run(name, func(t *testing.T) {
			switch b.kind {
			case "skip":
				t.Skipf("README.md:%d not run: %s", b.line, b.attrs["skip"])
			case "run":
				requires(t, b)
				e.run(t, b, script)
			case "jobs":
				requires(t, b)
				// The terminals of the blocks before close first: the
				// cluster's node 1 listens where the single broker did.
				for i := len(stops) - 1; i >= 0; i-- {
					if err := stops[i](); err != nil {
						t.Fatal(err)
					}
				}
				stops = nil
				stops = append(stops, e.jobs(t, b, script))
			case "background":
				stops = append(stops, e.background(t, b, script, b.attrs["background"]))
			case "until-ctrl-c":
				if err := e.background(t, b, script, b.attrs["until-ctrl-c"])(); err != nil {
					t.Fatal(err)
				}
			}
		})
		if !ok {
			t.Fatalf("README.md:%d failed: the blocks after it depend on it", b.line)
		}
	}
}

// TestREADMESubstitutions pins the test's changes to the README's blocks:
// the address, and the data directories moved to the temporary directory.
func TestREADMESubstitutions(t *testing.T) {
	e := readmeEnv{tmp: "/tmp/x", addr: "127.0.0.1:5555", ports: map[string]string{},
		freeAddr: func() string { return "127.0.0.1:6666" }}
	for in, want := range map[string]string{
		"weir broker          # listens on 127.0.0.1:9092":                                                     "weir broker --listen 127.0.0.1:5555 --data-dir /tmp/x/weir-data          # listens on 127.0.0.1:5555",
		"kcat -b 127.0.0.1:9092 -L":                                                                            "kcat -b 127.0.0.1:5555 -L",
		"go run ./examples/orders-per-minute   # the main job":                                                 "go run ./examples/orders-per-minute -state-dir /tmp/x/orders-per-minute-data   # the main job",
		"go run ./examples/orders-per-minute -brokers 127.0.0.1:9092 -state-dir instance-1-data":               "go run ./examples/orders-per-minute -brokers 127.0.0.1:5555 -state-dir /tmp/x/instance-1-data",
		"weir topic create orders --partitions 6":                                                              "weir topic create orders --partitions 6",
		"weir broker --node-id 1 --controller-voters 1@127.0.0.1:9093 --listen 127.0.0.1:9092 --data-dir d1 &": "weir broker --node-id 1 --controller-voters 1@127.0.0.1:6666 --listen 127.0.0.1:5555 --data-dir d1 &",
	} {
		if got := e.substitute(in); got != want {
			t.Errorf("substitute(%q)\n got %q\nwant %q", in, got, want)
		}
	}
}
