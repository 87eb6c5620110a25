package broker

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testLogger discards logs unless WEIR_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("WEIR_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startBroker opens a broker on a free loopback port in dir (a fresh temp
// dir when empty) and closes it at the end of the test.
func startBroker(t testing.TB, opts Options) *Broker {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	b, err := Open(opts)
	if err != nil {
		t.Fatalf("open broker: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close broker: %v", err)
		}
	})
	return b
}

// newClient returns a kgo client for b, closed at the end of the test.
func newClient(t testing.TB, b *Broker, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	c, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Addr())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// consumeN reads records from the start of topic until it has n of them.
func consumeN(t testing.TB, b *Broker, topic string, n int) []*kgo.Record {
	t.Helper()
	ctx := testCtx(t)
	c := newClient(t, b, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	var out []*kgo.Record
	for len(out) < n {
		fs := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(out), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

type kv struct{ K, V string }

func recordSet(rs []*kgo.Record) []kv {
	out := make([]kv, 0, len(rs))
	for _, r := range rs {
		out = append(out, kv{string(r.Key), string(r.Value)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].V < out[j].V })
	return out
}

func TestCreateProduceConsume(t *testing.T) {
	b := startBroker(t, Options{})
	ctx := testCtx(t)
	adm := kadm.NewClient(newClient(t, b))
	resp, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{"retention.ms": kadm.StringPtr("3600000")}, "orders")
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v %v", err, resp.Err)
	}

	// kgo producers are idempotent with acks=all by default.
	p := newClient(t, b, kgo.DefaultProduceTopic("orders"), kgo.RequiredAcks(kgo.AllISRAcks()))
	var want []kv
	var recs []*kgo.Record
	for i := range 300 {
		k, v := fmt.Sprintf("key-%d", i%17), fmt.Sprintf("value-%04d", i)
		want = append(want, kv{k, v})
		recs = append(recs, &kgo.Record{Key: []byte(k), Value: []byte(v)})
	}
	if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	// Same key, same partition: the partitioner is murmur2 on both sides.
	parts := map[string]int32{}
	for _, r := range recs {
		if q, ok := parts[string(r.Key)]; ok && q != r.Partition {
			t.Fatalf("key %s went to partitions %d and %d", r.Key, q, r.Partition)
		}
		parts[string(r.Key)] = r.Partition
	}

	got := consumeN(t, b, "orders", len(want))
	if diff := cmp.Diff(recordSet(recs), recordSet(got)); diff != "" {
		t.Fatalf("consumed records differ (-produced +consumed):\n%s", diff)
	}
	sort.Slice(want, func(i, j int) bool { return want[i].V < want[j].V })
	if diff := cmp.Diff(want, recordSet(got)); diff != "" {
		t.Fatalf("consumed records differ (-want +got):\n%s", diff)
	}

	// Offsets are dense per partition and the end offsets add up.
	ends, err := adm.ListEndOffsets(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != int64(len(want)) {
		t.Fatalf("end offsets sum to %d, want %d", total, len(want))
	}
}

func TestDeleteTopicRemovesData(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, Options{DataDir: dir})
	ctx := testCtx(t)
	adm := kadm.NewClient(newClient(t, b))
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "gone"); err != nil {
		t.Fatal(err)
	}
	p := newClient(t, b, kgo.DefaultProduceTopic("gone"))
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "topics", "gone")); err != nil {
		t.Fatalf("topic dir missing before delete: %v", err)
	}
	dr, err := adm.DeleteTopics(ctx, "gone")
	if err != nil || dr["gone"].Err != nil {
		t.Fatalf("delete: %v %v", err, dr["gone"].Err)
	}
	if _, err := os.Stat(filepath.Join(dir, "topics", "gone")); !os.IsNotExist(err) {
		t.Fatalf("topic dir still there after delete: %v", err)
	}
	td, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if td.Has("gone") {
		t.Fatalf("deleted topic still listed")
	}
	// Deleting again reports the topic unknown.
	dr, err = adm.DeleteTopics(ctx, "gone")
	if err != nil {
		t.Fatal(err)
	}
	if got := dr["gone"].Err; got != kerr.UnknownTopicOrPartition {
		t.Fatalf("second delete: %v, want UNKNOWN_TOPIC_OR_PARTITION", got)
	}
}

func TestReplicationFactorRefused(t *testing.T) {
	b := startBroker(t, Options{})
	adm := kadm.NewClient(newClient(t, b))
	resp, _ := adm.CreateTopic(testCtx(t), 1, 3, nil, "replicated")
	if resp.Err != kerr.InvalidReplicationFactor {
		t.Fatalf("got %v, want INVALID_REPLICATION_FACTOR", resp.Err)
	}
	if resp.ErrMessage == "" {
		t.Fatalf("no message explaining the refusal")
	}
}

// crc32c computes the RecordBatch CRC.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// rawBatch encodes one uncompressed RecordBatch v2 holding values.
func rawBatch(values ...string) []byte { return rawProducerBatch(-1, -1, -1, values...) }

// rawProducerBatch encodes one uncompressed RecordBatch v2 from an
// idempotent producer (pid, epoch) starting at sequence seq.
func rawProducerBatch(pid int64, epoch int16, seq int32, values ...string) []byte {
	var recs []byte
	for i, v := range values {
		r := kmsg.Record{TimestampDelta64: 0, OffsetDelta: int32(i), Key: nil, Value: []byte(v)}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // length 0 took one varint byte; values here are short, so the real length does too
		recs = r.AppendTo(recs)
	}
	rb := kmsg.RecordBatch{
		Magic: 2, LastOffsetDelta: int32(len(values) - 1), FirstTimestamp: time.Now().UnixMilli(),
		MaxTimestamp: time.Now().UnixMilli(), ProducerID: pid, ProducerEpoch: epoch, FirstSequence: seq,
		NumRecords: int32(len(values)), Records: recs,
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

func produceRaw(t *testing.T, c *kgo.Client, topic string, records []byte) int16 {
	t.Helper()
	code, _ := produceRawOffset(t, c, topic, records)
	return code
}

// produceRawOffset produces records to partition 0 of topic and returns the
// error code and base offset.
func produceRawOffset(t *testing.T, c *kgo.Client, topic string, records []byte) (int16, int64) {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), c)
	if err != nil {
		t.Fatalf("produce request: %v", err)
	}
	p := resp.Topics[0].Partitions[0]
	return p.ErrorCode, p.BaseOffset
}

func TestCorruptBatchRefused(t *testing.T) {
	b := startBroker(t, Options{})
	c := newClient(t, b)
	good := rawBatch("a", "b")
	if code := produceRaw(t, c, "raw", good); code != 0 {
		t.Fatalf("valid batch refused: %v", kerr.ErrorForCode(code))
	}
	bad := append([]byte(nil), good...)
	bad[len(bad)-1] ^= 0xff // inside the CRC'd range
	if code := produceRaw(t, c, "raw", bad); code != kerr.CorruptMessage.Code {
		t.Fatalf("corrupt batch: got %v, want CORRUPT_MESSAGE", kerr.ErrorForCode(code))
	}
	// Nothing of the corrupt batch is readable; the good one is.
	got := consumeN(t, b, "raw", 2)
	if diff := cmp.Diff([]kv{{"", "a"}, {"", "b"}}, recordSet(got)); diff != "" {
		t.Fatalf("records (-want +got):\n%s", diff)
	}
}

// rawRequest sends one request frame over a fresh TCP connection and
// returns the response frame (without its size prefix).
func rawRequest(t *testing.T, addr string, key, version int16, body []byte) []byte {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	var f []byte
	f = binary.BigEndian.AppendUint32(f, 0)
	f = binary.BigEndian.AppendUint16(f, uint16(key))
	f = binary.BigEndian.AppendUint16(f, uint16(version))
	f = binary.BigEndian.AppendUint32(f, 7) // correlation id
	f = binary.BigEndian.AppendUint16(f, 0xffff)
	f = append(f, body...)
	binary.BigEndian.PutUint32(f, uint32(len(f)-4))
	if _, err := nc.Write(f); err != nil {
		t.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(nc, size[:]); err != nil {
		t.Fatalf("reading response: %v", err)
	}
	resp := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(nc, resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestApiVersionsUnsupportedVersion(t *testing.T) {
	b := startBroker(t, Options{})
	resp := rawRequest(t, b.Addr(), 18, 99, nil)
	if got := int32(binary.BigEndian.Uint32(resp)); got != 7 {
		t.Fatalf("correlation id %d, want 7", got)
	}
	var av kmsg.ApiVersionsResponse // v0 body, header v0
	if err := av.ReadFrom(resp[4:]); err != nil {
		t.Fatalf("decoding v0 answer: %v", err)
	}
	if av.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("error %d, want UNSUPPORTED_VERSION", av.ErrorCode)
	}
	// Only ApiVersions' own range, as Kafka answers: franz-go takes an
	// answer with more keys as the final (v0) one, without features.
	if len(av.ApiKeys) != 1 || av.ApiKeys[0].ApiKey != 18 || av.ApiKeys[0].MinVersion != 0 || av.ApiKeys[0].MaxVersion != 4 {
		t.Fatalf("UNSUPPORTED_VERSION answer advertises %+v, want only ApiVersions 0-4", av.ApiKeys)
	}
}

// TestProduceOldVersionsAdvertisedButRefused: Produce is advertised from v0
// (librdkafka compresses only then), but a v0-2 request is answered
// UNSUPPORTED_VERSION on every partition and stores nothing; with acks=0,
// which has no answer, the connection is closed.
func TestProduceOldVersionsAdvertisedButRefused(t *testing.T) {
	b := startBroker(t, Options{})
	var av kmsg.ApiVersionsResponse
	if err := av.ReadFrom(rawRequest(t, b.Addr(), 18, 0, nil)[4:]); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, k := range av.ApiKeys {
		if k.ApiKey == 0 {
			found = k.MinVersion == 0 && k.MaxVersion >= 3
		}
	}
	if !found {
		t.Fatalf("Produce from v0 not advertised in %+v", av.ApiKeys)
	}

	c := newClient(t, b)
	if code := produceRaw(t, c, "old", rawBatch("kept")); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	for v := int16(0); v <= 2; v++ {
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(v)
		req.Acks = 1
		req.TimeoutMillis = 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "old"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = rawBatch("refused")
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		frame := rawRequest(t, b.Addr(), 0, v, req.AppendTo(nil))
		resp := kmsg.NewPtrProduceResponse()
		resp.SetVersion(v)
		if err := resp.ReadFrom(frame[4:]); err != nil {
			t.Fatalf("v%d: decoding answer: %v", v, err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("v%d: answer %+v, want one partition", v, resp.Topics)
		}
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnsupportedVersion.Code {
			t.Fatalf("v%d: error %v, want UNSUPPORTED_VERSION", v, kerr.ErrorForCode(code))
		}

		// acks=0: the connection is closed, nothing is answered.
		req.Acks = 0
		nc, err := net.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		body := req.AppendTo(nil)
		var f []byte
		f = binary.BigEndian.AppendUint32(f, uint32(10+len(body)))
		f = binary.BigEndian.AppendUint16(f, 0)
		f = binary.BigEndian.AppendUint16(f, uint16(v))
		f = binary.BigEndian.AppendUint32(f, 8)
		f = binary.BigEndian.AppendUint16(f, 0xffff)
		f = append(f, body...)
		if _, err := nc.Write(f); err != nil {
			t.Fatal(err)
		}
		if n, err := nc.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("v%d acks=0: read %d bytes, %v; want the connection closed", v, n, err)
		}
		nc.Close()
	}
	got := consumeN(t, b, "old", 1)
	if diff := cmp.Diff([]kv{{"", "kept"}}, recordSet(got)); diff != "" {
		t.Fatalf("records (-want +got):\n%s", diff)
	}
	// Nothing after the kept record: the end offset is 1.
	offs, err := kadm.NewClient(c).ListEndOffsets(testCtx(t), "old")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offs.Lookup("old", 0); o.Offset != 1 {
		t.Fatalf("end offset %d, want 1 (a refused produce was stored)", o.Offset)
	}
}

func TestTopicsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(Options{DataDir: dir, Listen: "127.0.0.1:0", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	c, _ := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	adm := kadm.NewClient(c)
	if _, err := adm.CreateTopic(ctx, 4, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, "kept"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b2 := startBroker(t, Options{DataDir: dir})
	adm2 := kadm.NewClient(newClient(t, b2))
	td, err := adm2.ListTopics(ctx, "kept")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(td["kept"].Partitions); got != 4 {
		t.Fatalf("after restart: %d partitions, want 4", got)
	}
	rc, err := adm2.DescribeTopicConfigs(ctx, "kept")
	if err != nil {
		t.Skipf("DescribeConfigs not yet served: %v", err)
	}
	v, err := rc.On("kept", nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range v.Configs {
		if c.Key == "cleanup.policy" {
			found = c.MaybeValue() == "compact"
		}
	}
	if !found {
		t.Fatalf("cleanup.policy=compact lost across restart: %+v", v.Configs)
	}
}

// topicConfig returns one config of topic as DescribeConfigs reports it.
func topicConfig(t *testing.T, adm *kadm.Client, topic, name string) (string, kmsg.ConfigSource) {
	t.Helper()
	rc, err := adm.DescribeTopicConfigs(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	v, err := rc.On(topic, nil)
	if err != nil || v.Err != nil {
		t.Fatalf("describe %s: %v %v", topic, err, v.Err)
	}
	for _, c := range v.Configs {
		if c.Key == name {
			return c.MaybeValue(), c.Source
		}
	}
	t.Fatalf("config %s of %s not described", name, topic)
	return "", 0
}

func TestTopicConfigs(t *testing.T) {
	b := startBroker(t, Options{TopicDefaults: map[string]string{"retention.bytes": "1048576"}})
	ctx := testCtx(t)
	adm := kadm.NewClient(newClient(t, b))
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": kadm.StringPtr("60000")}, "cfg"); err != nil {
		t.Fatal(err)
	}
	type got struct {
		V string
		S kmsg.ConfigSource
	}
	check := func(name string, want got) {
		t.Helper()
		v, s := topicConfig(t, adm, "cfg", name)
		if diff := cmp.Diff(want, got{v, s}); diff != "" {
			t.Fatalf("%s (-want +got):\n%s", name, diff)
		}
	}
	check("retention.ms", got{"60000", kmsg.ConfigSource(sourceTopicConfig)})
	check("retention.bytes", got{"1048576", kmsg.ConfigSource(sourceStaticBroker)})
	check("cleanup.policy", got{"delete", kmsg.ConfigSource(sourceDefault)})

	// Incremental: set one, append to a list, delete another.
	ar, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "max.message.bytes", Value: kadm.StringPtr("2000000")},
		{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: kadm.StringPtr("compact")},
		{Op: kadm.DeleteConfig, Name: "retention.ms"},
	}, "cfg")
	if err != nil || ar[0].Err != nil {
		t.Fatalf("incremental alter: %v %+v", err, ar)
	}
	check("max.message.bytes", got{"2000000", kmsg.ConfigSource(sourceTopicConfig)})
	check("cleanup.policy", got{"delete,compact", kmsg.ConfigSource(sourceTopicConfig)})
	check("retention.ms", got{"604800000", kmsg.ConfigSource(sourceDefault)})

	// Invalid values are refused and change nothing.
	ar, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "max.message.bytes", Value: kadm.StringPtr("lots")},
	}, "cfg")
	if err != nil || ar[0].Err != kerr.InvalidConfig {
		t.Fatalf("invalid alter: %v %+v, want INVALID_CONFIG", err, ar)
	}
	check("max.message.bytes", got{"2000000", kmsg.ConfigSource(sourceTopicConfig)})

	// Non-incremental alter replaces the whole set.
	sr, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "segment.ms", Value: kadm.StringPtr("1000")}}, "cfg")
	if err != nil || sr[0].Err != nil {
		t.Fatalf("state alter: %v %+v", err, sr)
	}
	check("segment.ms", got{"1000", kmsg.ConfigSource(sourceTopicConfig)})
	check("max.message.bytes", got{"1048588", kmsg.ConfigSource(sourceDefault)})
}

// Config sources as kadm numbers them.
const (
	sourceTopicConfig  = 1
	sourceStaticBroker = 4
	sourceDefault      = 5
)

func TestCreatePartitionsAndDeleteRecords(t *testing.T) {
	b := startBroker(t, Options{})
	ctx := testCtx(t)
	adm := kadm.NewClient(newClient(t, b))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "grow"); err != nil {
		t.Fatal(err)
	}
	cr, err := adm.CreatePartitions(ctx, 2, "grow") // add 2
	if err != nil || cr["grow"].Err != nil {
		t.Fatalf("create partitions: %v %+v", err, cr)
	}
	td, err := adm.ListTopics(ctx, "grow")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(td["grow"].Partitions); n != 3 {
		t.Fatalf("%d partitions, want 3", n)
	}
	cr, _ = adm.UpdatePartitions(ctx, 2, "grow")
	if cr["grow"].Err != kerr.InvalidPartitions {
		t.Fatalf("shrinking: %v, want INVALID_PARTITIONS", cr["grow"].Err)
	}

	p := newClient(t, b, kgo.DefaultProduceTopic("grow"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for i := range 10 {
		recs = append(recs, &kgo.Record{Partition: 1, Value: []byte(strconv.Itoa(i))})
	}
	for _, r := range recs { // one batch per record
		if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: "grow", Partition: 1, At: 4})
	dr, err := adm.DeleteRecords(ctx, os)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := dr.Lookup("grow", 1); r.Err != nil || r.LowWatermark != 4 {
		t.Fatalf("delete records: %+v, want low watermark 4", r)
	}
	starts, err := adm.ListStartOffsets(ctx, "grow")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup("grow", 1); o.Offset != 4 {
		t.Fatalf("start offset %d, want 4", o.Offset)
	}
}

func TestDescribeCluster(t *testing.T) {
	b := startBroker(t, Options{NodeID: 3})
	adm := kadm.NewClient(newClient(t, b))
	m, err := adm.BrokerMetadata(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if m.Controller != 3 || len(m.Brokers) != 1 || m.Brokers[0].NodeID != 3 || m.Cluster == "" {
		t.Fatalf("metadata %+v", m)
	}
}

func sortStrings(s []string) { sort.Strings(s) }

func itoa(n int32) string { return strconv.Itoa(int(n)) }
