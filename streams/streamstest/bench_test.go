package streamstest_test

import (
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams/streamstest"
)

// The benchmarks pipe records through the driver: serialize, route to the
// task, process, serialize the output. Each reports records/s; compare
// them with BenchmarkDriverPassThrough, the same path with no processing,
// measured in the same run.

const benchKeys = 10_000

func benchKeysList() []string {
	keys := make([]string, benchKeys)
	for i := range keys {
		keys[i] = "customer-" + strconv.Itoa(i)
	}
	return keys
}

// storeModes are the driver's two store back ends: the state package's
// in-memory stores with write-back cache and changelog, and plain maps.
var storeModes = []struct {
	name string
	opts []streamstest.Option
}{
	{"state", nil},
	{"map", []streamstest.Option{streamstest.MapStores()}},
}

func runBench(b *testing.B, build func(bl *dsl.Builder), pipe func(i int, in *streamstest.InputTopic[string, string], ts time.Time)) {
	for _, m := range storeModes {
		b.Run(m.name, func(b *testing.B) { runBenchMode(b, m.opts, build, pipe) })
	}
}

func runBenchMode(b *testing.B, opts []streamstest.Option, build func(bl *dsl.Builder), pipe func(i int, in *streamstest.InputTopic[string, string], ts time.Time)) {
	b.Helper()
	bl := dsl.NewBuilder()
	build(bl)
	topo, err := bl.Build()
	if err != nil {
		b.Fatal(err)
	}
	d := streamstest.New(b, topo, append([]streamstest.Option{streamstest.DiscardRecords(), streamstest.CommitEvery(1000)}, opts...)...)
	in := streamstest.CreateInputTopic(d, "in", serde.String(), serde.String())
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		// 1,000 records per second of event time: windows close as the
		// benchmark runs.
		pipe(i, in, time.UnixMilli(int64(i)))
	}
	reportRates(b, cpu0)
}

func BenchmarkDriverPassThrough(b *testing.B) {
	keys := benchKeysList()
	runBench(b, func(bl *dsl.Builder) {
		dsl.Stream(bl, "in", serde.String(), serde.String()).To("out")
	}, func(i int, in *streamstest.InputTopic[string, string], ts time.Time) {
		in.PipeAt(keys[i%benchKeys], "v", ts)
	})
}

func BenchmarkWindowedCount10kKeys(b *testing.B) {
	keys := benchKeysList()
	runBench(b, func(bl *dsl.Builder) {
		dsl.Stream(bl, "in", serde.String(), serde.String()).
			GroupByKey().
			WindowedBy(dsl.TumblingWindows(time.Minute).Grace(10 * time.Second)).
			Count().
			ToStream().
			To("out")
	}, func(i int, in *streamstest.InputTopic[string, string], ts time.Time) {
		in.PipeAt(keys[i%benchKeys], "v", ts)
	})
}

// BenchmarkCount10kKeys is the key-value peer of the windowed count: a
// count per key, its changes forwarded to a topic.
func BenchmarkCount10kKeys(b *testing.B) {
	keys := benchKeysList()
	runBench(b, func(bl *dsl.Builder) {
		dsl.Stream(bl, "in", serde.String(), serde.String()).
			GroupByKey().
			Count().
			ToStream().
			To("out")
	}, func(i int, in *streamstest.InputTopic[string, string], ts time.Time) {
		in.PipeAt(keys[i%benchKeys], "v", ts)
	})
}

func BenchmarkStreamStreamJoin(b *testing.B) {
	for _, m := range storeModes {
		b.Run(m.name, func(b *testing.B) { benchJoin(b, m.opts) })
	}
}

func benchJoin(b *testing.B, opts []streamstest.Option) {
	keys := benchKeysList()
	bl := dsl.NewBuilder()
	l := dsl.Stream(bl, "in", serde.String(), serde.String())
	r := dsl.Stream(bl, "right", serde.String(), serde.String())
	dsl.Join(l, r, func(a, b string) string { return a + b }, dsl.JoinWindowsOf(time.Second)).To("out")
	topo, err := bl.Build()
	if err != nil {
		b.Fatal(err)
	}
	d := streamstest.New(b, topo, append([]streamstest.Option{streamstest.DiscardRecords(), streamstest.CommitEvery(1000)}, opts...)...)
	li := streamstest.CreateInputTopic(d, "in", serde.String(), serde.String())
	ri := streamstest.CreateInputTopic(d, "right", serde.String(), serde.String())
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	// Alternate sides; each right record finds the left record of its key
	// piped just before it (one result per two records).
	for i := 0; i < b.N; i++ {
		k := keys[(i/2)%benchKeys]
		ts := time.UnixMilli(int64(i))
		if i%2 == 0 {
			li.PipeAt(k, "l", ts)
		} else {
			ri.PipeAt(k, "r", ts)
		}
	}
	reportRates(b, cpu0)
}

// cpuTime is the process's user and system CPU time: on a shared machine
// it measures a benchmark's cost better than the wall clock (it includes
// the garbage collector's work on other threads).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportRates reports records per wall-clock second and per CPU second of
// the process since cpu0.
func reportRates(b *testing.B, cpu0 time.Duration) {
	b.Helper()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "records/cpu-s")
	}
}
