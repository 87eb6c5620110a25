package group

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestLag(t *testing.T) {
	d := openTestDriver(t, &memLog{})
	for _, g := range []string{"a", "b"} {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version, req.Group, req.Generation = 8, g, -1
		req.Topics = []kmsg.OffsetCommitRequestTopic{
			{Topic: "orders", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 5}, {Partition: 1, Offset: 12}}},
			{Topic: "deleted", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}},
		}
		mustHandle[*kmsg.OffsetCommitResponse](t, d, req)
	}
	ends := func(topic string, p int32) (int64, bool) {
		if topic != "orders" {
			return 0, false
		}
		return 10, true
	}
	var got []Lag
	for _, l := range d.Lag(ends) {
		if l.Group == "a" {
			got = append(got, l)
		}
	}
	want := []Lag{
		{Committed: Committed{Group: "a", Topic: "orders", Partition: 0, Offset: 5}, LogEnd: 10, Lag: 5},
		{Committed: Committed{Group: "a", Topic: "orders", Partition: 1, Offset: 12}, LogEnd: 10, Lag: 0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lag (-want +got):\n%s", diff)
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewLagCollector(d, ends))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var series []string
	for _, mf := range mfs {
		if mf.GetName() != "weir_group_lag" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			series = append(series, fmt.Sprintf("%s %v", strings.Join(labels, ","), m.GetGauge().GetValue()))
		}
	}
	wantSeries := []string{
		"group=a,partition=0,topic=orders 5",
		"group=a,partition=1,topic=orders 0",
		"group=b,partition=0,topic=orders 5",
		"group=b,partition=1,topic=orders 0",
	}
	if diff := cmp.Diff(wantSeries, series); diff != "" {
		t.Errorf("weir_group_lag series (-want +got):\n%s", diff)
	}
}
