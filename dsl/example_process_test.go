package dsl_test

import (
	"fmt"

	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
	"github.com/weir-dev/weir/streams/streamstest"
)

// dedupe passes each order id's first record and drops the repeats, with a
// typed key-value store of the ids seen.
type dedupe struct {
	seen dsl.KeyValueHandle[string, int64]
	ctx  streams.ProcessorContext[string, string]
	ids  *state.TypedKeyValue[string, int64]
}

func (p *dedupe) Init(ctx streams.ProcessorContext[string, string]) (err error) {
	p.ctx = ctx
	p.ids, err = p.seen.Open(ctx)
	return err
}

func (p *dedupe) Process(r streams.Record[string, string]) error {
	if _, dup, err := p.ids.Get(r.Value); dup || err != nil {
		return err
	}
	if err := p.ids.Put(r.Value, r.Timestamp.UnixMilli()); err != nil {
		return err
	}
	return p.ctx.Forward(r)
}

func (p *dedupe) Close() error { return nil }

// A deduplication with the Processor API: a typed store declared once,
// connected to the processor by its handle and opened typed in Init.
func ExampleProcess() {
	b := dsl.NewBuilder()
	seen := dsl.KeyValueStore(b, "seen-order-ids", serde.String(), serde.Int64())
	orders := dsl.Stream(b, "orders", serde.String(), serde.String())
	dsl.Process(orders, func() streams.Processor[string, string, string, string] {
		return &dedupe{seen: seen}
	}, dsl.Stores(seen)).To("unique-orders")
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}

	tb := &exampleTB{}
	defer tb.done()
	d := streamstest.New(tb, topo)
	in := streamstest.CreateInputTopic(d, "orders", serde.String(), serde.String())
	for _, id := range []string{"o1", "o2", "o1", "o3", "o2"} {
		in.Pipe("alice", id)
	}
	for _, kv := range streamstest.CreateOutputTopic(d, "unique-orders", serde.String(), serde.String()).ReadKeyValues() {
		fmt.Println(kv.Key, kv.Value)
	}
	// Output:
	// alice o1
	// alice o2
	// alice o3
}
