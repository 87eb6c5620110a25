package cli

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParsePlan: kafka-reassign-partitions' JSON is read as it is written,
// and every bad plan is refused with an error naming the entry at fault.
func TestParsePlan(t *testing.T) {
	p, err := ParsePlan(strings.NewReader(`{"version":1,"partitions":[
		{"topic":"a","partition":0,"replicas":[1,2,3],"log_dirs":["any","any","any"]},
		{"topic":"b","partition":2,"replicas":[3]}]}`), "plan.json")
	if err != nil {
		t.Fatal(err)
	}
	want := Plan{Version: 1, Partitions: []PlanPartition{
		{Topic: "a", Partition: 0, Replicas: []int32{1, 2, 3}, LogDirs: []string{"any", "any", "any"}},
		{Topic: "b", Partition: 2, Replicas: []int32{3}},
	}}
	if d := cmp.Diff(want, p); d != "" {
		t.Fatalf("plan (-want +got):\n%s", d)
	}
	if got, want := (Plan{Version: 1, Partitions: want.Partitions[1:]}).JSON(), `{"version":1,"partitions":[{"topic":"b","partition":2,"replicas":[3]}]}`; got != want {
		t.Fatalf("JSON %s, want %s", got, want)
	}
	for _, c := range []struct{ in, want string }{
		{`nope`, "plan.json: not a reassignment plan"},
		{`{"version":1,"partitions":[{"topic":"a","partition":0,"replica":[1]}]}`, `unknown field "replica"`},
		{`{"version":2,"partitions":[{"topic":"a","partition":0,"replicas":[1]}]}`, "version 2, want 1"},
		{`{"version":1,"partitions":[]}`, "no partitions"},
		{`{"version":1,"partitions":[{"partition":0,"replicas":[1]}]}`, `partitions[0] (topic "" partition 0): no topic`},
		{`{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[1]},{"topic":"a","partition":-1,"replicas":[1]}]}`, `partitions[1] (topic "a" partition -1): negative partition`},
		{`{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[]}]}`, `partitions[0] (topic "a" partition 0): no replicas`},
		{`{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[1,-2]}]}`, "replica -2 is not a broker id"},
		{`{"version":1,"partitions":[{"topic":"a","partition":3,"replicas":[1,2,1]}]}`, `partitions[0] (topic "a" partition 3): broker 1 listed twice in replicas [1 2 1]`},
		{`{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[1,2],"log_dirs":["any"]}]}`, "1 log_dirs for 2 replicas"},
		{`{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[1],"log_dirs":["/d"]}]}`, `log_dirs "/d": only "any" is supported`},
		{`{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[1]},{"topic":"a","partition":0,"replicas":[2]}]}`, `partitions[1] (topic "a" partition 0): the same partition as partitions[0]`},
		{`{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[1]}]} {}`, "more than one JSON document"},
	} {
		_, err := ParsePlan(strings.NewReader(c.in), "plan.json")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParsePlan(%s): %v, want an error saying %s", c.in, err, c.want)
		}
	}
}
