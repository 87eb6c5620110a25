package protocol

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// requireTool returns the path of an external client, or skips loudly
// (fails when WEIR_REQUIRE_CLIENTS=1, as CI sets).
func requireTool(t *testing.T, path, why string) string {
	t.Helper()
	p, err := exec.LookPath(path)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("SKIPPING: %s not found (%v); %s", path, err, why)
	if os.Getenv("WEIR_REQUIRE_CLIENTS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// lines runs cmd and returns a channel of its stdout lines; the process is
// killed at test cleanup if still running.
func lines(t *testing.T, cmd *exec.Cmd) <-chan string {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("%s stderr:\n%s", cmd.Path, stderr.String())
		}
	})
	return ch
}

// collect reads lines until want of them arrived or the deadline passes.
func collect(t *testing.T, ch <-chan string, want int, d time.Duration) []string {
	t.Helper()
	var got []string
	timeout := time.After(d)
	for len(got) < want {
		select {
		case l, ok := <-ch:
			if !ok {
				t.Fatalf("client exited after %d of %d lines: %q", len(got), want, got)
			}
			got = append(got, l)
		case <-timeout:
			t.Fatalf("timed out after %d of %d lines: %q", len(got), want, got)
		}
	}
	return got
}

// waitCommittedAtEnd waits until group's committed offsets equal the log
// end of every partition of topic.
func waitCommittedAtEnd(t *testing.T, b *groupBroker, groupID, topic string) {
	t.Helper()
	adm := kadm.NewClient(b.client())
	waitFor(t, groupID+" to commit up to the log end", 30*time.Second, func() bool {
		ctx := context.Background()
		offs, err := adm.FetchOffsets(ctx, groupID)
		if err != nil {
			return false
		}
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return false
		}
		ok := true
		ends.Each(func(e kadm.ListedOffset) {
			if o, found := offs.Lookup(topic, e.Partition); e.Offset > 0 && (!found || o.At != e.Offset) {
				ok = false
			}
		})
		return ok
	})
}

type orderEvent struct {
	EventType string  `json:"event_type"`
	OrderID   string  `json:"order_id"`
	Total     float64 `json:"total"`
}

func produceOrders(t *testing.T, b *groupBroker, from, to int) {
	t.Helper()
	cl := b.client(kgo.DefaultProduceTopic("orders"))
	for i := from; i < to; i++ {
		v, _ := json.Marshal(orderEvent{EventType: "order.placed", OrderID: "order-" + strconv.Itoa(i), Total: 59.98})
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Key: []byte("order-" + strconv.Itoa(i)), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// The design notes' kafka-python consumer, unchanged but for
// bootstrap_servers (and a process_event that prints), reads what was
// produced; a second run after more records reads only the new ones.
func TestKafkaPythonConsumer(t *testing.T) {
	py := requireTool(t, "/usr/bin/python3", "the kafka-python consumer example needs Debian's python3-kafka")
	if err := exec.Command(py, "-c", "import kafka").Run(); err != nil {
		requireTool(t, "python3-kafka-module-missing", "python3-kafka (kafka-python 2.0.2) is not installed")
	}
	b := startGroupBroker(t, testGroupOptions())
	b.createTopic("orders", 3)
	script := filepath.Join(t.TempDir(), "consumer.py")
	if err := os.WriteFile(script, []byte(`import json, sys
from kafka import KafkaConsumer

def process_event(event):
    print(event['order_id'], flush=True)

consumer = KafkaConsumer('orders', bootstrap_servers=[sys.argv[1]], group_id='analytics-service',
    auto_offset_reset='earliest', enable_auto_commit=False,
    value_deserializer=lambda m: json.loads(m.decode('utf-8')))
for msg in consumer:
    process_event(msg.value)
    consumer.commit()
`), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(from, to int) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		start := time.Now()
		ch := lines(t, exec.CommandContext(ctx, py, script, b.Addr))
		got := collect(t, ch, to-from, 60*time.Second)
		t.Logf("read %d records in %v", len(got), time.Since(start))
		waitCommittedAtEnd(t, b, "analytics-service", "orders")
		t.Logf("committed after %v", time.Since(start))
		cancel()
		for l := range ch {
			got = append(got, l)
		}
		want := map[string]bool{}
		for i := from; i < to; i++ {
			want["order-"+strconv.Itoa(i)] = true
		}
		for _, l := range got {
			if !want[l] {
				t.Errorf("run over orders %d-%d read %q", from, to-1, l)
			}
			delete(want, l)
		}
		if len(want) > 0 {
			t.Errorf("run over orders %d-%d missed %d records", from, to-1, len(want))
		}
	}
	produceOrders(t, b, 0, 20)
	run(0, 20)
	produceOrders(t, b, 20, 30)
	run(20, 30)
}

// kcat's balanced consumer (librdkafka) consumes and commits.
func TestKcatBalancedConsumer(t *testing.T) {
	kcat := requireTool(t, "kcat", "the librdkafka balanced consumer test needs Debian's kcat")
	b := startGroupBroker(t, testGroupOptions())
	b.createTopic("orders", 3)
	produceOrders(t, b, 0, 40)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, "-b", b.Addr, "-G", "kcat-group", "-c", "40", "-f", "%k\n",
		"-X", "auto.offset.reset=earliest", "-X", "auto.commit.interval.ms=100", "orders")
	ch := lines(t, cmd)
	got := collect(t, ch, 40, 60*time.Second)
	seen := map[string]bool{}
	for _, k := range got {
		seen[k] = true
	}
	if len(seen) != 40 {
		t.Errorf("kcat read %d distinct keys, want 40", len(seen))
	}
	waitCommittedAtEnd(t, b, "kcat-group", "orders")
}
