package runtime_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/runtime"
	"github.com/weir-dev/weir/serde"
)

// An application on an embedded Weir broker: New starts the broker (no
// Brokers option), the program creates the input topic and produces to it
// with any Kafka client, and Run processes until its context ends.
func Example() {
	b := dsl.NewBuilder()
	dsl.Stream(b, "orders", serde.String(), serde.String()).
		GroupByKey().
		Count(dsl.Named("orders-per-customer")).
		ToStream().
		To("counts")
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}

	dir, err := os.MkdirTemp("", "weir-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	app, err := runtime.New(topo,
		runtime.ApplicationID("orders-per-customer"),
		runtime.StateDir(dir), // default: os.TempDir()/weir-streams/orders-per-customer
		runtime.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer app.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(app.Brokers()...), kgo.DefaultProduceTopic("orders"),
		kgo.ConsumeTopics("counts"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cl.Close()
	// The input and output topics are the application's to create; Run
	// creates the internal ones (changelogs, repartition topics).
	created, err := kadm.NewClient(cl).CreateTopics(ctx, 3, -1, nil, "orders", "counts")
	if err == nil {
		err = created.Error()
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, customer := range []string{"alice", "bob", "alice"} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(customer), Value: []byte("an order")}).FirstErr(); err != nil {
			fmt.Println(err)
			return
		}
	}

	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- app.Run(runCtx); stop() }()

	// Read the counts until each customer's latest is there (the write-back
	// cache forwards each key's latest count once per commit, 1s).
	latest := map[string]int64{}
	for (latest["alice"] != 2 || latest["bob"] != 1) && runCtx.Err() == nil {
		cl.PollFetches(runCtx).EachRecord(func(r *kgo.Record) {
			n, err := serde.Int64().Deserialize(r.Topic, r.Value)
			if err == nil {
				latest[string(r.Key)] = n
			}
		})
	}
	stop()
	if err := <-ran; err != nil {
		fmt.Println(err)
	}
	for _, k := range slices.Sorted(maps.Keys(latest)) {
		fmt.Println(k, latest[k])
	}
	// Output:
	// alice 2
	// bob 1
}

// With no StateDir option an application keeps its state under the temp
// directory, in a directory named by its application id.
func ExampleDefaultStateDir() {
	b := dsl.NewBuilder()
	dsl.Stream(b, "orders", serde.String(), serde.String()).To("orders-copy")
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	app, err := runtime.New(topo, runtime.ApplicationID("orders"), runtime.Brokers("127.0.0.1:9092"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer app.Close()
	rel, err := filepath.Rel(os.TempDir(), app.StateDir())
	fmt.Println(filepath.ToSlash(rel), err, app.StateDir() == runtime.DefaultStateDir("orders"))
	// Output:
	// weir-streams/orders <nil> true
}
