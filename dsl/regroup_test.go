package dsl_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams/streamstest"
)

// Users per region from a table of user -> region: moving a user subtracts
// from the old region and adds to the new; deleting subtracts.
func TestTableRegroupWithAdderAndSubtractor(t *testing.T) {
	b := dsl.NewBuilder()
	users := dsl.Table(b, "users", serde.String(), serde.String())
	byRegion := dsl.GroupTable(users, func(user, region string) (string, string) { return region, user })
	byRegion.Count(dsl.StoreName("users-per-region")).ToStream().To("counts")
	byRegion.Reduce(func(agg, u string) string { return agg + "+" + u },
		func(agg, u string) string { return agg + "-" + u }).ToStream().To("log")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamstest.New(t, topo, streamstest.DefaultPartitions(3))
	in := streamstest.CreateInputTopic(d, "users", serde.String(), serde.String())
	counts := streamstest.CreateOutputTopic(d, "counts", serde.String(), serde.Int64())
	logs := streamstest.CreateOutputTopic(d, "log", serde.String(), serde.String())
	in.Pipe("ann", "eu")
	in.Pipe("bob", "eu")
	in.Pipe("cid", "us")
	in.Pipe("ann", "us")                                                      // moves
	if err := in.PipeRaw([]byte("bob"), nil, time.UnixMilli(5)); err != nil { // deleted
		t.Fatal(err)
	}
	want := []dsl.KeyValue[string, int64]{
		{Key: "eu", Value: 1}, {Key: "eu", Value: 2}, {Key: "us", Value: 1},
		{Key: "eu", Value: 1}, {Key: "us", Value: 2}, // ann moves: subtract, then add
		{Key: "eu", Value: 0},
	}
	if diff := cmp.Diff(want, counts.ReadKeyValues()); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"eu": "ann+bob-ann-bob", "us": "cid+ann"}, streamstest.ReadKeyValuesToMap(logs)); diff != "" {
		t.Errorf("reduce (-want +got):\n%s", diff)
	}
	v, ok, err := streamstest.GetKeyValueStore(d, "users-per-region", serde.String(), serde.Int64()).Get("us")
	if err != nil || !ok || v != 2 {
		t.Errorf("store us = %d, %v, %v", v, ok, err)
	}
}
