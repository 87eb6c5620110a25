package main

import (
	"bytes"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// durations matches the timings that differ between two runs.
var durations = regexp.MustCompile(`\([0-9.]+s\)|\t[0-9.]+s\n`)

// goTest runs go test on args and returns its stdout and stderr.
func goTest(t *testing.T, args ...string) (stdout, stderr []byte) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"test", "-count=1"}, args...)...)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	// The fixture fails on purpose: exit status 1 is expected.
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("go test %v: %v\n%s%s", args, err, out, errOut.Bytes())
	}
	return out, errOut.Bytes()
}

// TestFilterPrintsWhatPlainGoTestPrints runs the fixture package twice, with
// and without -json, and checks that Filter turns the first into the second
// (timings aside), and that it lists every skipped test with its reason.
func TestFilterPrintsWhatPlainGoTestPrints(t *testing.T) {
	plainOut, plainErr := goTest(t, "./testdata/fixture")
	jsonOut, jsonErr := goTest(t, "-json", "./testdata/fixture")

	var got bytes.Buffer
	res, err := Filter(bytes.NewReader(jsonOut), &got)
	if err != nil {
		t.Fatal(err)
	}
	// main passes go test's stderr through (with -json, the closing "FAIL"
	// goes there), so the user sees both streams, as with plain go test.
	plain := append(plainOut, plainErr...)
	got.Write(jsonErr)
	norm := func(b []byte) string { return durations.ReplaceAllString(string(b), "(T)") }
	if d := cmp.Diff(norm(plain), norm(got.Bytes())); d != "" {
		t.Errorf("filtered -json output differs from plain go test (-plain +filtered):\n%s", d)
	}
	const pkg = "github.com/weir-dev/weir/internal/testsummary/testdata/fixture"
	want := []Skip{
		{pkg, "TestSkip", "fixture_test.go:10: kcat is not installed: apt-get install kcat"},
		{pkg, "TestSub/skips", "fixture_test.go:18: sub skip"},
	}
	if d := cmp.Diff(want, res.Skips); d != "" {
		t.Errorf("skips (-want +got):\n%s", d)
	}
	// TestFail, TestSub/fails, TestSub, TestParallel/y, TestParallel and
	// the package.
	if res.Failed != 6 {
		t.Errorf("failed = %d, want 6", res.Failed)
	}

	var skips bytes.Buffer
	res.WriteSkips(&skips)
	wantSkips := "SKIPPED 2 tests (each gave its reason):\n" +
		"  " + pkg + " TestSkip: fixture_test.go:10: kcat is not installed: apt-get install kcat\n" +
		"  " + pkg + " TestSub/skips: fixture_test.go:18: sub skip\n"
	if d := cmp.Diff(wantSkips, skips.String()); d != "" {
		t.Errorf("skip list (-want +got):\n%s", d)
	}
}

// TestFilterShowsUnfinishedTests: a test that never reports its end (the
// package panicked or timed out while it ran) has its output shown before
// the package's FAIL line rather than lost.
func TestFilterShowsUnfinishedTests(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"run","Package":"p","Test":"TestHang"}`,
		`{"Action":"output","Package":"p","Test":"TestHang","Output":"=== RUN   TestHang\n"}`,
		`{"Action":"output","Package":"p","Test":"TestHang","Output":"    hang_test.go:9: waiting\n"}`,
		`{"Action":"output","Package":"p","Output":"panic: test timed out after 1s\n"}`,
		`{"Action":"output","Package":"p","Output":"FAIL\tp\t1.0s\n"}`,
		`{"Action":"fail","Package":"p"}`,
		`not json is copied`,
	}, "\n")
	var got bytes.Buffer
	res, err := Filter(strings.NewReader(in), &got)
	if err != nil {
		t.Fatal(err)
	}
	want := "panic: test timed out after 1s\n--- FAIL: TestHang (did not finish)\n    hang_test.go:9: waiting\nFAIL\tp\t1.0s\nnot json is copied\nFAIL\n"
	if d := cmp.Diff(want, got.String()); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if res.Failed != 1 {
		t.Errorf("failed = %d, want 1", res.Failed)
	}
}

// TestFilterNoTestsToRun: a package where -run matched nothing shows only its
// "ok ... [no tests to run]" line, as with plain go test.
func TestFilterNoTestsToRun(t *testing.T) {
	in := `{"Action":"start","Package":"p"}
{"Action":"output","Package":"p","Output":"testing: warning: no tests to run\n"}
{"Action":"output","Package":"p","Output":"PASS\n"}
{"Action":"output","Package":"p","Output":"ok  \tp\t0.005s [no tests to run]\n"}
{"Action":"pass","Package":"p"}
`
	var got bytes.Buffer
	if _, err := Filter(strings.NewReader(in), &got); err != nil {
		t.Fatal(err)
	}
	if want := "ok  \tp\t0.005s [no tests to run]\n"; got.String() != want {
		t.Errorf("got %q, want %q", got.String(), want)
	}
}
