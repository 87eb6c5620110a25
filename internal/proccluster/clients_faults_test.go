package proccluster_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/internal/cli"
	"github.com/weir-dev/weir/internal/proccluster"
)

// resumeWithin is how soon after a leader's kill or shutdown every client
// must produce or consume again.
const resumeWithin = 10 * time.Second

// sessionTimeout is the brokers' --broker-session-timeout in the clients'
// test: a killed leader's partitions get a new leader once it expires.
const sessionTimeout = 3 * time.Second

// Python clients: each prints one line per record, flushed, so the test
// stamps it as it arrives.
const (
	// kafka-python's producer (acks=all, retries): "ok VALUE" per
	// acknowledged record, for argv[3] seconds, one every 10ms.
	kafkaPythonProducer = `
import sys, time
from kafka import KafkaProducer
boot, topic, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
p = KafkaProducer(bootstrap_servers=boot.split(','), acks='all', retries=1000000,
    retry_backoff_ms=100, request_timeout_ms=5000, max_in_flight_requests_per_connection=1,
    metadata_max_age_ms=1000, reconnect_backoff_max_ms=500)
def ok(v):
    return lambda md: print('ok', v, flush=True)
end, i = time.time() + secs, 0
while time.time() < end:
    v = 'kp-%d' % i
    p.send(topic, value=v.encode(), partition=0).add_callback(ok(v))
    i += 1
    time.sleep(0.01)
p.flush(60)
`
	// kafka-python's consumer, partition 0 from the start: "VALUE" per
	// record, until killed.
	kafkaPythonConsumer = `
import sys, logging
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format='%(asctime)s %(name)s %(message)s')
from kafka import KafkaConsumer, TopicPartition
boot, topic = sys.argv[1], sys.argv[2]
c = KafkaConsumer(bootstrap_servers=boot.split(','), enable_auto_commit=False,
    auto_offset_reset='earliest', metadata_max_age_ms=1000, reconnect_backoff_max_ms=500,
    request_timeout_ms=5000, fetch_max_wait_ms=200)
c.assign([TopicPartition(topic, 0)])
c.seek_to_beginning()
for m in c:
    print(m.value.decode(), flush=True)
`
	// confluent-kafka's consumer, partition 0 from the start: "VALUE" per
	// record, until killed.
	confluentConsumer = `
import sys
from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
boot, topic = sys.argv[1], sys.argv[2]
c = Consumer({'bootstrap.servers': boot, 'group.id': 'weir-faults', 'enable.auto.commit': False,
              'topic.metadata.refresh.interval.ms': 1000, 'fetch.wait.max.ms': 200})
c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
while True:
    m = c.poll(1.0)
    if m is None:
        continue
    if m.error():
        print(m.error(), file=sys.stderr, flush=True)
        continue
    print(m.value().decode(), flush=True)
`
	// confluent-kafka's idempotent producer: "ok VALUE" per delivered
	// record, for argv[3] seconds, one every 10ms.
	confluentProducer = `
import sys, time
from confluent_kafka import Producer
boot, topic, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
p = Producer({'bootstrap.servers': boot, 'enable.idempotence': True, 'acks': 'all',
              'message.timeout.ms': 60000, 'linger.ms': 5, 'topic.metadata.refresh.interval.ms': 1000})
def done(err, msg):
    if err is None:
        print('ok', msg.value().decode(), flush=True)
end, i = time.time() + secs, 0
while time.time() < end:
    p.produce(topic, value=('ck-%d' % i).encode(), partition=0, on_delivery=done)
    p.poll(0)
    i += 1
    time.sleep(0.01)
p.flush(60)
`
)

// stamped is one line of a client's output and when it arrived.
type stamped struct {
	at   time.Time
	line string
}

// clientProc is one client: an external program, or franz-go in-process,
// whose output lines are stamped as they arrive.
type clientProc struct {
	name     string
	producer bool // lines are "ok VALUE" acknowledgements, else consumed values
	cmd      *exec.Cmd
	stderr   strings.Builder

	mu    sync.Mutex
	lines []stamped
	done  chan struct{} // closed when its output ends
}

func (cp *clientProc) add(line string) {
	cp.mu.Lock()
	cp.lines = append(cp.lines, stamped{time.Now(), line})
	cp.mu.Unlock()
}

func (cp *clientProc) snapshot() []stamped {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return slices.Clone(cp.lines)
}

// values returns the values a producer had acknowledged or a consumer
// read.
func (cp *clientProc) values() []string {
	var out []string
	for _, l := range cp.snapshot() {
		if v, ok := strings.CutPrefix(l.line, "ok "); ok || !cp.producer {
			if !cp.producer {
				v = l.line
			}
			out = append(out, v)
		}
	}
	return out
}

// stall returns the longest the client went without a line between at and
// its first line after settled, false while it has none after settled.
func (cp *clientProc) stall(at, settled time.Time) (time.Duration, bool) {
	last, longest := at, time.Duration(0)
	for _, l := range cp.snapshot() {
		if !l.at.After(at) {
			continue
		}
		longest = max(longest, l.at.Sub(last))
		last = l.at
		if l.at.After(settled) {
			return longest, true
		}
	}
	return 0, false
}

func startClientProc(t *testing.T, name string, producer bool, prog string, args ...string) *clientProc {
	t.Helper()
	cp := &clientProc{name: name, producer: producer, cmd: exec.Command(prog, args...), done: make(chan struct{})}
	out, err := cp.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cp.cmd.Stderr = &cp.stderr
	if err := cp.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go cp.read(out)
	t.Cleanup(func() {
		_ = cp.cmd.Process.Kill()
		<-cp.done
		_ = cp.cmd.Wait()
		if t.Failed() {
			t.Logf("%s stderr (last 2000 bytes):\n%s", name, tailString(cp.stderr.String(), 2000))
		}
	})
	return cp
}

func (cp *clientProc) read(r io.Reader) {
	defer close(cp.done)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			cp.add(s)
		}
	}
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// lookTool finds an external client, skipping loudly (failing under
// WEIR_REQUIRE_CLIENTS=1) when it is missing.
func lookTool(t *testing.T, check func() error, install string) {
	t.Helper()
	if err := check(); err != nil {
		msg := fmt.Sprintf("not installed: %s (%v)", install, err)
		if os.Getenv("WEIR_REQUIRE_CLIENTS") == "1" {
			t.Fatalf("WEIR_REQUIRE_CLIENTS=1 but %s", msg)
		}
		t.Skip("SKIPPING: " + msg)
	}
}

// TestFaultClientsAcrossLeaderKill: three brokers as processes
// (--broker-session-timeout 3s), a topic of one partition with replication
// factor 3 (min.insync.replicas 2). franz-go (idempotent, acks=all),
// confluent-kafka (idempotent, acks=all), kcat (idempotent, acks=all, fed
// lines over stdin) and kafka-python (acks=all) produce to it, one record
// every 10ms each; franz-go, kafka-python,
// confluent-kafka and kcat consume it from the start. The automatic leader
// rebalance is off. The partition's leader, its preferred replica, is
// shut down (SIGTERM: a forced move by controlled shutdown) and restarted;
// then `weir cluster elect-leaders` (cli.ElectLeaders) moves the
// leadership back to it; then it is SIGKILLed and restarted. Across each,
// no client goes more
// than 10 s without a record acknowledged or read; at the end every
// consumer has read every record any producer saw acknowledged, those of
// the idempotent producers exactly once (kafka-python's is not idempotent:
// a retry of a record whose answer was lost writes it again), and all
// consumers read the same records in the same order. kcat, which names
// no record it acknowledges, must exit with status 0 having reported a
// delivery for every line and no failed one, and every consumer must read
// its lines once each in the order they were written.
func TestFaultClientsAcrossLeaderKill(t *testing.T) {
	faultTest(t)
	const py = "/usr/bin/python3"
	lookTool(t, func() error { return exec.Command(py, "-c", "import kafka, confluent_kafka").Run() },
		"apt-get install python3-kafka python3-confluent-kafka")
	kcat, err := exec.LookPath("kcat")
	lookTool(t, func() error { return err }, "apt-get install kcat")

	f := startFaultCluster(t, 3*time.Minute, "--broker-session-timeout", sessionTimeout.String(), "--leader-rebalance-interval=-1s")
	c, ctx, admin := f.c, f.ctx, f.admin
	const topic = "clients"
	h := f.createReplicated(1, topic)

	boot := strings.Join(c.Addrs(), ",")
	const produceFor = 40 * time.Second
	secs := fmt.Sprint(produceFor.Seconds())
	clients := []*clientProc{
		startClientProc(t, "kafka-python producer", true, py, "-c", kafkaPythonProducer, boot, topic, secs),
		startClientProc(t, "confluent-kafka producer", true, py, "-c", confluentProducer, boot, topic, secs),
		startClientProc(t, "kafka-python consumer", false, py, "-c", kafkaPythonConsumer, boot, topic),
		startClientProc(t, "confluent-kafka consumer", false, py, "-c", confluentConsumer, boot, topic),
		startClientProc(t, "kcat consumer", false, kcat, "-b", boot, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-u", "-q", "-f", "%s\n"),
	}
	kcProd := startKcatProducer(t, kcat, boot, topic, produceFor)
	fgProd, fgCons := startFranzGo(t, ctx, c, topic, produceFor)
	clients = append(clients, kcProd.clientProc, fgProd, fgCons)

	// Every client under way before the faults.
	eventually(t, 30*time.Second, "every client producing or consuming", func() error {
		for _, cp := range clients {
			if len(cp.snapshot()) < 20 {
				return fmt.Errorf("%s: %d lines", cp.name, len(cp.snapshot()))
			}
		}
		return nil
	})

	// check waits until every client has a line 2 s after the fault is
	// over (the leader's process gone) and checks none of them went
	// without one for longer than resumeWithin since the fault began.
	check := func(what string, at, gone time.Time) {
		t.Helper()
		settled := gone.Add(2 * time.Second)
		eventually(t, resumeWithin+10*time.Second, "every client resumes after "+what, func() error {
			var stalled []string
			for _, cp := range clients {
				if _, ok := cp.stall(at, settled); !ok {
					ls := cp.snapshot()
					stalled = append(stalled, fmt.Sprintf("%s (%d lines, the last at %s)", cp.name, len(ls), ls[len(ls)-1].at.UTC().Format("15:04:05.000")))
				}
			}
			if len(stalled) > 0 {
				return fmt.Errorf("not resumed: %s", strings.Join(stalled, ", "))
			}
			return nil
		})
		for _, cp := range clients {
			d, _ := cp.stall(at, settled)
			t.Logf("%s: %s went at most %v without a record", what, cp.name, d.Round(10*time.Millisecond))
			if d > resumeWithin {
				t.Errorf("%s: %s went %v without a record (want at most %v)", what, cp.name, d.Round(10*time.Millisecond), resumeWithin)
			}
		}
	}
	// The preferred replica: the first of the partition's assignment.
	var preferred int32
	eventually(t, 20*time.Second, "the partition's assignment", func() error {
		td, err := kadm.NewClient(admin).ListTopics(ctx, topic)
		if err == nil {
			err = td.Error()
		}
		if err != nil {
			return err
		}
		ps := td[topic].Partitions
		if len(ps) != 1 || len(ps[0].Replicas) != 3 {
			return fmt.Errorf("partitions %+v", ps)
		}
		preferred = ps[0].Replicas[0]
		return nil
	})
	const (
		shutDown = iota // SIGTERM: controlled shutdown moves the leadership
		elect           // weir cluster elect-leaders moves it back to the preferred replica
		kill            // SIGKILL
	)
	for i, fault := range []int{shutDown, elect, kill} {
		var leader int32
		eventually(t, 20*time.Second, "a leader with a full ISR", func() error {
			l, isr, err := h.leaderOf(0)
			if err == nil && (l < 1 || len(isr) != 3) {
				err = fmt.Errorf("leader %d isr %v", l, isr)
			}
			leader = l
			return err
		})
		var what string
		at := time.Now()
		switch fault {
		case shutDown:
			what = fmt.Sprintf("fault %d: leader %d shut down", i+1, leader)
			c.Node(leader).Terminate()
		case elect:
			if leader == preferred {
				t.Fatalf("the preferred replica %d leads again before elect-leaders (the automatic rebalance is off)", preferred)
			}
			what = fmt.Sprintf("fault %d: elect-leaders moves the leadership from %d to %d", i+1, leader, preferred)
			var buf bytes.Buffer
			if err := cli.ElectLeaders(ctx, admin, &buf, cli.Output{}, topic, 0, false); err != nil {
				t.Fatalf("elect-leaders: %v\n%s", err, buf.String())
			}
			eventually(t, 20*time.Second, "the preferred replica leading", func() error {
				l, _, err := h.leaderOf(0)
				if err == nil && l != preferred {
					err = fmt.Errorf("leader %d", l)
				}
				return err
			})
		case kill:
			what = fmt.Sprintf("fault %d: leader %d killed", i+1, leader)
			c.Node(leader).Kill()
		}
		gone := time.Now()
		t.Logf("%s at %s", what, at.UTC().Format("15:04:05.000"))
		check(what, at, gone)
		if fault != elect {
			c.Node(leader).Restart()
		}
	}

	// The producers end by themselves; the consumers then read the rest.
	for _, cp := range clients {
		if !cp.producer {
			continue
		}
		select {
		case <-cp.done:
		case <-time.After(produceFor + 70*time.Second):
			t.Fatalf("%s did not finish", cp.name)
		}
		if cp.cmd != nil {
			if err := cp.cmd.Wait(); err != nil {
				t.Fatalf("%s: %v\n%s", cp.name, err, tailString(cp.stderr.String(), 2000))
			}
		}
	}
	kcProd.checkAllDelivered(t)
	var acked []string
	for _, cp := range clients {
		if cp.producer {
			vs := cp.values()
			t.Logf("%s: %d acknowledged", cp.name, len(vs))
			acked = append(acked, vs...)
		}
	}
	for _, cp := range clients {
		if cp.producer {
			continue
		}
		eventually(t, 60*time.Second, cp.name+" reads every acknowledged record", func() error {
			read := map[string]int{}
			for _, v := range cp.values() {
				read[v]++
			}
			missing := 0
			for _, v := range acked {
				if read[v] == 0 {
					missing++
				}
			}
			if missing > 0 {
				return fmt.Errorf("%d of %d acknowledged records not read", missing, len(acked))
			}
			return nil
		})
		read := map[string]int{}
		for _, v := range cp.values() {
			read[v]++
		}
		dups := 0
		for _, v := range acked {
			switch {
			case read[v] > 1 && strings.HasPrefix(v, "kp-"):
				dups++ // kafka-python's producer is not idempotent: a retry may write twice
			case read[v] != 1:
				t.Errorf("%s read %q %d times, want once", cp.name, v, read[v])
			}
		}
		t.Logf("%s: read %d records (%d of kafka-python's more than once)", cp.name, len(cp.values()), dups)
		// kcat's lines in the order it was fed them.
		next := 0
		for _, v := range cp.values() {
			if n, ok := kcatLineNumber(v); ok {
				if n != next {
					t.Errorf("%s read kcat's line %d where line %d was due", cp.name, n, next)
				}
				next = n + 1
			}
		}
	}
	// Every consumer read the same log: the same records in the same order.
	var first *clientProc
	for _, cp := range clients {
		if cp.producer {
			continue
		}
		if first == nil {
			first = cp
			continue
		}
		a, b := first.values(), cp.values()
		n := min(len(a), len(b))
		for i := range n {
			if a[i] != b[i] {
				t.Fatalf("record %d: %s read %q, %s read %q", i, first.name, a[i], cp.name, b[i])
			}
		}
	}
}

// startFranzGo starts franz-go's idempotent acks=all producer (one record
// every 10ms for d) and a consumer of partition 0 from the start, as
// clientProcs.
func startFranzGo(t *testing.T, ctx context.Context, c *proccluster.Cluster, topic string, d time.Duration) (*clientProc, *clientProc) {
	t.Helper()
	prod := &clientProc{name: "franz-go producer", producer: true, done: make(chan struct{})}
	cons := &clientProc{name: "franz-go consumer", done: make(chan struct{})}
	// NB: uncompressed: kafka-python reads snappy (franz-go's default)
	// only with python3-snappy, which the consumer's host may lack.
	pcl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordDeliveryTimeout(60*time.Second), kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ccl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithCancel(ctx)
	go func() {
		defer close(prod.done)
		end := time.Now().Add(d)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; time.Now().Before(end); i++ {
			select {
			case <-cctx.Done():
				return
			case <-tick.C:
			}
			v := fmt.Sprintf("fg-%d", i)
			pcl.Produce(cctx, &kgo.Record{Partition: 0, Value: []byte(v)}, func(_ *kgo.Record, err error) {
				if err == nil {
					prod.add("ok " + v)
				}
			})
		}
		fctx, fcancel := context.WithTimeout(cctx, 60*time.Second)
		_ = pcl.Flush(fctx)
		fcancel()
	}()
	go func() {
		defer close(cons.done)
		for cctx.Err() == nil {
			fs := ccl.PollFetches(cctx)
			fs.EachRecord(func(r *kgo.Record) { cons.add(string(r.Value)) })
		}
	}()
	t.Cleanup(func() {
		ccancel()
		<-cons.done
		<-prod.done
		ccl.Close()
		pcl.Close()
	})
	return prod, cons
}

// kcatProducer is kcat -P fed lines "kc-N" over its stdin. kcat prints no
// value per acknowledged record; at verbosity 3 (-v -v) librdkafka's
// delivery callback in kcat prints "Message delivered to partition P
// (offset O) on broker B" for each record delivered and, at any
// verbosity, "Delivery failed for message: ERR" for each it gave up on,
// after which kcat exits with status 1. Each delivery line is stamped as
// "ok kc-K", K counting the delivery lines: which line it acknowledges is
// unknown, so the values stand for the acknowledged lines only once
// checkAllDelivered has found as many delivery lines as lines written, no
// failure, and exit status 0, when every line written was acknowledged.
type kcatProducer struct {
	*clientProc
	written  atomic.Int64 // lines written to kcat's stdin
	fedDone  chan struct{}
	failures []string // "Delivery failed" lines, under clientProc.mu
}

// startKcatProducer starts kcat as an idempotent acks=all producer to
// partition 0 of topic and writes it one line every 10ms for d, then
// closes its stdin: kcat then waits for every record's delivery and exits.
func startKcatProducer(t *testing.T, kcat, boot, topic string, d time.Duration) *kcatProducer {
	t.Helper()
	kp := &kcatProducer{clientProc: &clientProc{name: "kcat producer", producer: true, done: make(chan struct{})}, fedDone: make(chan struct{})}
	kp.cmd = exec.Command(kcat, "-b", boot, "-P", "-t", topic, "-p", "0", "-v", "-v",
		"-X", "enable.idempotence=true", "-X", "acks=all", "-X", "message.timeout.ms=60000",
		"-X", "linger.ms=5", "-X", "topic.metadata.refresh.interval.ms=1000")
	stdin, err := kp.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := kp.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := kp.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", kp.name, err)
	}
	go kp.readReports(stderr)
	stop := make(chan struct{})
	go func() {
		defer close(kp.fedDone)
		defer stdin.Close()
		end := time.Now().Add(d)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; time.Now().Before(end); i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := fmt.Fprintf(stdin, "kc-%d\n", i); err != nil {
				return // kcat exited; checkAllDelivered says so
			}
			kp.written.Add(1)
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-kp.fedDone
		_ = kp.cmd.Process.Kill()
		<-kp.done
		_ = kp.cmd.Wait()
		if t.Failed() {
			t.Logf("%s stderr, other than deliveries (last 2000 bytes):\n%s", kp.name, tailString(kp.stderr.String(), 2000))
		}
	})
	return kp
}

// readReports stamps kcat's delivery lines and keeps its other output.
func (kp *kcatProducer) readReports(r io.Reader) {
	defer close(kp.done)
	sc := bufio.NewScanner(r)
	delivered := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.Contains(line, "Message delivered to partition"):
			kp.add(fmt.Sprintf("ok kc-%d", delivered))
			delivered++
		case strings.Contains(line, "Delivery failed"):
			kp.mu.Lock()
			kp.failures = append(kp.failures, line)
			kp.mu.Unlock()
			fallthrough
		default:
			kp.mu.Lock()
			kp.stderr.WriteString(line + "\n")
			kp.mu.Unlock()
		}
	}
}

// checkAllDelivered, once kcat has exited, fails the test unless it
// exited with status 0, reported no failed delivery, and reported as many
// deliveries as lines were written to it.
func (kp *kcatProducer) checkAllDelivered(t *testing.T) {
	t.Helper()
	<-kp.fedDone
	<-kp.done
	kp.mu.Lock()
	failures, stderr := slices.Clone(kp.failures), kp.stderr.String()
	kp.mu.Unlock()
	if len(failures) > 0 {
		t.Fatalf("%s: %d deliveries failed, the first: %s", kp.name, len(failures), failures[0])
	}
	if st := kp.cmd.ProcessState; st == nil || !st.Success() {
		t.Fatalf("%s: exit %v (wanted status 0: every record delivered)\n%s", kp.name, st, tailString(stderr, 2000))
	}
	if got, want := len(kp.values()), int(kp.written.Load()); got != want {
		t.Fatalf("%s: %d deliveries reported for %d lines written", kp.name, got, want)
	}
	t.Logf("%s: every one of %d lines delivered, exit status 0", kp.name, kp.written.Load())
}

// kcatLineNumber returns N of kcat's line "kc-N".
func kcatLineNumber(v string) (int, bool) {
	s, ok := strings.CutPrefix(v, "kc-")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}
