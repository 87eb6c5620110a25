package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// cluster starts an in-memory Kafka-compatible cluster for one test.
func cluster(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// clientFactory returns a NewClient for the cluster whose clients are closed
// at the end of the test.
func clientFactory(t *testing.T, addrs []string) NewClient {
	t.Helper()
	return func(opts ...kgo.Opt) (*kgo.Client, error) {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...)}, opts...)...)
		if err == nil {
			t.Cleanup(cl.Close)
		}
		return cl, err
	}
}

func admin(t *testing.T, addrs []string) *kadm.Client {
	t.Helper()
	cl, err := clientFactory(t, addrs)()
	if err != nil {
		t.Fatal(err)
	}
	return kadm.NewClient(cl)
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustJSON[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, b)
	}
	return v
}

func TestTopicLifecycle(t *testing.T) {
	addrs := cluster(t)
	adm := admin(t, addrs)
	ctx := testCtx(t)

	var out bytes.Buffer
	err := CreateTopics(ctx, adm, &out, Output{}, CreateTopicsRequest{
		Topics: []string{"orders", "payments"}, Partitions: 3, ReplicationFactor: 1,
		Configs: map[string]string{"retention.ms": "60000"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "Created topic orders (3 partitions, replication factor 1).\nCreated topic payments (3 partitions, replication factor 1).\n"
	if d := cmp.Diff(want, out.String()); d != "" {
		t.Fatalf("create output (-want +got):\n%s", d)
	}

	// Creating one again fails for that topic only, and says so.
	out.Reset()
	err = CreateTopics(ctx, adm, &out, Output{JSON: true}, CreateTopicsRequest{Topics: []string{"orders", "refunds"}, Partitions: 1, ReplicationFactor: 1})
	if err == nil || !strings.Contains(err.Error(), `"orders"`) || strings.Contains(err.Error(), "refunds") {
		t.Fatalf("duplicate create: err %v", err)
	}
	created := mustJSON[[]CreatedTopic](t, out.Bytes())
	if len(created) != 2 || created[0].Error == "" || created[1].Error != "" || created[1].Partitions != 1 {
		t.Fatalf("duplicate create output %+v", created)
	}

	out.Reset()
	if err := ListTopics(ctx, adm, &out, Output{JSON: true}, false); err != nil {
		t.Fatal(err)
	}
	listed := mustJSON[[]ListedTopic](t, out.Bytes())
	wantList := []ListedTopic{
		{Topic: "orders", Partitions: 3, ReplicationFactor: 1},
		{Topic: "payments", Partitions: 3, ReplicationFactor: 1},
		{Topic: "refunds", Partitions: 1, ReplicationFactor: 1},
	}
	if d := cmp.Diff(wantList, listed); d != "" {
		t.Fatalf("list (-want +got):\n%s", d)
	}
	out.Reset()
	if err := ListTopics(ctx, adm, &out, Output{}, false); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 4 || !strings.HasPrefix(lines[1], "orders ") {
		t.Fatalf("human list:\n%s", out.String())
	}

	describe := func() DescribedTopic {
		t.Helper()
		out.Reset()
		if err := DescribeTopics(ctx, adm, &out, Output{JSON: true}, false, "orders"); err != nil {
			t.Fatal(err)
		}
		d := mustJSON[[]DescribedTopic](t, out.Bytes())
		if len(d) != 1 {
			t.Fatalf("describe returned %d topics", len(d))
		}
		return d[0]
	}
	d := describe()
	if len(d.Partitions) != 3 || d.Partitions[2].Partition != 2 || len(d.Partitions[0].Replicas) != 1 {
		t.Fatalf("describe partitions %+v", d.Partitions)
	}
	if d := cmp.Diff([]DescribedConfig{{Name: "retention.ms", Value: kadm.StringPtr("60000"), Source: "DYNAMIC_TOPIC_CONFIG"}}, d.Configs); d != "" {
		t.Fatalf("describe configs (-want +got):\n%s", d)
	}

	out.Reset()
	err = AlterTopic(ctx, adm, &out, Output{}, AlterTopicRequest{
		Topic: "orders", Partitions: 5,
		Set: map[string]string{"cleanup.policy": "compact"}, Delete: []string{"retention.ms"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff("Altered topic orders: partitions=5, set cleanup.policy=compact, deleted retention.ms.\n", out.String()); d != "" {
		t.Fatalf("alter output (-want +got):\n%s", d)
	}
	d = describe()
	if len(d.Partitions) != 5 {
		t.Fatalf("after alter: %d partitions", len(d.Partitions))
	}
	if d := cmp.Diff([]DescribedConfig{{Name: "cleanup.policy", Value: kadm.StringPtr("compact"), Source: "DYNAMIC_TOPIC_CONFIG"}}, d.Configs); d != "" {
		t.Fatalf("configs after alter (-want +got):\n%s", d)
	}
	if err := AlterTopic(ctx, adm, &out, Output{}, AlterTopicRequest{Topic: "orders"}); err == nil {
		t.Fatal("alter with nothing to change succeeded")
	}

	out.Reset()
	if err := DescribeTopics(ctx, adm, &out, Output{}, false, "orders"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Topic: orders\n", "PARTITION", "cleanup.policy=compact"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("human describe lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	if err := DeleteTopics(ctx, adm, &out, Output{}, "orders", "refunds"); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff("Deleted topic orders.\nDeleted topic refunds.\n", out.String()); d != "" {
		t.Fatalf("delete output (-want +got):\n%s", d)
	}
	out.Reset()
	if err := DeleteTopics(ctx, adm, &out, Output{JSON: true}, "orders"); err == nil {
		t.Fatal("deleting a missing topic succeeded")
	}
	if del := mustJSON[[]DeletedTopic](t, out.Bytes()); len(del) != 1 || del[0].Error == "" {
		t.Fatalf("delete missing output %+v", del)
	}
	// A new client, as a new weir process would have: kadm serves topic
	// lists from the client's metadata cache for a few seconds.
	adm = admin(t, addrs)
	out.Reset()
	if err := ListTopics(ctx, adm, &out, Output{JSON: true}, false); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]ListedTopic{{Topic: "payments", Partitions: 3, ReplicationFactor: 1}}, mustJSON[[]ListedTopic](t, out.Bytes())); d != "" {
		t.Fatalf("list after delete (-want +got):\n%s", d)
	}
	if err := DescribeTopics(ctx, adm, &out, Output{}, false, "orders"); err == nil {
		t.Fatal("describing a deleted topic succeeded")
	}
}

func producer(t *testing.T, addrs []string, extra ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := clientFactory(t, addrs)(append([]kgo.Opt{kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil))}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// consumeJSON reads the topic to its end and returns the decoded records.
func consumeJSON(t *testing.T, addrs []string, opts ConsumeOptions) []JSONRecord {
	t.Helper()
	var out bytes.Buffer
	opts.Format = FormatJSON{}
	opts.UntilEnd = true
	if _, err := Consume(testCtx(t), clientFactory(t, addrs), &out, opts); err != nil {
		t.Fatal(err)
	}
	var recs []JSONRecord
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		recs = append(recs, mustJSON[JSONRecord](t, sc.Bytes()))
	}
	return recs
}

func TestProduceConsumeRoundTrip(t *testing.T) {
	addrs := cluster(t)
	ctx := testCtx(t)
	if err := CreateTopics(ctx, admin(t, addrs), &bytes.Buffer{}, Output{}, CreateTopicsRequest{Topics: []string{"orders"}, Partitions: 4, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	// Kafka's default partitioner: murmur2(key) & 0x7fffffff % 4. The
	// partitions are those Kafka's own murmur2 test vectors give.
	input := "21:one\nfoobar:two\nabc:three\nlkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8:four\n:empty key\nno separator here\n\nabc:five with: colon\n21:last line without newline"
	wantPartition := map[string]int32{"21": 0, "foobar": 2, "abc": 3, "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": 1}
	hdrs := []kgo.RecordHeader{{Key: "source", Value: []byte("weir-test")}, {Key: "empty", Value: []byte{}}}

	var out bytes.Buffer
	var acked atomic.Int64
	res, err := Produce(ctx, producer(t, addrs), strings.NewReader(input), &out, Output{JSON: true}, ProduceOptions{Topic: "orders", KeySeparator: ":", Headers: hdrs, Partition: -1, Count: &acked})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 9 || acked.Load() != 9 || res.Failed != 0 {
		t.Fatalf("produce result %+v, acked %d", res, acked.Load())
	}
	if d := cmp.Diff(res, mustJSON[ProduceResult](t, out.Bytes())); d != "" {
		t.Fatalf("JSON summary differs from result (-want +got):\n%s", d)
	}

	recs := consumeJSON(t, addrs, ConsumeOptions{Topic: "orders"})
	type kv struct {
		Key, Value *string
		Headers    []JSONHeader
	}
	str := func(s string) *string { return &s }
	wantHeaders := []JSONHeader{{Key: "source", Value: str("weir-test")}, {Key: "empty", Value: str("")}}
	want := []kv{
		{str("21"), str("one"), wantHeaders},
		{str("foobar"), str("two"), wantHeaders},
		{str("abc"), str("three"), wantHeaders},
		{str("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), str("four"), wantHeaders},
		{str(""), str("empty key"), wantHeaders},
		{nil, str("no separator here"), wantHeaders},
		{nil, str(""), wantHeaders},
		{str("abc"), str("five with: colon"), wantHeaders},
		{str("21"), str("last line without newline"), wantHeaders},
	}
	var got []kv
	// Records come back partition by partition; order by (partition,
	// offset) on both sides, checking the keyed partitions on the way.
	for _, r := range recs {
		if r.Key != nil {
			if p, ok := wantPartition[*r.Key]; ok && p != r.Partition {
				t.Errorf("key %q in partition %d, Kafka's partitioner gives %d", *r.Key, r.Partition, p)
			}
		}
		got = append(got, kv{r.Key, r.Value, r.Headers})
	}
	sortKV := func(s []kv) {
		slices.SortStableFunc(s, func(a, b kv) int {
			return strings.Compare(fmt.Sprint(deref(a.Key), deref(a.Value)), fmt.Sprint(deref(b.Key), deref(b.Value)))
		})
	}
	sortKV(want)
	sortKV(got)
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("consumed records (-want +got):\n%s", d)
	}
	// Within one partition, order is the input order.
	var p0 []string
	for _, r := range recs {
		if r.Partition == 0 && r.Key != nil && *r.Key == "21" {
			p0 = append(p0, *r.Value)
		}
	}
	if d := cmp.Diff([]string{"one", "last line without newline"}, p0); d != "" {
		t.Fatalf("partition 0 order (-want +got):\n%s", d)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// produceN writes n records "v0".."v{n-1}" to one partition.
func produceN(t *testing.T, addrs []string, topic string, partition int32, n int) {
	t.Helper()
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "v%d\n", i)
	}
	cl := producer(t, addrs, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if _, err := Produce(testCtx(t), cl, strings.NewReader(in.String()), &bytes.Buffer{}, Output{}, ProduceOptions{Topic: topic, Partition: partition}); err != nil {
		t.Fatal(err)
	}
}

func values(recs []JSONRecord) []string {
	var out []string
	for _, r := range recs {
		out = append(out, fmt.Sprintf("%d:%s", r.Partition, deref(r.Value)))
	}
	return out
}

func TestConsumeStartsAndStops(t *testing.T) {
	addrs := cluster(t)
	ctx := testCtx(t)
	if err := CreateTopics(ctx, admin(t, addrs), &bytes.Buffer{}, Output{}, CreateTopicsRequest{Topics: []string{"t"}, Partitions: 2, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	produceN(t, addrs, "t", 0, 5)
	produceN(t, addrs, "t", 1, 2)

	tests := []struct {
		name string
		opts ConsumeOptions
		want []string
	}{
		{name: "beginning, one partition", opts: ConsumeOptions{Partitions: []int32{0}}, want: []string{"0:v0", "0:v1", "0:v2", "0:v3", "0:v4"}},
		{name: "offset", opts: ConsumeOptions{Partitions: []int32{0}, From: Start{Kind: StartOffset, N: 3}}, want: []string{"0:v3", "0:v4"}},
		{name: "offset clamped", opts: ConsumeOptions{From: Start{Kind: StartOffset, N: 4}}, want: []string{"0:v4"}},
		{name: "from end minus 1", opts: ConsumeOptions{From: Start{Kind: StartFromEnd, N: 1}}, want: []string{"0:v4", "1:v1"}},
		{name: "end", opts: ConsumeOptions{From: Start{Kind: StartEnd}}, want: nil},
		{name: "count", opts: ConsumeOptions{Partitions: []int32{0}, Count: 2}, want: []string{"0:v0", "0:v1"}},
		{name: "timestamp before all", opts: ConsumeOptions{Partitions: []int32{1}, From: Start{Kind: StartTimestamp, Millis: before.UnixMilli()}}, want: []string{"1:v0", "1:v1"}},
		{name: "timestamp after all", opts: ConsumeOptions{From: Start{Kind: StartTimestamp, Millis: time.Now().Add(time.Hour).UnixMilli()}}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Topic = "t"
			got := values(consumeJSON(t, addrs, tt.opts))
			slices.Sort(got)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Fatalf("(-want +got):\n%s", d)
			}
		})
	}

	// A missing partition or topic is an error, not a hang.
	if _, err := Consume(ctx, clientFactory(t, addrs), &bytes.Buffer{}, ConsumeOptions{Topic: "t", Partitions: []int32{7}, UntilEnd: true}); err == nil || !strings.Contains(err.Error(), "no partition 7") {
		t.Fatalf("missing partition: %v", err)
	}
	if _, err := Consume(ctx, clientFactory(t, addrs), &bytes.Buffer{}, ConsumeOptions{Topic: "nope", UntilEnd: true}); err == nil {
		t.Fatal("missing topic: no error")
	}
}

// TestConsumeFollowsNewRecords: without UntilEnd, Consume waits for records
// produced after it started, and stops at Count.
func TestConsumeFollowsNewRecords(t *testing.T) {
	addrs := cluster(t)
	ctx := testCtx(t)
	if err := CreateTopics(ctx, admin(t, addrs), &bytes.Buffer{}, Output{}, CreateTopicsRequest{Topics: []string{"live"}, Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	var consumed atomic.Int64
	type result struct {
		n   int
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		var out bytes.Buffer
		f, _ := ParseFormat(`%o=%v\n`)
		n, err := Consume(ctx, clientFactory(t, addrs), &out, ConsumeOptions{Topic: "live", From: Start{Kind: StartEnd}, Count: 3, Format: f, Consumed: &consumed})
		done <- result{n, out.String(), err}
	}()
	// Produce in rounds until the consumer, which may start after the
	// first round, has seen three records.
	var res result
	for round := 0; ; round++ {
		produceN(t, addrs, "live", 0, 1)
		select {
		case res = <-done:
		case <-time.After(200 * time.Millisecond):
			continue
		case <-ctx.Done():
			t.Fatalf("consumer saw %d records before the deadline", consumed.Load())
		}
		break
	}
	if res.err != nil || res.n != 3 || consumed.Load() != 3 {
		t.Fatalf("Consume = %d, %v (consumed %d)", res.n, res.err, consumed.Load())
	}
	lines := strings.Split(strings.TrimSuffix(res.out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("output %q", res.out)
	}
	for i := 1; i < 3; i++ {
		var a, b int
		fmt.Sscanf(lines[i-1], "%d=", &a)
		fmt.Sscanf(lines[i], "%d=", &b)
		if b != a+1 || !strings.HasSuffix(lines[i], "=v0") {
			t.Fatalf("output %q not consecutive", res.out)
		}
	}
}

func TestConsumeStopsOnCancel(t *testing.T) {
	addrs := cluster(t)
	ctx, cancel := context.WithCancel(testCtx(t))
	if err := CreateTopics(ctx, admin(t, addrs), &bytes.Buffer{}, Output{}, CreateTopicsRequest{Topics: []string{"idle"}, Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	var consumed atomic.Int64
	done := make(chan error, 1)
	go func() {
		_, err := Consume(ctx, clientFactory(t, addrs), &bytes.Buffer{}, ConsumeOptions{Topic: "idle", Consumed: &consumed})
		done <- err
	}()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("cancelled consume returned %v, want nil", err)
	}
}

// TestProduceStopsAtFirstFailure: once the cluster refuses a record, the
// rest of the input is not read, and the error is returned.
func TestProduceStopsAtFirstFailure(t *testing.T) {
	addrs := cluster(t)
	ctx := testCtx(t)
	if err := CreateTopics(ctx, admin(t, addrs), &bytes.Buffer{}, Output{}, CreateTopicsRequest{Topics: []string{"one"}, Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	const lines = 50_000
	in := strings.NewReader(strings.Repeat("x\n", lines))
	cl := producer(t, addrs, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	res, err := Produce(ctx, cl, in, &bytes.Buffer{}, Output{}, ProduceOptions{Topic: "one", Partition: 5})
	if err == nil || !strings.Contains(err.Error(), "partition") {
		t.Fatalf("err = %v, want a partitioning error", err)
	}
	if res.Records != 0 || res.Failed == 0 || res.Failed >= lines {
		t.Fatalf("result %+v: want no successes and a stop well before %d records", res, lines)
	}
	if in.Len() == 0 {
		t.Fatal("all input was read")
	}
}
