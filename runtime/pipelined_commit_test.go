package runtime_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
	"github.com/weir-dev/weir/runtime"
	"github.com/weir-dev/weir/streams"
)

// ackGate sits between an application's clients and the broker, on every
// connection they dial. While it holds, a Produce request the clients
// write is kept back instead of sent, with everything written after it on
// the same connection (so the connection's order is kept): the broker has
// not seen those records, so the producer has no acknowledgement for
// them. Release sends what was kept; closing a connection drops what it
// kept, as a crash would. It also records every OffsetCommit request the
// clients send, and whether produce requests were held at that moment.
type ackGate struct {
	mu sync.Mutex
	// holding is set between Hold and Release. Guarded by mu.
	holding bool
	// conns are the open connections. Guarded by mu.
	conns map[*gatedConn]bool
	// held counts the Produce requests kept back since Hold; kept counts
	// the requests kept back now, over every connection. Guarded by mu.
	held, kept int
	// commits are the OffsetCommit requests sent, in order. Guarded by mu.
	commits []sentCommit
}

// sentCommit is an OffsetCommit request as written to the broker.
type sentCommit struct {
	offsets map[streams.TopicPartition]streams.Offset
	// whileHeld is set if produce requests were held back when it was sent.
	whileHeld bool
}

func newAckGate() *ackGate { return &ackGate{conns: map[*gatedConn]bool{}} }

func (g *ackGate) dial(ctx context.Context, network, host string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	gc := &gatedConn{Conn: c, g: g}
	g.mu.Lock()
	g.conns[gc] = true
	g.mu.Unlock()
	return gc, nil
}

// Hold starts keeping Produce requests back.
func (g *ackGate) Hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.holding, g.held = true, 0
}

// Held returns how many Produce requests were kept back since Hold.
func (g *ackGate) Held() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.held
}

// Release stops holding and sends, connection by connection and in order,
// what was kept back.
func (g *ackGate) Release() error {
	g.mu.Lock()
	g.holding = false
	conns := make([]*gatedConn, 0, len(g.conns))
	for c := range g.conns {
		conns = append(conns, c)
	}
	g.mu.Unlock()
	var errs []error
	for _, c := range conns {
		// NB: c.mu before g.mu, as in Write: a request written meanwhile
		// queues behind the kept ones.
		c.mu.Lock()
		g.mu.Lock()
		kept := c.kept
		c.kept = nil
		g.kept -= len(kept)
		g.mu.Unlock()
		for _, f := range kept {
			if _, err := c.Conn.Write(f); err != nil {
				errs = append(errs, err)
				break
			}
		}
		c.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Commits returns the OffsetCommit requests sent so far.
func (g *ackGate) Commits() []sentCommit {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]sentCommit(nil), g.commits...)
}

// gatedConn is one client connection through the gate. Requests are
// framed (a 4-byte length, then the request header and body), so Write
// cuts what it is given into whole requests before it forwards or keeps
// them.
type gatedConn struct {
	net.Conn
	g *ackGate

	// mu orders writes to Conn (Write, Release). Lock order: mu, then
	// g.mu.
	mu sync.Mutex
	// partial is the start of a request not yet written in full. Guarded
	// by mu.
	partial []byte
	// kept are whole requests held back. Guarded by g.mu.
	kept [][]byte
}

func (c *gatedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partial = append(c.partial, p...)
	for len(c.partial) >= 4 {
		n := int(binary.BigEndian.Uint32(c.partial))
		if len(c.partial) < 4+n {
			break
		}
		frame := append([]byte(nil), c.partial[:4+n]...)
		c.partial = c.partial[4+n:]
		if err := c.pass(frame); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// pass forwards or keeps one whole request. Called with c.mu held.
func (c *gatedConn) pass(frame []byte) error {
	key := int16(binary.BigEndian.Uint16(frame[4:]))
	g := c.g
	g.mu.Lock()
	keep := len(c.kept) > 0 || (g.holding && key == kmsg.Produce.Int16())
	if keep {
		c.kept = append(c.kept, frame)
		g.kept++
		if key == kmsg.Produce.Int16() {
			g.held++
		}
	}
	if key == kmsg.OffsetCommit.Int16() {
		offs, err := offsetCommitOf(frame[4:])
		if err != nil {
			g.mu.Unlock()
			return err
		}
		g.commits = append(g.commits, sentCommit{offsets: offs, whileHeld: g.kept > 0})
	}
	g.mu.Unlock()
	if keep {
		return nil
	}
	_, err := c.Conn.Write(frame)
	return err
}

func (c *gatedConn) Close() error {
	c.mu.Lock()
	g := c.g
	g.mu.Lock()
	delete(g.conns, c)
	g.kept -= len(c.kept)
	c.kept = nil // never sent: lost with the connection
	g.mu.Unlock()
	c.mu.Unlock()
	return c.Conn.Close()
}

// offsetCommitOf parses an OffsetCommit request (header and body, without
// the length) into the offsets it commits.
func offsetCommitOf(b []byte) (map[streams.TopicPartition]streams.Offset, error) {
	if len(b) < 10 {
		return nil, errors.New("short request")
	}
	req := kmsg.NewPtrOffsetCommitRequest()
	req.SetVersion(int16(binary.BigEndian.Uint16(b[2:])))
	b = b[8:] // key, version, correlation id
	if n := int16(binary.BigEndian.Uint16(b)); n > 0 {
		b = b[2+int(n):] // client id
	} else {
		b = b[2:]
	}
	if req.IsFlexible() {
		// Request header tagged fields.
		tags, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, errors.New("bad header tags")
		}
		b = b[k:]
		for range tags {
			_, k := binary.Uvarint(b)
			if k <= 0 {
				return nil, errors.New("bad header tag")
			}
			b = b[k:]
			size, k := binary.Uvarint(b)
			if k <= 0 || uint64(len(b)-k) < size {
				return nil, errors.New("bad header tag size")
			}
			b = b[k+int(size):]
		}
	}
	if err := req.ReadFrom(b); err != nil {
		return nil, fmt.Errorf("offset commit request: %w", err)
	}
	out := map[streams.TopicPartition]streams.Offset{}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			out[streams.TopicPartition{Topic: t.Topic, Partition: streams.Partition(p.Partition)}] = streams.Offset(p.Offset)
		}
	}
	return out, nil
}

// TestPipelinedCommit runs the windowed count at least once against an
// in-process Weir broker, with the application's connections through an
// ackGate, and checks the pipelined commit end to end:
//
//   - processing goes on while a commit's changelog and output records
//     are unacknowledged (held back by the gate): orders sent after the
//     commit's flush are processed before the gate lets anything through;
//   - the input offsets the commit covers are committed only after those
//     records are acknowledged: no OffsetCommit beyond the offsets
//     committed before the hold is sent while the gate holds, and once it
//     releases the offsets move and the counts are exact;
//   - a crash between the two (the flush's records never reach the broker,
//     the offsets were not committed) replays: a new instance, restoring
//     from the changelog, processes those orders again, and every window's
//     count is at least the input's and at most the input's plus what was
//     replayed (the at-least-once bound of TestMultiInstance).
//
// With the commit not pipelined (waiting for its records before
// processing on), the first check fails; with the offsets committed
// before the records are acknowledged, the second and third fail.
func TestPipelinedCommit(t *testing.T) {
	c := newWeir(t, 2)
	p := newProducer(t, c)
	base := time.UnixMilli(1_700_000_000_000).Truncate(time.Minute)
	seq := 0
	g := newAckGate()
	// NB: a commit due while the last is pending waits for it (at most
	// CommitTimeout): the interval leaves the orders sent after a commit's
	// flush time to be processed before the next commit is due.
	interval := 4 * time.Second
	in := startInstance(t, c, t.TempDir(), runtime.ClientOptions(kgo.Dialer(g.dial)),
		runtime.CommitInterval(interval), runtime.CommitTimeout(time.Minute))
	// NB: registered after startInstance's Close, so run before it: a
	// failing test does not leave Close waiting for held records.
	t.Cleanup(func() { _ = g.Release() })
	in.waitMetricAbove(t, "weir_active_tasks", 1)

	// A: processed and committed with nothing held.
	p.send(t, 200, 20, base, &seq)
	in.waitCountsRunning(t, c, p.expected())
	endA := inputEnds(t, c)
	waitCommitted(t, c, endA)

	// B: sent with the gate holding; its commit's flush is held back.
	g.Hold()
	p.send(t, 200, 20, base, &seq)
	in.waitMetricAbove(t, "weir_records_processed_total", 399)
	waitFor(t, 2*interval+10*time.Second, "a commit's flush held back", func() error {
		if g.Held() == 0 {
			return errors.New("no produce request held back")
		}
		return nil
	})

	// C: sent after the flush, processed while it is unacknowledged; then
	// one more order, so that the step that processed C has ended (with
	// whatever it decided about the pending commit) when the offsets are
	// checked.
	p.send(t, 100, 20, base, &seq)
	waitProcessed(t, in, 500, interval)
	p.send(t, 1, 20, base, &seq)
	waitProcessed(t, in, 501, interval)
	if got := committedOffsets(t, c); !offsetsAtMost(got, endA) {
		t.Fatalf("offsets committed while the commit's records were held back: %v, committed before the hold %v", got, endA)
	}
	checkNoCommitWhileHeld(t, g, endA)
	if err := g.Release(); err != nil {
		t.Fatal(err)
	}
	endC := inputEnds(t, c)
	waitCommitted(t, c, endC)
	in.waitCountsRunning(t, c, p.expected())
	checkNoCommitWhileHeld(t, g, endA)

	// D: the crash. Its commit's flush is held back, then the instance
	// dies with it unsent.
	g.Hold()
	p.send(t, 200, 20, base, &seq)
	in.waitMetricAbove(t, "weir_records_processed_total", 700)
	waitFor(t, 2*interval+10*time.Second, "a commit's flush held back", func() error {
		if g.Held() == 0 {
			return errors.New("no produce request held back")
		}
		return nil
	})
	// Two more orders, one step each, as for C: the step after the flush
	// has ended, with whatever it decided, before the crash.
	p.send(t, 1, 20, base, &seq)
	waitProcessed(t, in, 702, interval)
	p.send(t, 1, 20, base, &seq)
	waitProcessed(t, in, 703, interval)
	processed := in.app.Abandon()
	checkNoCommitWhileHeld(t, g, endC)
	committed := committedOffsets(t, c)
	if !offsetsAtMost(committed, endC) {
		t.Fatalf("offsets committed past records never acknowledged: %v, committed before the hold %v", committed, endC)
	}
	slack := replayed(p, processed, committed)
	if n := sum(slack); n != 202 {
		t.Fatalf("%d orders lie between the committed offsets and the crashed instance's position, want the 202 sent with the gate holding", n)
	}
	next := startInstance(t, c, t.TempDir())
	waitCountsWithin(t, c, p.expected(), slack)
	next.stop(t)
}

// inputEnds returns the orders topic's end offsets.
func inputEnds(t *testing.T, c *cluster) map[streams.TopicPartition]streams.Offset {
	t.Helper()
	out := map[streams.TopicPartition]streams.Offset{}
	for p, o := range endOffsets(t, c, orders.InputTopic) {
		out[streams.TopicPartition{Topic: orders.InputTopic, Partition: streams.Partition(p)}] = streams.Offset(o)
	}
	return out
}

// offsetsAtMost reports whether every offset of got is at most want's.
func offsetsAtMost(got, want map[streams.TopicPartition]streams.Offset) bool {
	for tp, o := range got {
		if o > want[tp] {
			return false
		}
	}
	return true
}

// waitCommitted waits until the group's committed offsets reach want.
func waitCommitted(t *testing.T, c *cluster, want map[streams.TopicPartition]streams.Offset) {
	t.Helper()
	waitFor(t, 40*time.Second, fmt.Sprintf("offsets %v committed", want), func() error {
		got := committedOffsets(t, c)
		for tp, o := range want {
			if got[tp] < o {
				return fmt.Errorf("committed %v", got)
			}
		}
		return nil
	})
}

// checkNoCommitWhileHeld fails the test if an OffsetCommit went out while
// produce requests were held back with an offset beyond floor.
func checkNoCommitWhileHeld(t *testing.T, g *ackGate, floor map[streams.TopicPartition]streams.Offset) {
	t.Helper()
	for i, sc := range g.Commits() {
		if sc.whileHeld && !offsetsAtMost(sc.offsets, floor) {
			t.Fatalf("offset commit %d (%v) sent while records produced before it were unacknowledged (committed before the hold: %v)", i, sc.offsets, floor)
		}
	}
}

// waitProcessed waits at most d until in has processed n records: while a
// commit's records are held back, processing must go on.
func waitProcessed(t *testing.T, in *instance, n float64, d time.Duration) {
	t.Helper()
	waitFor(t, d, fmt.Sprintf("%v orders processed while a commit's records are unacknowledged", n), func() error {
		in.checkRunning(t)
		if got := metricSum(t, in.app, "weir_records_processed_total"); got < n {
			return fmt.Errorf("processed %v", got)
		}
		return nil
	})
}

// TestCloseLetsAFullFlushFinish: Close arrives while a commit's flush waits
// for room in a full producer (a producer limit of 4 records, the broker's
// acknowledgements held back by the gate), and the broker then takes the
// records. Close must let the flush finish and stop cleanly: Run returns
// nil and the counts are exact. Cancelled at once by Close, the waiting
// records failed, and Run reported them dropped.
func TestCloseLetsAFullFlushFinish(t *testing.T) {
	c := newWeir(t, 2)
	p := newProducer(t, c)
	base := time.UnixMilli(1_700_000_000_000).Truncate(time.Minute)
	seq := 0
	g := newAckGate()
	in := startInstance(t, c, t.TempDir(), runtime.ClientOptions(kgo.Dialer(g.dial)),
		runtime.CommitInterval(200*time.Millisecond), runtime.CommitTimeout(time.Minute), runtime.MaxBufferedProduce(4))
	t.Cleanup(func() { _ = g.Release() })
	in.waitMetricAbove(t, "weir_active_tasks", 1)
	g.Hold()
	p.send(t, 200, 50, base, &seq)
	waitFor(t, 20*time.Second, "a commit's flush held back", func() error {
		if g.Held() == 0 {
			return errors.New("no produce request held back")
		}
		return nil
	})
	closed := make(chan error, 1)
	go func() {
		_ = in.app.Close()
		closed <- <-in.done
	}()
	// The broker is slower than Close: its acknowledgements come half a
	// second later (well within the MaxCommitBackoff that Close waits
	// for one).
	time.Sleep(500 * time.Millisecond)
	if err := g.Release(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Close did not return within 60s")
	}
	if got := readCounts(t, c); countDiff(p.expected(), got) != "" {
		t.Fatalf("counts after Close:\n%s", countDiff(p.expected(), got))
	}
}
