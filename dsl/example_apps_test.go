package dsl_test

import (
	"fmt"
	"sort"
	"strings"

	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams/streamstest"
)

// A word count: split lines into words, regroup by word (through a
// repartition topic), count, and write every count's change.
func ExampleGroupBy() {
	b := dsl.NewBuilder()
	lines := dsl.Stream(b, "lines", serde.String(), serde.String())
	words := dsl.FlatMapValues(lines, func(line string) []string { return strings.Fields(strings.ToLower(line)) })
	dsl.GroupBy(words, func(_, word string) string { return word }, dsl.KeySerde(serde.String())).
		Count().ToStream().To("word-counts")
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}

	tb := &exampleTB{}
	defer tb.done()
	d := streamstest.New(tb, topo)
	in := streamstest.CreateInputTopic(d, "lines", serde.String(), serde.String())
	in.Pipe("", "the cat sat")
	in.Pipe("", "The dog sat")
	counts := streamstest.ReadKeyValuesToMap(streamstest.CreateOutputTopic(d, "word-counts", serde.String(), serde.Int64()))
	ws := make([]string, 0, len(counts))
	for w := range counts {
		ws = append(ws, w)
	}
	sort.Strings(ws)
	for _, w := range ws {
		fmt.Println(w, counts[w])
	}
	// Output:
	// cat 1
	// dog 1
	// sat 2
	// the 2
}

// A stream-table enrichment: each order gets its customer's current
// country from a table read from a compacted topic; an order of an
// unknown customer passes with none.
func ExampleLeftJoinTable() {
	b := dsl.NewBuilder()
	countries := dsl.Table(b, "customer-countries", serde.String(), serde.String())
	orders := dsl.Stream(b, "orders", serde.String(), serde.Msgpack[Order]())
	dsl.LeftJoinTable(orders, countries, func(o Order, country *string) string {
		if country == nil {
			return o.ID + " from ?"
		}
		return o.ID + " from " + *country
	}).To("orders-with-country", dsl.ValueSerde(serde.String()))
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}

	tb := &exampleTB{}
	defer tb.done()
	d := streamstest.New(tb, topo)
	customers := streamstest.CreateInputTopic(d, "customer-countries", serde.String(), serde.String())
	in := streamstest.CreateInputTopic(d, "orders", serde.String(), serde.Msgpack[Order]())
	customers.Pipe("alice", "NL")
	in.Pipe("alice", Order{ID: "o1"})
	in.Pipe("bob", Order{ID: "o2"})
	customers.Pipe("alice", "BE") // alice moved: later orders see it
	in.Pipe("alice", Order{ID: "o3"})
	for _, kv := range streamstest.CreateOutputTopic(d, "orders-with-country", serde.String(), serde.String()).ReadKeyValues() {
		fmt.Println(kv.Key, kv.Value)
	}
	// Output:
	// alice o1 from NL
	// bob o2 from ?
	// alice o3 from BE
}
