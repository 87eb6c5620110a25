package runtime_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
	"github.com/weir-dev/weir/runtime"
	"github.com/weir-dev/weir/streams"
)

// flow produces orders in the background until halted. Its goroutine
// must not fail the test itself: a send error ends the flow and is
// reported by halt, on the test's goroutine.
type flow struct {
	stop chan struct{}
	errs chan error
	wg   sync.WaitGroup
}

func startFlow(t *testing.T, p *producer, base time.Time, seq *int) *flow {
	t.Helper()
	f := &flow{stop: make(chan struct{}), errs: make(chan error, 1)}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			select {
			case <-f.stop:
				return
			default:
			}
			if err := p.trySend(20, 30, base, seq); err != nil {
				f.errs <- err
				return
			}
		}
	}()
	return f
}

// halt stops the flow, waits for it and fails the test if a send failed.
func (f *flow) halt(t *testing.T) {
	t.Helper()
	close(f.stop)
	f.wg.Wait()
	select {
	case err := <-f.errs:
		t.Fatalf("background producer: %v", err)
	default:
	}
}

// waitTasks waits until the instances run every one of n tasks between
// them, each at least one.
func waitTasks(t *testing.T, n int, ins ...*instance) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		total, each := 0, true
		var got [][]streams.TaskID
		for _, in := range ins {
			in.checkRunning(t)
			ts := in.app.Tasks()
			got = append(got, ts)
			total += len(ts)
			each = each && len(ts) > 0
		}
		if total == n && each {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tasks never spread over %d instances: %v", len(ins), got)
		}
		time.Sleep(20 * time.Millisecond) // polling interval with a deadline
	}
}

// waitCountsWithin polls the output until, for every window, want <= got
// <= want + slack, and the windows are exactly those of the input.
func waitCountsWithin(t *testing.T, c *cluster, want, slack map[orders.WindowKey]int64) {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for {
		got := readCounts(t, c)
		var bad string
		for k, w := range want {
			if g := got[k]; g < w || g > w+slack[k] {
				bad += fmt.Sprintf("  %v: got %d, want %d..%d\n", k, g, w, w+slack[k])
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				bad += fmt.Sprintf("  %v: output has a window the input lacks\n", k)
			}
		}
		if bad == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("counts outside the at-least-once bound:\n%s", bad)
		}
		time.Sleep(250 * time.Millisecond) // polling interval with a deadline
	}
}

// TestMultiInstance runs the windowed count over a 6-partition topic on two
// instances, scales out to three and back in to two while orders flow,
// then kills one (no commit, no leave) and starts it again.
//
// The bound asserted: after clean rebalances every window's count equals
// the count computed from the input exactly (a revoked task commits before
// it moves, so nothing is replayed). After the kill, a window's count may
// exceed the input's by at most the number of its records that the killed
// instance had processed after its last commit (offsets from the group's
// committed offset up to the killed instance's position), because those
// are replayed on top of changelog writes that may already have landed;
// it is never below the input's count.
func TestMultiInstance(t *testing.T) {
	for _, cl := range clusters {
		t.Run(cl.name, func(t *testing.T) { testMultiInstance(t, cl.new(t, 6)) })
	}
}

func testMultiInstance(t *testing.T, c *cluster) {
	p := newProducer(t, c)
	base := time.UnixMilli(1_700_000_000_000).Truncate(time.Minute)
	seq := 0

	a := startInstance(t, c, t.TempDir())
	b := startInstance(t, c, t.TempDir())
	p.send(t, 300, 30, base, &seq)
	waitTasks(t, 6, a, b)
	waitCounts(t, c, p.expected())

	// Scale out while orders flow.
	f := startFlow(t, p, base, &seq)
	// The third instance commits rarely, so that when it is killed below it
	// has processed records past its last commit: the replay is real. Its
	// write cache is off so that its output does not wait for its commits.
	cDir := t.TempDir()
	cIn := startInstance(t, c, cDir, runtime.CommitInterval(time.Hour), runtime.NoWriteCache())
	waitTasks(t, 6, a, b, cIn)
	f.halt(t)
	waitCounts(t, c, p.expected())

	// Scale in while orders flow.
	f = startFlow(t, p, base, &seq)
	b.stop(t)
	waitTasks(t, 6, a, cIn)
	f.halt(t)
	waitCounts(t, c, p.expected())

	// Kill one instance mid-flow, once it has processed records since the
	// rebalance above, its last commit (its interval is out of reach): the
	// replay after the kill is then real, and asserted to be.
	commits := metricSum(t, cIn.app, "weir_commits_total")
	f = startFlow(t, p, base, &seq)
	cIn.waitMetricAbove(t, "weir_records_processed_total", metricSum(t, cIn.app, "weir_records_processed_total"))
	if n := metricSum(t, cIn.app, "weir_commits_total"); n != commits {
		t.Fatalf("the instance to kill committed (%v -> %v commits) while it should not", commits, n)
	}
	processed := cIn.app.Abandon()
	committed := committedOffsets(t, c)
	f.halt(t)
	slack := replayed(p, processed, committed)
	t.Logf("killed instance had %d records processed past its last commit", sum(slack))
	if sum(slack) == 0 {
		t.Fatalf("killed instance had processed nothing past its last commit (positions %v, committed %v): no replay to test", processed, committed)
	}
	waitTasks(t, 6, a)
	waitCountsWithin(t, c, p.expected(), slack)

	// Start it again on its old state directory.
	f = startFlow(t, p, base, &seq)
	again := startInstance(t, c, cDir)
	waitTasks(t, 6, a, again)
	f.halt(t)
	waitCountsWithin(t, c, p.expected(), slack)
	again.stop(t)
	a.stop(t)
}

func committedOffsets(t *testing.T, c *cluster) map[streams.TopicPartition]streams.Offset {
	t.Helper()
	return groupCommitted(t, c, "orders-app")
}

// groupCommitted returns group's committed offsets.
func groupCommitted(t *testing.T, c *cluster, group string) map[streams.TopicPartition]streams.Offset {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	out := map[streams.TopicPartition]streams.Offset{}
	resp.Each(func(o kadm.OffsetResponse) {
		out[streams.TopicPartition{Topic: o.Topic, Partition: streams.Partition(o.Partition)}] = streams.Offset(o.At)
	})
	return out
}

// replayed counts, per window, the input records between the committed
// offset and the killed instance's position.
func replayed(p *producer, processed, committed map[streams.TopicPartition]streams.Offset) map[orders.WindowKey]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[orders.WindowKey]int64{}
	for _, s := range p.sent {
		tp := streams.TopicPartition{Topic: orders.InputTopic, Partition: streams.Partition(s.partition)}
		pos, ok := processed[tp]
		if !ok {
			continue
		}
		from, ok := committed[tp]
		if !ok {
			from = 0
		}
		if streams.Offset(s.offset) >= from && streams.Offset(s.offset) < pos {
			out[s.key]++
		}
	}
	return out
}

func sum(m map[orders.WindowKey]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
