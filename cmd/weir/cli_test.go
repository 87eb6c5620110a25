package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/weir-dev/weir/broker"
	"github.com/weir-dev/weir/internal/cli"
)

// runWeir runs the weir command line in-process with stdin in and returns
// stdout; stderr goes to the test log.
func runWeir(t *testing.T, in string, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetArgs(args)
	root.SetIn(strings.NewReader(in))
	root.SetOut(&out)
	root.SetErr(io.Discard)
	err := root.Execute()
	return out.String(), err
}

func mustRun(t *testing.T, in string, args ...string) string {
	t.Helper()
	out, err := runWeir(t, in, args...)
	if err != nil {
		t.Fatalf("weir %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func fakeCluster(t *testing.T) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return strings.Join(c.ListenAddrs(), ",")
}

// weirCluster starts a Weir broker in-process on a free port.
func weirCluster(t *testing.T) string {
	t.Helper()
	br, err := broker.Open(broker.Options{Listen: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = br.Close() })
	return br.Addr()
}

// TestCommandsEndToEnd drives topic, produce and consume through their
// flags, as a user would, against an in-memory kfake cluster and against a
// Weir broker: the commands must work on any Kafka-compatible cluster.
func TestCommandsEndToEnd(t *testing.T) {
	for _, c := range []struct {
		name  string
		start func(*testing.T) string
	}{{"kfake", fakeCluster}, {"weir", weirCluster}} {
		t.Run(c.name, func(t *testing.T) { commandsEndToEnd(t, "--brokers="+c.start(t)) })
	}
}

func commandsEndToEnd(t *testing.T, b string) {

	if got := mustRun(t, "", "topic", "create", "events", "-p", "2", "-r", "1", "-c", "retention.ms=3600000", b); got != "Created topic events (2 partitions, replication factor 1).\n" {
		t.Fatalf("create: %q", got)
	}
	var listed []cli.ListedTopic
	if err := json.Unmarshal([]byte(mustRun(t, "", "topic", "list", "--json", b)), &listed); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]cli.ListedTopic{{Topic: "events", Partitions: 2, ReplicationFactor: 1}}, listed); d != "" {
		t.Fatalf("list (-want +got):\n%s", d)
	}
	mustRun(t, "", "topic", "alter", "events", "--partitions", "3", "--config", "cleanup.policy=compact", b)
	var described []cli.DescribedTopic
	if err := json.Unmarshal([]byte(mustRun(t, "", "topic", "describe", "events", "--json", b)), &described); err != nil {
		t.Fatal(err)
	}
	if len(described) != 1 || len(described[0].Partitions) != 3 || len(described[0].Configs) != 2 {
		t.Fatalf("describe after alter: %+v", described)
	}

	input := "k1\tfirst\nk2\tsecond\nk1\tthird\n"
	var summary cli.ProduceResult
	out := mustRun(t, input, "produce", "events", "--key-separator", `\t`, "-H", "origin=test", "-H", "origin=again", "--json", "--compression", "zstd", b)
	if err := json.Unmarshal([]byte(out), &summary); err != nil {
		t.Fatalf("produce --json output %q: %v", out, err)
	}
	if summary.Records != 3 {
		t.Fatalf("produce summary %+v", summary)
	}

	// --format with kcat-style escapes; sorted since partitions interleave.
	out = mustRun(t, "", "consume", "events", "--until-end", "--format", `%k\t%v\t%h\n`, b)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	want := []string{"k1\tfirst\torigin=test,origin=again", "k1\tthird\torigin=test,origin=again", "k2\tsecond\torigin=test,origin=again"}
	slices.Sort(lines)
	if d := cmp.Diff(want, lines); d != "" {
		t.Fatalf("consume --format (-want +got):\n%s", d)
	}

	// --json: one object per line.
	out = mustRun(t, "", "consume", "events", "-e", "--json", "-n", "2", b)
	sc := bufio.NewScanner(strings.NewReader(out))
	n := 0
	for sc.Scan() {
		var r cli.JSONRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if r.Topic != "events" || r.Key == nil || len(r.Headers) != 2 {
			t.Fatalf("record %+v", r)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("--count 2 printed %d records", n)
	}

	// Default human output mentions key and value.
	out = mustRun(t, "", "consume", "events", "-e", "--from", "-1", "-p", "0,1,2", b)
	if !strings.Contains(out, "key=k") || !strings.Contains(out, "h.origin=test") {
		t.Fatalf("human output: %q", out)
	}

	if got := mustRun(t, "", "topic", "delete", "events", b); got != "Deleted topic events.\n" {
		t.Fatalf("delete: %q", got)
	}
}

func TestBrokersFromEnvironment(t *testing.T) {
	t.Setenv("WEIR_BROKERS", fakeCluster(t))
	mustRun(t, "", "topic", "create", "viaenv", "-p", "1", "-r", "1")
	out := mustRun(t, "", "topic", "list")
	if !strings.Contains(out, "viaenv") {
		t.Fatalf("list via WEIR_BROKERS: %q", out)
	}
	cf := clientFlags{brokers: "a:1, b:2"}
	if d := cmp.Diff([]string{"a:1", "b:2"}, cf.brokerList()); d != "" {
		t.Fatalf("--brokers wins over the environment (-want +got):\n%s", d)
	}
	t.Setenv("WEIR_BROKERS", "")
	if d := cmp.Diff([]string{defaultBrokers}, (&clientFlags{}).brokerList()); d != "" {
		t.Fatalf("default (-want +got):\n%s", d)
	}
}

func TestFlagErrors(t *testing.T) {
	b := "--brokers=" + fakeCluster(t)
	for _, args := range [][]string{
		{"produce", "t", "--acks", "2", b},
		{"produce", "t", "--compression", "brotli", b},
		{"produce", "t", "--header", "novalue", b},
		{"produce", "t", "--key-separator", `\x`, b},
		{"consume", "t", "--from", "yesterday", b},
		{"consume", "t", "--json", "--format", "%v", b},
		{"consume", "t", "--format", "%q", b},
		{"consume", "t", "--count", "-1", b},
		{"topic", "create", "t", "--config", "broken", b},
		{"topic", "alter", "t", b},
	} {
		if _, err := runWeir(t, "", args...); err == nil {
			t.Errorf("weir %v succeeded", args)
		}
	}
}
