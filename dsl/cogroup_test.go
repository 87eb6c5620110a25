package dsl_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams/streamstest"
)

type activity struct {
	Clicks, Purchases int64
	Spent             float64
}

func TestCogroup(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.DefaultSerde(b, serde.Msgpack[activity]())
	clicks := dsl.Stream(b, "clicks", serde.String(), serde.String()).GroupByKey()
	buys := dsl.Stream(b, "purchases", serde.String(), serde.Float64()).GroupByKey()
	c := dsl.Cogroup(clicks, func(_ string, _ string, a activity) activity { a.Clicks++; return a })
	c = dsl.CogroupWith(c, buys, func(_ string, amount float64, a activity) activity {
		a.Purchases++
		a.Spent += amount
		return a
	})
	c.Aggregate(func() activity { return activity{} }, dsl.StoreName("activity")).ToStream().To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]string{{"clicks", "purchases"}}, topo.CopartitionGroups()); diff != "" {
		t.Errorf("co-partition groups (-want +got):\n%s", diff)
	}
	d := streamstest.New(t, topo, streamstest.DefaultPartitions(2))
	ci := streamstest.CreateInputTopic(d, "clicks", serde.String(), serde.String())
	pi := streamstest.CreateInputTopic(d, "purchases", serde.String(), serde.Float64())
	ci.Pipe("ann", "/home")
	ci.Pipe("bob", "/home")
	pi.Pipe("ann", 9.5)
	ci.Pipe("ann", "/cart")
	pi.Pipe("ann", 0.5)
	got := streamstest.ReadKeyValuesToMap(streamstest.CreateOutputTopic(d, "out", serde.String(), serde.Msgpack[activity]()))
	want := map[string]activity{"ann": {Clicks: 2, Purchases: 2, Spent: 10}, "bob": {Clicks: 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
