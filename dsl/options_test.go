package dsl_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams"
)

// An option an operation does not use is a build error naming the option,
// the operation and what it takes, not a silent no-op.
func TestOptionsAnOperationIgnoresAreRefused(t *testing.T) {
	keep := func(_, _ string) bool { return true }
	byKey := func(string, string, string, int) int { return 0 }
	fromValue := func(r *streams.RawRecord) time.Time { return r.Timestamp }
	cases := []struct {
		name  string
		build func(b *dsl.Builder)
		want  []string // in the error
	}{
		{"filter with store options", func(b *dsl.Builder) {
			dsl.Stream(b, "in", serde.String(), serde.String()).
				Filter(keep, dsl.StoreName("x"), dsl.WithPartitions(7), dsl.InMemory()).To("out")
		}, []string{"dsl.StoreName, dsl.InMemory, dsl.WithPartitions has no effect on Filter", "Filter takes dsl.Named"}},
		{"named node is blamed", func(b *dsl.Builder) {
			dsl.MapValues(dsl.Stream(b, "in", serde.String(), serde.String()),
				strings.ToUpper, dsl.Named("upper"), dsl.InMemory()).To("out")
		}, []string{`"upper"`, "dsl.InMemory has no effect on MapValues"}},
		{"partitioner on a repartition", func(b *dsl.Builder) {
			dsl.Stream(b, "in", serde.String(), serde.String()).
				Repartition(dsl.Partitioner(byKey)).To("out")
		}, []string{"dsl.Partitioner has no effect on Repartition"}},
		{"extractor on a sink", func(b *dsl.Builder) {
			dsl.Stream(b, "in", serde.String(), serde.String()).
				To("out", dsl.TimestampExtractor(fromValue))
		}, []string{"dsl.TimestampExtractor has no effect on To"}},
		{"key serde on a windowed count", func(b *dsl.Builder) {
			dsl.Stream(b, "in", serde.String(), serde.String()).GroupByKey().
				WindowedBy(dsl.TumblingWindows(time.Minute)).Count(dsl.KeySerde(serde.String()))
		}, []string{"dsl.KeySerde has no effect"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			c.build(b)
			_, err := b.Build()
			var te *streams.TopologyError
			if !errors.As(err, &te) {
				t.Fatalf("Build = %v, want a *streams.TopologyError", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// Every option used as documented builds.
func TestOptionsAnOperationTakesBuild(t *testing.T) {
	b := dsl.NewBuilder()
	fromValue := func(r *streams.RawRecord) time.Time { return r.Timestamp }
	byKey := func(string, string, int64, int) int { return 0 }
	in := dsl.Stream(b, "in", serde.String(), serde.String(), dsl.Named("src"), dsl.TimestampExtractor(fromValue))
	dsl.Map(in, func(k, v string) (string, string) { return v, k }, dsl.Named("swap"), dsl.KeySerde(serde.String()), dsl.ValueSerde(serde.String())).
		GroupByKey(dsl.Named("grp"), dsl.WithPartitions(3), dsl.KeySerde(serde.String()), dsl.ValueSerde(serde.String())).
		Count(dsl.Named("cnt"), dsl.StoreName("counts"), dsl.InMemory()).
		ToStream(dsl.Named("changes")).
		To("out", dsl.Named("sink"), dsl.Partitioner(byKey), dsl.KeySerde(serde.String()), dsl.ValueSerde(serde.Int64()))
	dsl.Table(b, "t", serde.String(), serde.String(), dsl.StoreName("t-store"), dsl.InMemory(), dsl.TimestampExtractor(fromValue)).
		Filter(func(_, _ string) bool { return true }, dsl.StoreName("t-filtered"))
	if _, err := b.Build(); err != nil {
		t.Fatal(err)
	}
}
