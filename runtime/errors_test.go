package runtime_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
	"github.com/weir-dev/weir/runtime"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams"
)

func runToError(t *testing.T, topo *streams.Topology, addrs []string, extra ...runtime.Option) error {
	t.Helper()
	opts := append([]runtime.Option{
		runtime.ApplicationID("app"), runtime.Brokers(addrs...), runtime.StateDir(t.TempDir()),
		runtime.Logger(quietLogger()), runtime.SessionTimeout(3 * time.Second),
	}, extra...)
	a, err := runtime.New(topo, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = a.Run(ctx)
	if ctx.Err() != nil {
		t.Fatal("Run did not fail")
	}
	return err
}

func TestRefusesMissingInputTopic(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	topo, err := orders.Topology(false)
	if err != nil {
		t.Fatal(err)
	}
	err = runToError(t, topo, c.ListenAddrs())
	if !runtime.IsTopicSetup(err) || !strings.Contains(err.Error(), `input topic "orders" does not exist: create it first`) {
		t.Fatalf("got %v, want a topic setup error naming the missing input", err)
	}
}

func TestRefusesWrongChangelogPartitionCount(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, orders.InputTopic),
		kfake.SeedTopics(3, "app-orders-per-minute-store-changelog"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	topo, err := orders.Topology(false)
	if err != nil {
		t.Fatal(err)
	}
	err = runToError(t, topo, c.ListenAddrs())
	want := `changelog topic "app-orders-per-minute-store-changelog" has 3 partitions but the topology needs 6: delete it`
	if !runtime.IsTopicSetup(err) || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want a topic setup error containing %q", err, want)
	}
}

func TestRefusesJoinOfTopicsNotCopartitioned(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "left"), kfake.SeedTopics(2, "right"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	b := dsl.NewBuilder()
	l := dsl.Stream(b, "left", serde.String(), serde.String())
	r := dsl.Stream(b, "right", serde.String(), serde.String())
	dsl.Join(l, r, func(a, b string) string { return a + b }, dsl.JoinWindowsOf(time.Minute)).To("joined")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	err = runToError(t, topo, c.ListenAddrs())
	if !runtime.IsTopicSetup(err) || !strings.Contains(err.Error(), "equal partition counts") {
		t.Fatalf("got %v, want a co-partitioning error", err)
	}
}

// doubler reads int64 values from "in" and writes them doubled to "out".
func doubler(t *testing.T) *streams.Topology {
	t.Helper()
	b := dsl.NewBuilder()
	in := dsl.Stream(b, "in", serde.String(), serde.Int64())
	dsl.MapValues(in, func(v int64) int64 { return 2 * v }).To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// badThenGood writes a value that is not an int64, then 1, 2, 3.
func badThenGood(t *testing.T, addrs []string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("in"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := []*kgo.Record{{Key: []byte("k"), Value: []byte("not a number")}}
	for i := int64(1); i <= 3; i++ {
		v, _ := serde.Int64().Serialize("in", i)
		recs = append(recs, &kgo.Record{Key: []byte("k"), Value: v})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func deserCluster(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond),
		kfake.SeedTopics(1, "in", "out", "app-dead-letter"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func TestDeserializationFailNamesTheRecord(t *testing.T) {
	addrs := deserCluster(t)
	badThenGood(t, addrs)
	err := runToError(t, doubler(t), addrs)
	if err == nil || !strings.Contains(err.Error(), "record in/0@0") {
		t.Fatalf("got %v, want an error naming topic in, partition 0, offset 0", err)
	}
}

// readAll reads n records of topic from the start.
func readAll(t *testing.T, addrs []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s", len(out), n, topic)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

func TestDeserializationSkipAndDeadLetter(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    runtime.DeserializationErrorHandler
	}{{"skip", runtime.SkipOnDeserializationError}, {"dead-letter", runtime.DeadLetterOnDeserializationError}} {
		t.Run(tc.name, func(t *testing.T) {
			addrs := deserCluster(t)
			badThenGood(t, addrs)
			a, err := runtime.New(doubler(t), runtime.ApplicationID("app"), runtime.Brokers(addrs...),
				runtime.StateDir(t.TempDir()), runtime.Logger(quietLogger()), runtime.OnDeserializationError(tc.h))
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- a.Run(context.Background()) }()
			var got []int64
			for _, r := range readAll(t, addrs, "out", 3) {
				v, err := serde.Int64().Deserialize("out", r.Value)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, v)
			}
			if fmt.Sprint(got) != "[2 4 6]" {
				t.Errorf("output %v, want [2 4 6]", got)
			}
			if n := metricSum(t, a, "weir_deserialization_errors_total"); n != 1 {
				t.Errorf("weir_deserialization_errors_total = %v, want 1", n)
			}
			if tc.h == runtime.DeadLetterOnDeserializationError {
				dl := readAll(t, addrs, "app-dead-letter", 1)[0]
				hs := map[string]string{}
				for _, h := range dl.Headers {
					hs[h.Key] = string(h.Value)
				}
				if string(dl.Value) != "not a number" || hs["weir.topic"] != "in" || hs["weir.partition"] != "0" || hs["weir.offset"] != "0" || hs["weir.error"] == "" {
					t.Errorf("dead letter %q with headers %v", dl.Value, hs)
				}
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

func metricSum(t *testing.T, a *runtime.Application, name string) float64 {
	t.Helper()
	fams, err := a.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			n += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return n
}

// TestMetricsAndTopologyServed checks the HTTP endpoint of MetricsAddr.
func TestMetricsAndTopologyServed(t *testing.T) {
	addrs := deserCluster(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	a, err := runtime.New(doubler(t), runtime.ApplicationID("app"), runtime.Brokers(addrs...),
		runtime.StateDir(t.TempDir()), runtime.Logger(quietLogger()), runtime.MetricsAddr(addr))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	get := func(path string) string {
		deadline := time.Now().Add(20 * time.Second)
		for {
			resp, err := http.Get("http://" + addr + path)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return string(b)
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: %v", path, err)
			}
			time.Sleep(20 * time.Millisecond) // polling interval with a deadline
		}
	}
	if s := get("/topology"); s != doubler(t).Describe() || !strings.Contains(s, "Sub-topology 0") || !strings.Contains(s, "(topics: in)") {
		t.Errorf("/topology:\n%s", s)
	}
	if s := get("/metrics"); !strings.Contains(s, "weir_commit_latency_seconds") {
		t.Errorf("/metrics lacks weir_commit_latency_seconds:\n%s", s)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
