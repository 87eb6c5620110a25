package topics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func openTest(t *testing.T, dir string) *Registry {
	t.Helper()
	r, err := Open(Options{Dir: dir, OpenLog: OpenMemLog, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Defaults: Defaults{"retention.ms": "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func TestRegistryPersistence(t *testing.T) {
	dir := t.TempDir()
	r := openTest(t, dir)
	ctx := context.Background()
	if _, err := r.Create(ctx, "a", Spec{Partitions: 3, Configs: map[string]string{"cleanup.policy": "compact"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Create(ctx, "a", Spec{Partitions: 1}); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	if _, err := r.Create(ctx, "b", Spec{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	if err := r.AddPartitions("b", 2); err != nil {
		t.Fatal(err)
	}
	if err := r.SetConfigs("b", map[string]string{"segment.ms": "5000"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete("a"); err != nil {
		t.Fatal(err)
	}
	idA, _ := r.Get("b")
	pid1, _ := r.NextProducerID()
	_ = r.Close()

	// Debris of an interrupted creation: a directory without topic.json.
	if err := os.MkdirAll(filepath.Join(dir, "topics", "half", "0"), 0o755); err != nil {
		t.Fatal(err)
	}
	r2 := openTest(t, dir)
	type view struct {
		Names      []string
		Partitions int32
		Configs    map[string]string
		Retention  int64
	}
	var names []string
	for _, tp := range r2.List() {
		names = append(names, tp.Name())
	}
	b, _ := r2.Get("b")
	got := view{names, b.NumPartitions(), b.Configs(), b.LogConfig().RetentionMS}
	want := view{[]string{"b"}, 2, map[string]string{"segment.ms": "5000"}, 1000}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("after reopen (-want +got):\n%s", diff)
	}
	if b.ID() != idA.ID() {
		t.Fatalf("topic id changed across reopen")
	}
	if _, err := os.Stat(filepath.Join(dir, "topics", "half")); !os.IsNotExist(err) {
		t.Fatalf("debris of an interrupted create survived: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "topics", "a")); !os.IsNotExist(err) {
		t.Fatalf("deleted topic's data survived: %v", err)
	}
	pid2, _ := r2.NextProducerID()
	if pid2 <= pid1 {
		t.Fatalf("producer id %d handed out again after restart (was %d)", pid2, pid1)
	}
}

func TestRegistryRefusesBadInput(t *testing.T) {
	r := openTest(t, t.TempDir())
	ctx := context.Background()
	cases := []struct {
		name string
		spec Spec
		want error
	}{
		{"bad/name", Spec{Partitions: 1}, ErrInvalidTopic},
		{"..", Spec{Partitions: 1}, ErrInvalidTopic},
		{"zero", Spec{Partitions: 0}, ErrInvalidPartitions},
		{"huge", Spec{Partitions: DefaultMaxPartitionsPerTopic + 1}, ErrInvalidPartitions},
		{"cfg", Spec{Partitions: 1, Configs: map[string]string{"retention.ms": "soon"}}, ErrInvalidConfig},
		{"cfg2", Spec{Partitions: 1, Configs: map[string]string{"no.such": "1"}}, ErrInvalidConfig},
		{"cmp", Spec{Partitions: 1, Configs: map[string]string{"compression.type": "gzip"}}, ErrInvalidConfig},
	}
	for _, c := range cases {
		if _, err := r.Create(ctx, c.name, c.spec); !errors.Is(err, c.want) {
			t.Errorf("create %q %+v: %v, want %v", c.name, c.spec, err, c.want)
		}
	}
	if len(r.List()) != 0 {
		t.Fatalf("refused creates left topics: %d", len(r.List()))
	}
	if _, err := r.Create(ctx, "t", Spec{Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	if err := r.AddPartitions("t", 2); !errors.Is(err, ErrInvalidPartitions) {
		t.Fatalf("shrink/equal: %v", err)
	}
}

func TestRegistryPartitionLimits(t *testing.T) {
	ctx := context.Background()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := Open(Options{Dir: t.TempDir(), OpenLog: OpenMemLog, Logger: discard,
		MaxPartitionsPerTopic: 4, MaxPartitionsPerBroker: 6})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	refused := func(what string, err error, msg string) {
		t.Helper()
		if !errors.Is(err, ErrInvalidPartitions) || !strings.Contains(err.Error(), msg) {
			t.Fatalf("%s: %v, want ErrInvalidPartitions saying %q", what, err, msg)
		}
	}
	_, err = r.Create(ctx, "five", Spec{Partitions: 5})
	refused("5 partitions", err, `5 partitions requested for "five", at most 4 per topic`)
	refused("check 5 partitions", r.CheckSpec("five", Spec{Partitions: 5}), "at most 4 per topic")
	_, err = r.Create(ctx, "huge", Spec{Partitions: 1_000_000})
	refused("a million partitions", err, "at most 4 per topic")
	if _, err := r.Create(ctx, "four", Spec{Partitions: 4}); err != nil {
		t.Fatal(err)
	}
	_, err = r.Create(ctx, "three", Spec{Partitions: 3})
	refused("past the broker's limit", err, "adding 3 would make 7 partitions on this broker, at most 6")
	refused("check past the broker's limit", r.CheckSpec("three", Spec{Partitions: 3}), "at most 6")
	refused("grow past the topic limit", r.AddPartitions("four", 5), "at most 4 per topic")
	if _, err := r.Create(ctx, "two", Spec{Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Ensure(ctx, "auto", Spec{Partitions: 1}); !errors.Is(err, ErrInvalidPartitions) {
		t.Fatalf("auto-create past the broker's limit: %v", err)
	}
	if got := len(r.List()); got != 2 {
		t.Fatalf("%d topics, want 2", got)
	}
}

func TestRegistryOptionsValidate(t *testing.T) {
	o := Options{Dir: "d", OpenLog: OpenMemLog, MaxPartitionsPerTopic: 10, MaxPartitionsPerBroker: -1}
	o.EnsureDefaults()
	err := o.Validate()
	for _, want := range []string{"MaxPartitionsPerBroker -1 is below 1", "MaxPartitionsPerTopic 10 outside 1..MaxPartitionsPerBroker (-1)"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want it to say %q", err, want)
		}
	}
	o = Options{Dir: "d", OpenLog: OpenMemLog}
	o.EnsureDefaults()
	if o.MaxPartitionsPerTopic != DefaultMaxPartitionsPerTopic || o.MaxPartitionsPerBroker != DefaultMaxPartitionsPerBroker {
		t.Fatalf("defaults %d and %d", o.MaxPartitionsPerTopic, o.MaxPartitionsPerBroker)
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
}

// Kafka refuses a topic whose name differs from an existing one's only in
// '.' against '_': their metric names would be the same.
func TestRegistryNameCollision(t *testing.T) {
	r := openTest(t, t.TempDir())
	ctx := context.Background()
	if _, err := r.Create(ctx, "a.b", Spec{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Create(ctx, "x_y.z", Spec{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, existing string }{{"a_b", "a.b"}, {"x.y_z", "x_y.z"}, {"x_y_z", "x_y.z"}, {"x.y.z", "x_y.z"}} {
		_, err := r.Create(ctx, c.name, Spec{Partitions: 1})
		if !errors.Is(err, ErrInvalidTopic) || !strings.Contains(err.Error(), `existing topic "`+c.existing+`"`) {
			t.Errorf("create %q beside %q: %v, want ErrInvalidTopic naming %q", c.name, c.existing, err, c.existing)
		}
		if err := r.CheckSpec(c.name, Spec{Partitions: 1}); !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("check %q beside %q: %v, want ErrInvalidTopic", c.name, c.existing, err)
		}
		if _, err := r.Ensure(ctx, c.name, Spec{Partitions: 1}); !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("ensure %q beside %q: %v, want ErrInvalidTopic", c.name, c.existing, err)
		}
	}
	// The topic itself is no collision, and names that differ otherwise
	// are none either.
	if _, err := r.Ensure(ctx, "a.b", Spec{Partitions: 1}); err != nil {
		t.Fatalf("ensure existing a.b: %v", err)
	}
	if _, err := r.Create(ctx, "a.bc", Spec{Partitions: 1}); err != nil {
		t.Fatalf("a.bc: %v", err)
	}
	// Once a.b is gone, a_b may be created.
	if err := r.Delete("a.b"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Create(ctx, "a_b", Spec{Partitions: 1}); err != nil {
		t.Fatalf("a_b after a.b was deleted: %v", err)
	}
	var names []string
	for _, tp := range r.List() {
		names = append(names, tp.Name())
	}
	if diff := cmp.Diff([]string{"a.bc", "a_b", "x_y.z"}, names); diff != "" {
		t.Fatalf("topics (-want +got):\n%s", diff)
	}
}
