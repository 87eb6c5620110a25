package runtime_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/runtime"
	"github.com/weir-dev/weir/serde"
)

// A sink's custom partitioner places the application's output records.
func TestSinkPartitionerPlacesOutput(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond),
		kfake.SeedTopics(1, "in"), kfake.SeedTopics(3, "out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addrs := c.ListenAddrs()

	b := dsl.NewBuilder()
	dsl.Stream(b, "in", serde.String(), serde.Int64()).To("out",
		dsl.Partitioner(func(_ string, _ string, v int64, n int) int { return int(v) % n }))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("in"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := int64(0); i < 6; i++ {
		v, _ := serde.Int64().Serialize("in", i)
		recs = append(recs, &kgo.Record{Key: []byte("same-key"), Value: v})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	a, err := runtime.New(topo, runtime.ApplicationID("app"), runtime.Brokers(addrs...),
		runtime.StateDir(t.TempDir()), runtime.Logger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	got := map[int64]int32{}
	for _, r := range readAll(t, addrs, "out", 6) {
		v, err := serde.Int64().Deserialize("out", r.Value)
		if err != nil {
			t.Fatal(err)
		}
		got[v] = r.Partition
	}
	want := map[int64]int32{0: 0, 1: 1, 2: 2, 3: 0, 4: 1, 5: 2}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("partition per value (-want +got):\n%s", d)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
