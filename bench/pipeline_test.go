package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
)

// TestPipelineWorkloadSmall runs the pipeline workload end to end on a tiny
// input, Weir runtime and baseline, count and join, so that the benchmark
// cannot rot unnoticed. The workload itself fails unless every output is
// exactly what the input implies.
func TestPipelineWorkloadSmall(t *testing.T) {
	cfg := pipelineConfig{
		Orders: 3000, Customers: 40, Partitions: 3, Span: 5 * time.Minute,
		OutOfOrder: 0.1, Lateness: 5 * time.Second, JoinOrders: 1000,
		Commit: 100 * time.Millisecond, Fsync: "group", DataDir: t.TempDir(),
		Targets: []string{"weir", "baseline"}, Timeout: 2 * time.Minute, Seed: 7,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := runPipeline(ctx, cfg, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 {
		t.Fatalf("got %d results, want count and join for both targets: %+v", len(res), res)
	}
	for _, r := range res {
		want := cfg.Orders
		if r.Workload == "join" {
			want = 2 * cfg.JoinOrders
		}
		if r.Input != want || r.Elapsed <= 0 || r.Output < 1 {
			t.Errorf("%s/%s: %+v, want %d input records, a positive time and some output", r.Workload, r.Target, r, want)
		}
	}
	var out bytes.Buffer
	printPipeline(&out, cfg, res)
	for _, s := range []string{"count, Weir/baseline", "join, Weir/baseline"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("report has no %q line:\n%s", s, out.String())
		}
	}
}

func TestGenOrdersCountsEveryOrder(t *testing.T) {
	cfg := pipelineConfig{Orders: 5000, Customers: 30, Span: 3 * time.Minute, OutOfOrder: 0.2, Lateness: 4 * time.Second, Seed: 3}
	in, err := genOrders(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if in.len() != cfg.Orders {
		t.Fatalf("generated %d orders, want %d", in.len(), cfg.Orders)
	}
	var total int64
	for _, n := range in.want {
		total += n
	}
	if total != int64(cfg.Orders) {
		t.Errorf("windows count %d orders, want %d", total, cfg.Orders)
	}
	step := cfg.Span.Milliseconds() / int64(cfg.Orders)
	late := 0
	for i := range in.len() {
		r := in.record(i)
		place := benchEpoch + int64(i)*cfg.Span.Milliseconds()/int64(cfg.Orders)
		ts := r.Timestamp.UnixMilli()
		if ts > place+step || ts < place-cfg.Lateness.Milliseconds()-step {
			t.Fatalf("order %d at %d, place %d: more than %v out of order", i, ts, place, cfg.Lateness)
		}
		if ts < place-step {
			late++
		}
		if _, err := orders.OrderSerde().Deserialize(r.Topic, r.Value); err != nil {
			t.Fatalf("order %d: %v", i, err)
		}
	}
	if late == 0 {
		t.Errorf("no order out of order, want about %.0f%%", cfg.OutOfOrder*100)
	}
}

func countRecord(t *testing.T, customer string, start, n int64) *kgo.Record {
	t.Helper()
	k, err := countKeySerde.Serialize(orders.UpdatesTopic, windowedKey(customer, start))
	if err != nil {
		t.Fatal(err)
	}
	v, err := countValueSerde.Serialize(orders.UpdatesTopic, n)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: orders.UpdatesTopic, Key: k, Value: v}
}

// TestCountVerifier checks that the count verifier calls the output
// complete exactly when every window's last count is right.
func TestCountVerifier(t *testing.T) {
	want := map[orders.WindowKey]int64{{Customer: "a", Start: 0}: 2, {Customer: "b", Start: 60_000}: 1}
	v := newCountVerifier(want)
	steps := []struct {
		customer string
		start, n int64
		complete bool
	}{
		{"a", 0, 1, false},
		{"b", 60_000, 1, false},
		{"a", 0, 2, true},
		{"a", 0, 3, false}, // an overcount undoes completeness
		{"a", 0, 2, true},
	}
	for i, s := range steps {
		if err := v.apply(countRecord(t, s.customer, s.start, s.n)); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := v.complete(); got != s.complete {
			t.Fatalf("step %d (%s@%d=%d): complete=%v, want %v", i, s.customer, s.start, s.n, got, s.complete)
		}
	}
	if err := v.apply(countRecord(t, "c", 0, 1)); err == nil {
		t.Error("a window with no orders was accepted")
	}
}

// TestJoinVerifier checks that the join verifier refuses duplicates,
// wrong amounts and unknown orders.
func TestJoinVerifier(t *testing.T) {
	rec := func(id string, o, p int64) *kgo.Record {
		v, err := paidOrderSerde.Serialize(joinOutputTopic, paidOrder{OrderAmount: o, PaymentAmount: p})
		if err != nil {
			t.Fatal(err)
		}
		return &kgo.Record{Topic: joinOutputTopic, Key: []byte(id), Value: v}
	}
	v := newJoinVerifier(map[string]int64{"o1": 5, "o2": 7})
	if err := v.apply(rec("o1", 5, 5)); err != nil {
		t.Fatal(err)
	}
	if v.complete() {
		t.Fatal("complete with one of two orders joined")
	}
	if err := v.apply(rec("o1", 5, 5)); err == nil {
		t.Error("a duplicate join was accepted")
	}
	if err := v.apply(rec("o2", 7, 6)); err == nil {
		t.Error("a join with the wrong payment amount was accepted")
	}
	if err := v.apply(rec("o3", 1, 1)); err == nil {
		t.Error("an order not in the input was accepted")
	}
	if err := v.apply(rec("o2", 7, 7)); err != nil {
		t.Fatal(err)
	}
	if !v.complete() {
		t.Error("not complete with every order joined")
	}
}

// TestPipelineExactlyOnceSmall runs the count with the exactly-once
// targets: both must produce the exact counts (read at read_committed) and
// the report must compare them with Weir at-least-once.
func TestPipelineExactlyOnceSmall(t *testing.T) {
	cfg := pipelineConfig{
		Orders: 3000, Customers: 40, Partitions: 3, Span: 5 * time.Minute,
		OutOfOrder: 0.1, Lateness: 5 * time.Second,
		Commit: 100 * time.Millisecond, Fsync: "group", DataDir: t.TempDir(),
		Targets: []string{"weir", "weir-eos", "baseline-eos"}, Timeout: 2 * time.Minute, Seed: 7, ExactlyOnce: true,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := runPipeline(ctx, cfg, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 {
		t.Fatalf("got %d results, want the count for three targets: %+v", len(res), res)
	}
	var out bytes.Buffer
	printPipeline(&out, cfg, res)
	for _, s := range []string{"Weir exactly-once/Weir at-least-once", "Weir exactly-once/baseline exactly-once"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("report has no %q line:\n%s", s, out.String())
		}
	}
	cfg.JoinOrders = 10
	if err := cfg.validate(); err == nil {
		t.Errorf("validate accepted an exactly-once target with the join")
	}
}

// TestStateWorkloadSmall runs both state workloads in this process over a
// few keys: they finish, count every record once, and report a rate.
func TestStateWorkloadSmall(t *testing.T) {
	for _, kind := range []string{"kv", "window"} {
		var out strings.Builder
		cfg := stateConfig{Keys: 3000, BudgetMiB: 16, For: 200 * time.Millisecond, Sample: time.Hour, Stores: 3, Commit: 1000, DataDir: t.TempDir(), Child: kind}
		if err := stateChild(context.Background(), cfg, &out); err != nil {
			t.Fatalf("%s: %v\n%s", kind, err, out.String())
		}
		_, j, ok := strings.Cut(out.String(), "RESULT ")
		var res stateResult
		if !ok || json.Unmarshal([]byte(j), &res) != nil {
			t.Fatalf("%s: no result line in\n%s", kind, out.String())
		}
		if res.Recs <= 0 || (kind == "kv" && res.LoadRecs != int64(cfg.Keys)) {
			t.Fatalf("%s: result %+v: want updates and, for kv, a load of every key once", kind, res)
		}
	}
}

// TestPipelineInstancesSmall runs the windowed count with one and two
// instances of Weir and of the baseline; every run's output check passes
// and Weir's joining instance gets its share of the tasks.
func TestPipelineInstancesSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and four applications")
	}
	var out, progress strings.Builder
	cfg := pipelineConfig{Orders: 3000, Customers: 100, Partitions: 4, Span: 2 * time.Minute, Lateness: time.Second,
		Commit: 200 * time.Millisecond, Fsync: "never", Targets: []string{"weir", "baseline"}, Timeout: 2 * time.Minute,
		Seed: 1, Instances: []int{1, 2}, DataDir: t.TempDir()}
	if err := runInstances(context.Background(), cfg, &out, &progress); err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	for _, want := range []string{"weir x1", "baseline x2", "2 instances: Weir/baseline"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestPipelineReportRounds checks the report of several rounds on made-up
// results: each round's ratio comes from that round's two runs, the summary
// is their median.
func TestPipelineReportRounds(t *testing.T) {
	cfg := pipelineConfig{Orders: 100, Rounds: 3, JoinOrders: 0}
	run := func(round int, target string, elapsed, cpu time.Duration) pipelineResult {
		return pipelineResult{Workload: "count", Target: target, Round: round, Input: 100, Output: 1, Elapsed: elapsed, CPU: cpu}
	}
	res := []pipelineResult{
		// Weir/baseline rates 0.50x, 2.00x, 1.25x; CPU 1.00x, 3.00x, 2.00x.
		run(1, "weir", 2*time.Second, time.Second), run(1, "baseline", time.Second, time.Second),
		run(2, "baseline", 2*time.Second, time.Second), run(2, "weir", time.Second, 3*time.Second),
		run(3, "weir", 4*time.Second, 2*time.Second), run(3, "baseline", 5*time.Second, time.Second),
	}
	var out bytes.Buffer
	printPipeline(&out, cfg, res)
	want := "count, Weir/baseline (median of 3 rounds' ratios): 1.25x (end-to-end records/s; rounds 0.50 2.00 1.25); CPU per input record 2.00x (1.00 3.00 2.00)"
	if !strings.Contains(out.String(), want) {
		t.Errorf("report lacks %q:\n%s", want, out.String())
	}
}
