package runtime_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/runtime"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams/streamstest"
)

// readmeSnippet's body, between the two marker comments, is the snippet of
// README.md's "Writing a topology" section, indented one tab: the compiler
// checks it here and TestREADMESnippet checks that the README holds it as
// it is. It is compiled, not called (its production half needs a broker).
func readmeSnippet(t *testing.T, ctx context.Context) error {
	type Order struct {
		ID     string
		Amount int64
	}
	// README "Writing a topology" begins.
	// Order is your value type, t a test's *testing.T, ctx a context.Context.
	b := dsl.NewBuilder()
	dsl.Stream(b, "orders", serde.String(), serde.Msgpack[Order]()).
		GroupByKey().
		WindowedBy(dsl.TumblingWindows(time.Minute).Grace(10 * time.Second)).
		Count(dsl.Named("orders-per-minute")).
		Suppress(dsl.UntilWindowCloses()). // one final count per window
		ToStream().
		To("order-counts-per-minute")
	topo, err := b.Build()
	if err != nil {
		return err
	}

	// in a test, no broker:
	d := streamstest.New(t, topo)
	in := streamstest.CreateInputTopic(d, "orders", serde.String(), serde.Msgpack[Order]())
	in.PipeAt("customer-7", Order{ID: "o1", Amount: 1250}, time.Now())

	// in production, on any Kafka-compatible cluster (without Brokers, on
	// an embedded Weir broker); state under os.TempDir()/weir-streams/orders
	// unless runtime.StateDir names another directory:
	app, err := runtime.New(topo, runtime.ApplicationID("orders"), runtime.Brokers("127.0.0.1:9092"))
	if err != nil {
		return err
	}
	defer app.Close()
	return app.Run(ctx)
	// README "Writing a topology" ends.
}

var _ = readmeSnippet // compiled, not run

// TestREADMESnippet checks that README.md's "Writing a topology" snippet is
// readmeSnippet's body, so that the README shows code that compiles.
func TestREADMESnippet(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	got, err := goBlockAfter(string(readme), "## Writing a topology")
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	src, err := os.ReadFile("readme_test.go")
	if err != nil {
		t.Fatal(err)
	}
	want, err := between(string(src), "\t// README \"Writing a topology\" begins.\n", "\t// README \"Writing a topology\" ends.\n")
	if err != nil {
		t.Fatalf("readme_test.go: %v", err)
	}
	var lines []string
	for _, l := range strings.SplitAfter(want, "\n") {
		lines = append(lines, strings.TrimPrefix(l, "\t"))
	}
	want = strings.Join(lines, "")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("README.md's \"Writing a topology\" snippet differs from readmeSnippet's body in runtime/readme_test.go (-compiled +README):\n%s", diff)
	}
}

// goBlockAfter returns the contents of the first ```go block after the
// line heading.
func goBlockAfter(md, heading string) (string, error) {
	i := strings.Index(md, "\n"+heading+"\n")
	if i < 0 {
		return "", &snippetError{"no heading " + heading}
	}
	return between(md[i:], "```go\n", "```\n")
}

// between returns the text of s after the first begin and before the next
// end.
func between(s, begin, end string) (string, error) {
	i := strings.Index(s, begin)
	if i < 0 {
		return "", &snippetError{"no " + strings.TrimSpace(begin)}
	}
	s = s[i+len(begin):]
	j := strings.Index(s, end)
	if j < 0 {
		return "", &snippetError{"no " + strings.TrimSpace(end) + " after " + strings.TrimSpace(begin)}
	}
	return s[:j], nil
}

type snippetError struct{ msg string }

func (e *snippetError) Error() string { return "runtime readme test: " + e.msg }
