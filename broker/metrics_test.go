package broker

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// scrape fetches and parses b's /metrics.
func scrape(t *testing.T, b *Broker) map[string]map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + b.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	// family name -> rendered label set -> value
	out := map[string]map[string]float64{}
	for name, f := range fams {
		out[name] = map[string]float64{}
		for _, m := range f.GetMetric() {
			key := ""
			for _, l := range m.GetLabel() {
				key += l.GetName() + "=" + l.GetValue() + ","
			}
			switch {
			case m.Counter != nil:
				out[name][key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[name][key] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

func TestMetricsEndpointGroupLag(t *testing.T) {
	b := startBroker(t, Options{MetricsAddr: "127.0.0.1:0"})
	if b.MetricsAddr() == "" {
		t.Fatal("MetricsAddr is empty with Options.MetricsAddr set")
	}
	ctx := testCtx(t)
	c := newClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(c)
	const topic = "metered"
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	produced := []int{7, 3, 5} // records per partition
	total := 0
	for p, n := range produced {
		for i := range n {
			r := &kgo.Record{Topic: topic, Partition: int32(p), Value: []byte(fmt.Sprintf("p%d-%d", p, i))}
			if err := c.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		total += n
	}
	committed := []int64{4, 3} // partition 2 gets no commit
	offs := kadm.Offsets{}
	for p, o := range committed {
		offs.Add(kadm.Offset{Topic: topic, Partition: int32(p), At: o, LeaderEpoch: -1})
	}
	resp, err := adm.CommitOffsets(ctx, "lagging", offs)
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Error(); err != nil {
		t.Fatal(err)
	}

	m := scrape(t, b)
	type row struct{ Committed, End, Lag float64 }
	got := map[string]row{}
	for key, v := range m["weir_group_committed_offset"] {
		got[key] = row{Committed: v, End: m["weir_group_log_end_offset"][key], Lag: m["weir_group_lag"][key]}
	}
	want := map[string]row{}
	for p, o := range committed {
		key := "group=lagging,partition=" + strconv.Itoa(p) + ",topic=" + topic + ","
		want[key] = row{Committed: float64(o), End: float64(produced[p]), Lag: float64(int64(produced[p]) - o)}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("group lag metrics (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]float64{"": float64(total)}, m["weir_produced_records_total"]); diff != "" {
		t.Errorf("produced records (-want +got):\n%s", diff)
	}
	if n := m["weir_requests_total"]["api=Produce,"]; n != float64(total) {
		t.Errorf("weir_requests_total{api=Produce} = %v, want %d (one ProduceSync each)", n, total)
	}
	if n := m["weir_requests_total"]["api=OffsetCommit,"]; n != 1 {
		t.Errorf("weir_requests_total{api=OffsetCommit} = %v, want 1", n)
	}
}

func TestMetricsErrorCodesAndOff(t *testing.T) {
	off := startBroker(t, Options{})
	if a := off.MetricsAddr(); a != "" {
		t.Fatalf("MetricsAddr = %q without Options.MetricsAddr", a)
	}

	b := startBroker(t, Options{MetricsAddr: "127.0.0.1:0", DisableAutoCreateTopics: true})
	ctx := testCtx(t)
	c := newClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(c)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "one"); err != nil {
		t.Fatal(err)
	}
	if code := produceRaw(t, c, "one", rawBatch("x")); code != 0 {
		t.Fatalf("produce to partition 0: code %d", code)
	}
	// Partition 5 does not exist: answered UNKNOWN_TOPIC_OR_PARTITION.
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "one"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = 5
	rp.Records = rawBatch("x")
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	presp, err := req.RequestWith(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if code := presp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("produce to a missing partition: code %d", code)
	}
	m := scrape(t, b)
	if n := m["weir_response_errors_total"]["api=Produce,error=UNKNOWN_TOPIC_OR_PARTITION,"]; n != 1 {
		t.Errorf("UNKNOWN_TOPIC_OR_PARTITION produce errors = %v, want 1; all errors: %v", n, m["weir_response_errors_total"])
	}
	if n := m["weir_produced_bytes_total"][""]; n != float64(len(rawBatch("x"))) {
		t.Errorf("produced bytes = %v, want %d", n, len(rawBatch("x")))
	}
}

func TestMetricsServerStopsOnClose(t *testing.T) {
	b := startBroker(t, Options{MetricsAddr: "127.0.0.1:0"})
	scrape(t, b) // serving
	addr := b.MetricsAddr()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
		resp.Body.Close()
		t.Fatalf("metrics still served after Close: %s", resp.Status)
	}
}
