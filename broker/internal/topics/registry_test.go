package topics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
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
		{"huge", Spec{Partitions: MaxPartitions + 1}, ErrInvalidPartitions},
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
