package broker

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClusterKcat: kcat produces to and consumes from a 3-node cluster
// whose topic's partition leaders sit on different brokers, bootstrapping
// from one broker only; every record comes back from the partition it was
// produced to.
func TestClusterKcat(t *testing.T) {
	kcat := requireTool(t, "kcat", "apt-get install kcat")
	c := startTestCluster(t, 3)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const parts = 6
	eventually(t, 15*time.Second, "create kc3 with replication factor 3", func() error {
		_, err := adm.CreateTopic(ctx, parts, 3, nil, "kc3")
		return err
	})
	leaders := map[int32]bool{}
	eventually(t, 10*time.Second, "kc3's leaders on 2 or more brokers", func() error {
		md, err := adm.Metadata(ctx, "kc3")
		if err != nil {
			return err
		}
		clear(leaders)
		for _, p := range md.Topics["kc3"].Partitions {
			if p.Leader >= 0 {
				leaders[p.Leader] = true
			}
		}
		if len(md.Topics["kc3"].Partitions) != parts || len(leaders) < 2 {
			return fmt.Errorf("partitions %v, leaders %v", md.Topics["kc3"].Partitions, leaders)
		}
		return nil
	})
	t.Logf("kc3 leaders on brokers %v", leaders)

	seed := c.brokers[0].Addr()
	want := map[int][]string{}
	for p := range parts {
		var lines []string
		for i := range 5 {
			lines = append(lines, fmt.Sprintf("p%d-r%d", p, i))
		}
		want[p] = lines
		run(t, strings.Join(lines, "\n")+"\n", kcat, "-b", seed, "-t", "kc3", "-P", "-p", fmt.Sprint(p))
	}
	got := map[int][]string{}
	for p := range parts {
		out := run(t, "", kcat, "-b", seed, "-C", "-t", "kc3", "-p", fmt.Sprint(p), "-o", "beginning", "-e", "-q", "-f", "%s\n")
		got[p] = strings.Fields(out)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("kcat consumed per partition (-want +got):\n%s", diff)
	}
}

// kafkaPythonRoundTrip produces 5 records to each partition of a topic
// with kafka-python's producer, then reads each partition from the start
// with its consumer (assigned, no group) and prints "partition value" per
// record.
const kafkaPythonRoundTrip = `
import sys
from kafka import KafkaProducer, KafkaConsumer, TopicPartition
boot, topic, parts = sys.argv[1], sys.argv[2], int(sys.argv[3])
producer = KafkaProducer(bootstrap_servers=[boot], acks='all', retries=5)
for p in range(parts):
    for i in range(5):
        producer.send(topic, value=('p%d-r%d' % (p, i)).encode(), partition=p).get(timeout=30)
producer.flush()
producer.close()
for p in range(parts):
    c = KafkaConsumer(bootstrap_servers=[boot], enable_auto_commit=False, consumer_timeout_ms=10000)
    tp = TopicPartition(topic, p)
    c.assign([tp])
    c.seek_to_beginning(tp)
    n = 0
    for m in c:
        print(m.partition, m.value.decode())
        n += 1
        if n == 5:
            break
    c.close()
`

// TestClusterKafkaPython: kafka-python's producer and consumer against a
// 3-node cluster whose partition leaders sit on different brokers; every
// record comes back from the partition it was produced to.
func TestClusterKafkaPython(t *testing.T) {
	py := requirePythonKafka(t)
	c := startTestCluster(t, 3)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const parts = 6
	eventually(t, 15*time.Second, "create kp3 with replication factor 3", func() error {
		_, err := adm.CreateTopic(ctx, parts, 3, nil, "kp3")
		return err
	})
	eventually(t, 10*time.Second, "kp3's leaders on 2 or more brokers", func() error {
		md, err := adm.Metadata(ctx, "kp3")
		if err != nil {
			return err
		}
		leaders := map[int32]bool{}
		for _, p := range md.Topics["kp3"].Partitions {
			leaders[p.Leader] = true
		}
		if len(md.Topics["kp3"].Partitions) != parts || len(leaders) < 2 {
			return fmt.Errorf("partitions %v", md.Topics["kp3"].Partitions)
		}
		return nil
	})
	out := run(t, "", py, "-c", kafkaPythonRoundTrip, c.brokers[1].Addr(), "kp3", fmt.Sprint(parts))
	want, got := map[string][]string{}, map[string][]string{}
	for p := range parts {
		for i := range 5 {
			want[fmt.Sprint(p)] = append(want[fmt.Sprint(p)], fmt.Sprintf("p%d-r%d", p, i))
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		p, v, _ := strings.Cut(l, " ")
		got[p] = append(got[p], v)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("kafka-python consumed per partition (-want +got):\n%s", diff)
	}
}
