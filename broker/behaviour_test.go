package broker

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestIdempotentProducerDuplicatesAndGaps(t *testing.T) {
	b := startBroker(t, Options{})
	c := newClient(t, b)
	ctx := testCtx(t)
	ipr, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctx, c)
	if err != nil || ipr.ErrorCode != 0 {
		t.Fatalf("init producer id: %v %v", err, kerr.ErrorForCode(ipr.ErrorCode))
	}
	pid, epoch := ipr.ProducerID, ipr.ProducerEpoch
	first := rawProducerBatch(pid, epoch, 0, "a", "b")
	code, off := produceRawOffset(t, c, "idem", first)
	if code != 0 || off != 0 {
		t.Fatalf("first batch: %v at %d", kerr.ErrorForCode(code), off)
	}
	// A retry of the same batch is answered with the original offset and
	// not written again.
	code, off = produceRawOffset(t, c, "idem", rawProducerBatch(pid, epoch, 0, "a", "b"))
	if code != 0 || off != 0 {
		t.Fatalf("retried batch: %v at %d, want success at 0", kerr.ErrorForCode(code), off)
	}
	// A gap in the sequence is refused.
	if code := produceRaw(t, c, "idem", rawProducerBatch(pid, epoch, 5, "x")); code != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap: %v, want OUT_OF_ORDER_SEQUENCE_NUMBER", kerr.ErrorForCode(code))
	}
	code, off = produceRawOffset(t, c, "idem", rawProducerBatch(pid, epoch, 2, "c"))
	if code != 0 || off != 2 {
		t.Fatalf("next batch: %v at %d, want success at 2", kerr.ErrorForCode(code), off)
	}
	got := consumeN(t, b, "idem", 3)
	if diff := cmp.Diff([]kv{{"", "a"}, {"", "b"}, {"", "c"}}, recordSet(got)); diff != "" {
		t.Fatalf("log (-want +got):\n%s", diff)
	}
	// A second InitProducerId never hands out the same id.
	ipr2, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctx, c)
	if err != nil || ipr2.ProducerID == pid {
		t.Fatalf("second producer id %d (first %d): %v", ipr2.ProducerID, pid, err)
	}
}

func TestCompactedTopicRefusesKeylessRecords(t *testing.T) {
	b := startBroker(t, Options{})
	c := newClient(t, b)
	adm := kadm.NewClient(c)
	if _, err := adm.CreateTopic(testCtx(t), 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, "cmp"); err != nil {
		t.Fatal(err)
	}
	if code := produceRaw(t, c, "cmp", rawBatch("no key")); code != kerr.InvalidRecord.Code {
		t.Fatalf("keyless record on compacted topic: %v, want INVALID_RECORD", kerr.ErrorForCode(code))
	}
	p := newClient(t, b, kgo.DefaultProduceTopic("cmp"))
	if err := p.ProduceSync(testCtx(t), &kgo.Record{Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("keyed record on compacted topic: %v", err)
	}
}

func TestMessageTooLarge(t *testing.T) {
	b := startBroker(t, Options{})
	c := newClient(t, b)
	adm := kadm.NewClient(c)
	if _, err := adm.CreateTopic(testCtx(t), 1, 1, map[string]*string{"max.message.bytes": kadm.StringPtr("100")}, "small"); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 200)
	if code := produceRaw(t, c, "small", rawBatch(string(big))); code != kerr.MessageTooLarge.Code {
		t.Fatalf("oversized batch: %v, want MESSAGE_TOO_LARGE", kerr.ErrorForCode(code))
	}
}

func TestFetchLongPollWakesOnProduce(t *testing.T) {
	b := startBroker(t, Options{})
	c := newClient(t, b)
	ctx := testCtx(t)
	if code := produceRaw(t, c, "poll", rawBatch("first")); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	// A fetch at the end with a long MaxWait: it must return as soon as
	// the next record lands, long before MaxWait (the test context ends
	// far earlier than the 10-minute MaxWait).
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis = 10 * 60 * 1000
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = "poll", topicID(t, c, "poll")
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset = 1
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)

	fc := newClient(t, b, kgo.RequestTimeoutOverhead(15*time.Minute))
	done := make(chan *kmsg.FetchResponse, 1)
	errc := make(chan error, 1)
	go func() {
		resp, err := req.RequestWith(ctx, fc)
		if err != nil {
			errc <- err
			return
		}
		done <- resp
	}()
	// Produce until the waiting fetch answers: the first produce may land
	// before the fetch is parked, and then the fetch returns at once, which
	// is equally right.
	for i := 0; ; i++ {
		select {
		case resp := <-done:
			p := resp.Topics[0].Partitions[0]
			if p.ErrorCode != 0 || len(p.RecordBatches) == 0 {
				t.Fatalf("fetch woke with %v and %d bytes", kerr.ErrorForCode(p.ErrorCode), len(p.RecordBatches))
			}
			return
		case err := <-errc:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatal("fetch did not wake when data arrived")
		default:
		}
		if i < 3 {
			if code := produceRaw(t, c, "poll", rawBatch("next")); code != 0 {
				t.Fatal(kerr.ErrorForCode(code))
			}
		}
		select {
		case resp := <-done:
			done <- resp
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestFetchOffsetOutOfRange(t *testing.T) {
	b := startBroker(t, Options{})
	c := newClient(t, b)
	if code := produceRaw(t, c, "oor", rawBatch("a")); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	req := kmsg.NewPtrFetchRequest()
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = "oor", topicID(t, c, "oor")
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset = 1000
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), c)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != kerr.OffsetOutOfRange.Code || p.HighWatermark != 1 {
		t.Fatalf("got %v hw %d, want OFFSET_OUT_OF_RANGE hw 1", kerr.ErrorForCode(p.ErrorCode), p.HighWatermark)
	}
}

func TestListOffsetsByTimestamp(t *testing.T) {
	b := startBroker(t, Options{})
	ctx := testCtx(t)
	p := newClient(t, b, kgo.DefaultProduceTopic("ts"), kgo.AllowAutoTopicCreation())
	base := time.UnixMilli(1_700_000_000_000)
	for i := range 5 {
		r := &kgo.Record{Value: []byte{byte(i)}, Timestamp: base.Add(time.Duration(i) * time.Second)}
		if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(newClient(t, b))
	lo, err := adm.ListOffsetsAfterMilli(ctx, base.Add(2500*time.Millisecond).UnixMilli(), "ts")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := lo.Lookup("ts", 0); o.Err != nil || o.Offset != 3 {
		t.Fatalf("offset after t+2.5s: %+v, want 3", o)
	}
	mx, err := adm.ListMaxTimestampOffsets(ctx, "ts")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := mx.Lookup("ts", 0); o.Err != nil || o.Offset != 4 || o.Timestamp != base.Add(4*time.Second).UnixMilli() {
		t.Fatalf("max timestamp: %+v, want offset 4", o)
	}
}

func TestAcksZeroGetsNoResponse(t *testing.T) {
	b := startBroker(t, Options{})
	nc, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	send := func(corr int32, req kmsg.Request) {
		t.Helper()
		var f []byte
		f = binary.BigEndian.AppendUint32(f, 0)
		f = binary.BigEndian.AppendUint16(f, uint16(req.Key()))
		f = binary.BigEndian.AppendUint16(f, uint16(req.GetVersion()))
		f = binary.BigEndian.AppendUint32(f, uint32(corr))
		f = binary.BigEndian.AppendUint16(f, 0xffff)
		if req.IsFlexible() {
			f = append(f, 0)
		}
		f = req.AppendTo(f)
		binary.BigEndian.PutUint32(f, uint32(len(f)-4))
		if _, err := nc.Write(f); err != nil {
			t.Fatal(err)
		}
	}
	prod := kmsg.NewPtrProduceRequest()
	prod.SetVersion(7)
	prod.Acks = 0
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "fire"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = rawBatch("and forget")
	rt.Partitions = append(rt.Partitions, rp)
	prod.Topics = append(prod.Topics, rt)
	send(1, prod)
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(4)
	md.Topics = []kmsg.MetadataRequestTopic{}
	send(2, md)
	var size [4]byte
	if _, err := io.ReadFull(nc, size[:]); err != nil {
		t.Fatal(err)
	}
	resp := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(nc, resp); err != nil {
		t.Fatal(err)
	}
	if corr := int32(binary.BigEndian.Uint32(resp)); corr != 2 {
		t.Fatalf("first response has correlation id %d: the acks=0 produce was answered", corr)
	}
	got := consumeN(t, b, "fire", 1)
	if string(got[0].Value) != "and forget" {
		t.Fatalf("record %q", got[0].Value)
	}
}

func TestDataSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(Options{DataDir: dir, Listen: "127.0.0.1:0", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	p, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("durable"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := range 50 {
		recs = append(recs, &kgo.Record{Key: []byte{byte(i)}, Value: []byte{byte(i), 1}})
	}
	if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := startBroker(t, Options{DataDir: dir})
	got := consumeN(t, b2, "durable", len(recs))
	if diff := cmp.Diff(recordSet(recs), recordSet(got)); diff != "" {
		t.Fatalf("after restart (-want +got):\n%s", diff)
	}
}

// topicID looks a topic's id up (kgo sends Fetch v13, which names topics by
// id).
func topicID(t *testing.T, c *kgo.Client, topic string) [16]byte {
	t.Helper()
	td, err := kadm.NewClient(c).ListTopics(testCtx(t), topic)
	if err != nil || td[topic].Err != nil {
		t.Fatalf("topic id of %s: %v %v", topic, err, td[topic].Err)
	}
	return td[topic].ID
}

func TestFetchReturnsWholeBatchLargerThanMaxBytes(t *testing.T) {
	b := startBroker(t, Options{})
	c := newClient(t, b)
	big := string(make([]byte, 10000))
	if code := produceRaw(t, c, "big", rawBatch(big)); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	req := kmsg.NewPtrFetchRequest()
	req.MaxBytes = 100
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = "big", topicID(t, c, "big")
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 100
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), c)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || len(p.RecordBatches) <= 10000 {
		t.Fatalf("got %v and %d bytes, want the whole >10000-byte batch", kerr.ErrorForCode(p.ErrorCode), len(p.RecordBatches))
	}
}

func TestCloseEndsParkedFetch(t *testing.T) {
	b, err := Open(Options{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, b)
	if code := produceRaw(t, c, "park", rawBatch("x")); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.MaxWaitMillis = 10 * 60 * 1000
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "park"
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset = 1 // the end: the fetch parks
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	// A raw connection, so that the fetch is the only request it sends.
	nc, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var f []byte
	f = binary.BigEndian.AppendUint32(f, 0)
	f = binary.BigEndian.AppendUint16(f, uint16(req.Key()))
	f = binary.BigEndian.AppendUint16(f, 12)
	f = binary.BigEndian.AppendUint32(f, 5)
	f = binary.BigEndian.AppendUint16(f, 0xffff)
	f = append(f, 0) // flexible header: no tags
	f = req.AppendTo(f)
	binary.BigEndian.PutUint32(f, uint32(len(f)-4))
	if _, err := nc.Write(f); err != nil {
		t.Fatal(err)
	}
	// Wait until the fetch is parked in its handler, then close: Close must
	// not wait out the 10-minute MaxWait.
	deadline := time.Now().Add(20 * time.Second)
	for b.srv.InFlight() < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the fetch never reached the broker")
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-testCtx(t).Done():
		t.Fatal("Close waited for a parked fetch")
	}
	// The parked fetch was answered (empty) before the connection closed.
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(nc, size[:]); err != nil {
		t.Fatalf("no answer to the parked fetch: %v", err)
	}
	resp := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(nc, resp); err != nil {
		t.Fatal(err)
	}
	if corr := binary.BigEndian.Uint32(resp); corr != 5 {
		t.Fatalf("correlation id %d, want 5", corr)
	}
}

func TestAutoCreateDisabled(t *testing.T) {
	b := startBroker(t, Options{DisableAutoCreateTopics: true})
	c := newClient(t, b)
	if code := produceRaw(t, c, "nope", rawBatch("x")); code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("produce to unknown topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", kerr.ErrorForCode(code))
	}
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = true
	req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("nope")}}
	resp, err := req.RequestWith(testCtx(t), c)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("metadata for unknown topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", kerr.ErrorForCode(code))
	}
	td, err := kadm.NewClient(c).ListTopics(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(td) != 0 {
		t.Fatalf("topics were created: %v", td.Names())
	}
}
