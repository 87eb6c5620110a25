package broker

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// confluentAcrossLeaderMove produces "v0".."v(n-1)" to partition 0 of a
// topic with confluent-kafka's idempotent producer (acks=all), one every
// few milliseconds, printing "ok VALUE" per delivered record, and exits
// non-zero if any record is not delivered within the flush timeout.
const confluentAcrossLeaderMove = `
import sys, time
from confluent_kafka import Producer
boot, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
p = Producer({'bootstrap.servers': boot, 'enable.idempotence': True, 'acks': 'all',
              'message.timeout.ms': 40000, 'linger.ms': 5})
failed = []
def done(err, msg):
    if err is not None:
        failed.append(str(err))
    else:
        print('ok', msg.value().decode(), flush=True)
for i in range(n):
    p.produce(topic, value=('v%d' % i).encode(), partition=0, on_delivery=done)
    p.poll(0)
    time.sleep(0.01)
left = p.flush(45)
if left or failed:
    sys.exit('undelivered %d, failed %s' % (left, failed[:3]))
`

// TestClusterClientsAcrossLeaderMove: confluent-kafka's idempotent
// producer keeps producing to a replicated partition while its leader
// shuts down (the controller moves the leadership to an ISR member); every
// record it saw delivered is then read exactly once by kcat, from the new
// leader.
func TestClusterClientsAcrossLeaderMove(t *testing.T) {
	py := requireConfluentKafka(t)
	kcat := requireTool(t, "kcat", "apt-get install kcat")
	c := startReplicatedCluster(t, 3, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	createTopicEventually(t, ctx, kadm.NewClient(cl), "mv", 1, nil, 15*time.Second)
	var leader int32
	eventually(t, 15*time.Second, "a leader with a full ISR", func() error {
		l, _, isr, err := partitionLeader(ctx, cl, 1, "mv", 0)
		if err == nil && (l < 1 || len(isr) != 3) {
			err = fmt.Errorf("leader %d isr %v", l, isr)
		}
		leader = l
		return err
	})
	var seeds []string
	for i, b := range c.brokers {
		if int32(i+1) != leader {
			seeds = append(seeds, b.Addr()) // the producer must find the cluster after the move
		}
	}
	const n = 600
	cmd := exec.CommandContext(ctx, py, "-c", confluentAcrossLeaderMove, strings.Join(seeds, ","), "mv", fmt.Sprint(n))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	delivered := map[string]bool{}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "ok "); ok {
				mu.Lock()
				delivered[v] = true
				mu.Unlock()
			}
		}
	}()
	eventually(t, 30*time.Second, "first deliveries", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(delivered) < 100 {
			return fmt.Errorf("%d delivered", len(delivered))
		}
		return nil
	})
	c.nodes.Stop(leader)
	<-readDone
	if err := cmd.Wait(); err != nil {
		t.Fatalf("confluent-kafka producer across the leader move: %v\n%s", err, stderr.String())
	}
	if len(delivered) != n {
		t.Fatalf("%d of %d records delivered", len(delivered), n)
	}
	out := run(t, "", kcat, "-b", seeds[0], "-C", "-t", "mv", "-p", "0", "-o", "beginning", "-e", "-q", "-f", "%s\n")
	seen := map[string]bool{}
	for _, v := range strings.Fields(out) {
		if seen[v] {
			t.Fatalf("kcat read %q twice", v)
		}
		seen[v] = true
	}
	for v := range delivered {
		if !seen[v] {
			t.Fatalf("record %q, delivered before or across the leader move, is not in the log", v)
		}
	}
}
