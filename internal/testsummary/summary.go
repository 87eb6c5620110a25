package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// event is one line of `go test -json` (see `go doc test2json`).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	// ImportPath names the package of a build-output event.
	ImportPath string
}

// Skip is one skipped test and the reason it logged.
type Skip struct {
	Package, Test, Reason string
}

// Result is what Filter saw.
type Result struct {
	// Skips lists skipped tests in the order they ended.
	Skips []Skip
	// Failed counts failed tests and packages.
	Failed int
	// FailedPackages counts failed packages (tests or build).
	FailedPackages int
}

// testKey names one test of one package.
type testKey struct{ pkg, test string }

// pending is the output of a test that has not ended, kept until its end
// says whether it is shown (failure) or dropped (pass, skip).
type pending struct {
	header string   // the "--- FAIL: ..." line
	lines  []string // the test's own log lines
	// failedSubtests are the reports of failed subtests, already indented.
	failedSubtests []string
}

// Filter copies a `go test -json` stream from r to w as a plain `go test`
// would print it: package result lines and build output as they come, a
// failed test's output (its subtests' nested under it) when it fails, and
// nothing of tests that pass or skip, and a closing "FAIL" line when a
// package failed. Lines that are not JSON are copied as they are.
func Filter(r io.Reader, w io.Writer) (Result, error) {
	var res Result
	tests := map[testKey]*pending{}
	get := func(k testKey) *pending {
		p := tests[k]
		if p == nil {
			p = &pending{}
			tests[k] = p
		}
		return p
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		switch {
		case e.Action == "build-output":
			fmt.Fprint(w, e.Output)
		case e.Test == "" && e.Action == "output":
			if e.Output == "PASS\n" || e.Output == "testing: warning: no tests to run\n" {
				continue // plain go test shows only the "ok" line (with "[no tests to run]")
			}
			if strings.HasPrefix(e.Output, "FAIL") {
				// A panic or timeout ends the package with tests that
				// never reported an end: show what they printed.
				for k, p := range tests {
					if k.pkg == e.Package && !strings.Contains(k.test, "/") {
						writeReport(w, k.test, p, "")
						delete(tests, k)
					}
				}
			}
			fmt.Fprint(w, e.Output)
		case e.Test == "" && e.Action == "fail":
			res.Failed++
			res.FailedPackages++
		case e.Test == "":
			// start, pass, skip of a package: its output line says it.
		case e.Action == "output":
			p := get(testKey{e.Package, e.Test})
			out := e.Output
			switch {
			case isFraming(out):
			case isResult(out):
				p.header = strings.TrimLeft(out, " ")
			default:
				p.lines = append(p.lines, out)
			}
		case e.Action == "skip":
			k := testKey{e.Package, e.Test}
			res.Skips = append(res.Skips, Skip{Package: e.Package, Test: e.Test, Reason: reason(tests[k])})
			delete(tests, k)
		case e.Action == "pass":
			delete(tests, testKey{e.Package, e.Test})
		case e.Action == "fail":
			res.Failed++
			k := testKey{e.Package, e.Test}
			p := get(k)
			delete(tests, k)
			if i := strings.LastIndex(e.Test, "/"); i >= 0 {
				var b strings.Builder
				writeReport(&b, e.Test, p, "    ")
				parent := get(testKey{e.Package, e.Test[:i]})
				parent.failedSubtests = append(parent.failedSubtests, b.String())
				continue
			}
			writeReport(w, e.Test, p, "")
		}
	}
	if res.FailedPackages > 0 {
		// Plain go test closes a run with a failed package with this
		// line; with -json it does not.
		fmt.Fprint(w, "FAIL\n")
	}
	return res, sc.Err()
}

// writeReport writes a failed test's report as plain go test does: its
// result line, then its log, then its failed subtests.
func writeReport(w io.Writer, test string, p *pending, indent string) {
	header := p.header
	if header == "" {
		header = "--- FAIL: " + test + " (did not finish)\n"
	}
	fmt.Fprint(w, indent+header)
	for _, l := range p.lines {
		fmt.Fprint(w, indent+l)
	}
	for _, s := range p.failedSubtests {
		for _, l := range strings.SplitAfter(s, "\n") {
			if l != "" {
				fmt.Fprint(w, indent+l)
			}
		}
	}
}

// isFraming reports the lines -v adds around tests, which plain go test
// does not print.
func isFraming(s string) bool {
	for _, p := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// isResult reports a test's own "--- PASS/FAIL/SKIP: Name (d)" line.
func isResult(s string) bool {
	s = strings.TrimLeft(s, " ")
	return strings.HasPrefix(s, "--- PASS: ") || strings.HasPrefix(s, "--- FAIL: ") || strings.HasPrefix(s, "--- SKIP: ")
}

// reason is what a skipped test logged, on one line.
func reason(p *pending) string {
	if p == nil {
		return ""
	}
	var parts []string
	for _, l := range p.lines {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	s := strings.Join(parts, " | ")
	if len(s) > 400 {
		s = s[:400] + "..."
	}
	return s
}

// WriteSkips prints the closing list of skipped tests; nothing when none
// was skipped.
func (r Result) WriteSkips(w io.Writer) {
	if len(r.Skips) == 0 {
		return
	}
	noun := "tests"
	if len(r.Skips) == 1 {
		noun = "test"
	}
	fmt.Fprintf(w, "SKIPPED %d %s (each gave its reason):\n", len(r.Skips), noun)
	for _, s := range r.Skips {
		fmt.Fprintf(w, "  %s %s: %s\n", s.Package, s.Test, s.Reason)
	}
}
