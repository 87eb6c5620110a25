package streams_test

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPublicPackagesStayThin checks that the packages an application
// imports to write a topology (streams, serde, state, dsl) pull in none of
// the engine's heavy dependencies: the store engine, its caches and its
// metrics live under internal/, and the DSL reaches the engine's stores
// only through interfaces.
func TestPublicPackagesStayThin(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("streams: the go command is needed to list dependencies: %v", err)
	}
	forbidden := []string{
		"github.com/cockroachdb/pebble",
		"github.com/dgraph-io/ristretto",
		"github.com/prometheus/",
		"github.com/weir-dev/weir/internal/stateengine",
	}
	for _, pkg := range []string{
		"github.com/weir-dev/weir/streams",
		"github.com/weir-dev/weir/serde",
		"github.com/weir-dev/weir/state",
		"github.com/weir-dev/weir/dsl",
	} {
		t.Run(pkg[strings.LastIndexByte(pkg, '/')+1:], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			// One line per dependency: its path, then the packages it imports.
			out, err := exec.CommandContext(ctx, goCmd, "list", "-deps",
				"-f", `{{.ImportPath}} {{join .Imports " "}}`, pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
			}
			var bad []string
			n := 0
			for line := range strings.Lines(string(out)) {
				fields := strings.Fields(line)
				if len(fields) == 0 {
					continue
				}
				n++
				for _, imp := range fields[1:] {
					if slices.ContainsFunc(forbidden, func(f string) bool { return strings.HasPrefix(imp, f) }) &&
						!slices.ContainsFunc(forbidden, func(f string) bool { return strings.HasPrefix(fields[0], f) }) {
						bad = append(bad, fields[0]+" imports "+imp)
					}
				}
			}
			if n < 2 {
				t.Fatalf("go list -deps %s listed %d packages; want it and its dependencies:\n%s", pkg, n, out)
			}
			if len(bad) > 0 {
				t.Errorf("%s must not depend on Pebble, ristretto, Prometheus or the store engine (%d packages in all):\n%s",
					pkg, n, strings.Join(bad, "\n"))
			}
		})
	}
}
