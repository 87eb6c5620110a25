package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// requireTool returns the path of an external client program. When it is
// missing the test is skipped loudly, or fails when WEIR_REQUIRE_CLIENTS=1
// (as CI sets it).
func requireTool(t *testing.T, name, install string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := name + " not installed: " + install + " (" + err.Error() + ")"
	if os.Getenv("WEIR_REQUIRE_CLIENTS") == "1" {
		t.Fatalf("WEIR_REQUIRE_CLIENTS=1 but %s", msg)
	}
	t.Skip("SKIPPING: " + msg)
	return ""
}

// run runs a client program with stdin and returns its stdout.
func run(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstderr:\n%s", name, strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

func TestKcat(t *testing.T) {
	kcat := requireTool(t, "kcat", "apt-get install kcat")
	b := startBroker(t, Options{})
	adm := kadm.NewClient(newClient(t, b))
	if _, err := adm.CreateTopic(testCtx(t), 3, 1, nil, "kc"); err != nil {
		t.Fatal(err)
	}

	// Produce keyed lines: kcat hashes keys with murmur2 like the Java
	// client (-p -1 with the default partitioner is consistent_random for
	// librdkafka, so ask for murmur2 explicitly).
	lines := []string{"alice:1", "bob:2", "carol:3", "alice:4", "dave:5", "bob:6"}
	run(t, strings.Join(lines, "\n")+"\n", kcat, "-b", b.Addr(), "-t", "kc", "-P", "-K", ":",
		"-X", "partitioner=murmur2_random")

	// Consume everything back with kcat itself.
	out := run(t, "", kcat, "-b", b.Addr(), "-C", "-t", "kc", "-o", "beginning", "-e", "-q",
		"-f", "%p %k:%s\n")
	byKey := map[string]string{}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		p, kv, _ := strings.Cut(l, " ")
		got = append(got, kv)
		k, _, _ := strings.Cut(kv, ":")
		if prev, ok := byKey[k]; ok && prev != p {
			t.Fatalf("key %s in partitions %s and %s", k, prev, p)
		}
		byKey[k] = p
	}
	sortStrings(got)
	want := append([]string(nil), lines...)
	sortStrings(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("kcat consumed (-want +got):\n%s", diff)
	}

	// librdkafka's murmur2 partitioner put each key where franz-go's
	// default (Kafka's murmur2) would, and franz-go reads the same records.
	part := kgo.StickyKeyPartitioner(nil).ForTopic("kc")
	recs := consumeN(t, b, "kc", len(lines))
	for _, r := range recs {
		if want := part.Partition(&kgo.Record{Key: r.Key}, 3); itoa(int32(want)) != byKey[string(r.Key)] || int32(want) != r.Partition {
			t.Fatalf("key %s: kcat put it in %s, kgo read it from %d, murmur2 says %d", r.Key, byKey[string(r.Key)], r.Partition, want)
		}
	}

	// Metadata listing as JSON.
	var md struct {
		Brokers []struct {
			ID   int32  `json:"id"`
			Name string `json:"name"`
		} `json:"brokers"`
		Topics []struct {
			Topic      string            `json:"topic"`
			Partitions []json.RawMessage `json:"partitions"`
		} `json:"topics"`
	}
	if err := json.Unmarshal([]byte(run(t, "", kcat, "-b", b.Addr(), "-L", "-J")), &md); err != nil {
		t.Fatalf("kcat -L -J: %v", err)
	}
	if len(md.Brokers) != 1 || md.Brokers[0].Name != b.Addr() {
		t.Fatalf("kcat -L brokers: %+v, want one at %s", md.Brokers, b.Addr())
	}
	found := false
	for _, tp := range md.Topics {
		if tp.Topic == "kc" {
			found = len(tp.Partitions) == 3
		}
	}
	if !found {
		t.Fatalf("kcat -L: topic kc with 3 partitions missing: %+v", md.Topics)
	}
}

// pythonWithKafka is Debian's python3, which has python3-kafka; a python3
// earlier on PATH (pyenv) may not.
const pythonWithKafka = "/usr/bin/python3"

// requirePythonKafka checks that kafka-python is importable.
func requirePythonKafka(t *testing.T) string {
	t.Helper()
	py := pythonWithKafka
	if _, err := os.Stat(py); err != nil {
		py = requireTool(t, "python3", "apt-get install python3-kafka")
	}
	if err := exec.Command(py, "-c", "import kafka").Run(); err != nil {
		msg := "kafka-python not installed: apt-get install python3-kafka (" + err.Error() + ")"
		if os.Getenv("WEIR_REQUIRE_CLIENTS") == "1" {
			t.Fatalf("WEIR_REQUIRE_CLIENTS=1 but %s", msg)
		}
		t.Skip("SKIPPING: " + msg)
	}
	return py
}

// The producer example from the design notes, with only the bootstrap
// servers changed.
const kafkaPythonExample = `
import json, sys
from kafka import KafkaProducer
producer = KafkaProducer(bootstrap_servers=[sys.argv[1]],
    value_serializer=lambda v: json.dumps(v).encode('utf-8'), acks='all', retries=3)
producer.send('orders', key=b'order-123', value={'event_type': 'order.placed', 'order_id': 'order-123', 'total': 59.98})
producer.flush()
print(".".join(str(x) for x in producer.config['api_version']))
`

func TestKafkaPythonProducer(t *testing.T) {
	py := requirePythonKafka(t)
	b := startBroker(t, Options{})
	out := run(t, "", py, "-c", kafkaPythonExample, b.Addr())
	// kafka-python guesses the broker version from ApiVersions; from 0.11
	// on it writes RecordBatch v2, the only format Weir stores.
	var major, minor int
	if _, err := fmt.Sscanf(strings.TrimSpace(out), "%d.%d", &major, &minor); err != nil {
		t.Fatalf("kafka-python api_version %q: %v", out, err)
	}
	if major == 0 && minor < 11 {
		t.Fatalf("kafka-python inferred broker version %d.%d, too old for RecordBatch v2", major, minor)
	}
	recs := consumeN(t, b, "orders", 1)
	var value map[string]any
	if err := json.Unmarshal(recs[0].Value, &value); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"event_type": "order.placed", "order_id": "order-123", "total": 59.98}
	if diff := cmp.Diff(want, value); diff != "" {
		t.Fatalf("value (-want +got):\n%s", diff)
	}
	if string(recs[0].Key) != "order-123" {
		t.Fatalf("key %q", recs[0].Key)
	}
}

// confluentExample produces keyed records with librdkafka's idempotent
// producer through confluent-kafka-python.
const confluentExample = `
import sys
from confluent_kafka import Producer
errors = []
def report(err, msg):
    if err is not None:
        errors.append(str(err))
p = Producer({'bootstrap.servers': sys.argv[1], 'enable.idempotence': True, 'acks': 'all',
              'partitioner': 'murmur2_random'})
for i in range(200):
    p.produce('confluent', key=('k%d' % (i % 7)).encode(), value=('v%03d' % i).encode(), on_delivery=report)
left = p.flush(30)
if left or errors:
    sys.exit('undelivered %d, errors %s' % (left, errors))
`

// requireConfluentKafka checks that confluent-kafka-python is importable
// and returns the python to run it with.
func requireConfluentKafka(t *testing.T) string {
	t.Helper()
	py := pythonWithKafka
	if _, err := os.Stat(py); err != nil {
		py = requireTool(t, "python3", "apt-get install python3-confluent-kafka")
	}
	if err := exec.Command(py, "-c", "import confluent_kafka").Run(); err != nil {
		msg := "confluent-kafka-python not installed: apt-get install python3-confluent-kafka (" + err.Error() + ")"
		if os.Getenv("WEIR_REQUIRE_CLIENTS") == "1" {
			t.Fatalf("WEIR_REQUIRE_CLIENTS=1 but %s", msg)
		}
		t.Skip("SKIPPING: " + msg)
	}
	return py
}

func TestConfluentKafkaIdempotentProducer(t *testing.T) {
	py := requireConfluentKafka(t)
	b := startBroker(t, Options{DefaultPartitions: 3})
	run(t, "", py, "-c", confluentExample, b.Addr())
	recs := consumeN(t, b, "confluent", 200)
	var want []kv
	for i := range 200 {
		want = append(want, kv{fmt.Sprintf("k%d", i%7), fmt.Sprintf("v%03d", i)})
	}
	if diff := cmp.Diff(want, recordSet(recs)); diff != "" {
		t.Fatalf("records (-want +got):\n%s", diff)
	}
	// librdkafka's murmur2 partitioner agrees with franz-go's default
	// (Kafka's murmur2): same key, same partition.
	part := kgo.StickyKeyPartitioner(nil).ForTopic("confluent")
	for _, r := range recs {
		if want := int32(part.Partition(&kgo.Record{Key: r.Key}, 3)); want != r.Partition {
			t.Fatalf("key %s in partition %d; franz-go would pick %d", r.Key, r.Partition, want)
		}
	}
}

// storedCodecs reads partition 0 of topic from the start with a raw Fetch
// and returns the compression codec of every stored batch (the low three
// bits of a RecordBatch's attributes), as Weir keeps the batches as sent.
func storedCodecs(t *testing.T, b *Broker, topic string) []int16 {
	t.Helper()
	c := newClient(t, b)
	req := kmsg.NewPtrFetchRequest()
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, topicID(t, c, topic)
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), c)
	if err != nil {
		t.Fatalf("fetch %s: %v", topic, err)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("fetch %s: %v", topic, kerr.ErrorForCode(p.ErrorCode))
	}
	var codecs []int16
	for rest := p.RecordBatches; len(rest) > 0; {
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(rest); err != nil {
			t.Fatalf("fetch %s: stored batch: %v", topic, err)
		}
		codecs = append(codecs, rb.Attributes&0x7)
		rest = rest[12+int(rb.Length):]
	}
	return codecs
}

// TestKcatCompressionStored produces with kcat -z for each codec and checks
// that the stored batches carry that codec: librdkafka 2.0 compresses with
// gzip, snappy and lz4 only if the broker advertises Produce v0, and
// otherwise sends them uncompressed without a word.
func TestKcatCompressionStored(t *testing.T) {
	kcat := requireTool(t, "kcat", "apt-get install kcat")
	b := startBroker(t, Options{})
	codecs := []struct {
		name string
		code int16
	}{{"gzip", 1}, {"snappy", 2}, {"lz4", 3}, {"zstd", 4}}
	for _, cd := range codecs {
		topic := "z-" + cd.name
		var lines []string
		for i := range 50 {
			lines = append(lines, fmt.Sprintf("%s record %02d, repeated repeated repeated", cd.name, i))
		}
		run(t, strings.Join(lines, "\n")+"\n", kcat, "-b", b.Addr(), "-t", topic, "-p", "0", "-P",
			"-z", cd.name, "-X", "linger.ms=100")
		got := storedCodecs(t, b, topic)
		if len(got) == 0 {
			t.Fatalf("%s: no batches stored", cd.name)
		}
		for i, c := range got {
			if c != cd.code {
				t.Errorf("kcat -z %s: stored batch %d of %d has codec %d, want %d", cd.name, i, len(got), c, cd.code)
			}
		}
		// And the records read back whole.
		recs := consumeN(t, b, topic, len(lines))
		for i, r := range recs {
			if string(r.Value) != lines[i] {
				t.Fatalf("kcat -z %s: record %d is %q, want %q", cd.name, i, r.Value, lines[i])
			}
		}
	}
}

// confluentTxnExample runs librdkafka's transactional producer: three
// transactions on topic argv[2], the first and last committed, the middle
// one aborted.
const confluentTxnExample = `
import sys
from confluent_kafka import Producer
p = Producer({'bootstrap.servers': sys.argv[1], 'transactional.id': 'orders-tx'})
p.init_transactions(30)
for values, commit in ((['c1', 'c2'], True), (['a1', 'a2'], False), (['c3'], True)):
    p.begin_transaction()
    for v in values:
        p.produce(sys.argv[2], value=v.encode(), partition=0)
    if commit:
        p.commit_transaction(30)
    else:
        p.flush(30)
        p.abort_transaction(30)
`

// TestConfluentKafkaTransactions: librdkafka's transactional producer
// (init, begin, send, commit and abort) works against Weir, and kcat reads
// the topic at read_committed (only the committed records) and at
// read_uncommitted (the aborted ones too).
func TestConfluentKafkaTransactions(t *testing.T) {
	py := requireConfluentKafka(t)
	kcat := requireTool(t, "kcat", "apt-get install kcat")
	b := startBroker(t, Options{})
	if _, err := kadm.NewClient(newClient(t, b)).CreateTopic(testCtx(t), 1, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	run(t, "", py, "-c", confluentTxnExample, b.Addr(), "orders")
	waitLSO(t, b, "orders", 8) // 5 records and 3 markers
	read := func(iso string) []string {
		out := run(t, "", kcat, "-b", b.Addr(), "-C", "-t", "orders", "-o", "beginning", "-e", "-q",
			"-X", "isolation.level="+iso, "-f", "%s\n")
		return strings.Fields(out)
	}
	if diff := cmp.Diff([]string{"c1", "c2", "c3"}, read("read_committed")); diff != "" {
		t.Errorf("kcat at read_committed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"c1", "c2", "a1", "a2", "c3"}, read("read_uncommitted")); diff != "" {
		t.Errorf("kcat at read_uncommitted (-want +got):\n%s", diff)
	}
}
