package broker

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/weir-dev/weir/broker/internal/quorum/faultnet"
	"github.com/weir-dev/weir/broker/internal/txn"
)

// txnCoordinatorOf returns the node every broker names as the coordinator
// of transactional id id, once they agree with the leader of its
// __transaction_state partition and it is not node not.
func txnCoordinatorOf(ctx context.Context, t *testing.T, direct map[int32]*kgo.Client, adm *kadm.Client, id string, not int32) int32 {
	t.Helper()
	var coord int32
	eventually(t, 20*time.Second, "every broker names the state partition leader as "+id+"'s coordinator", func() error {
		var got []int32
		for _, n := range slices.Sorted(mapKeys(direct)) {
			req := kmsg.NewPtrFindCoordinatorRequest()
			req.CoordinatorType, req.CoordinatorKey, req.CoordinatorKeys = 1, id, []string{id}
			raw, err := direct[n].SeedBrokers()[0].Request(ctx, req)
			if err != nil {
				return fmt.Errorf("node %d: %w", n, err)
			}
			resp := raw.(*kmsg.FindCoordinatorResponse)
			code, node := resp.ErrorCode, resp.NodeID
			if resp.Version >= 4 && len(resp.Coordinators) == 1 {
				code, node = resp.Coordinators[0].ErrorCode, resp.Coordinators[0].NodeID
			}
			if code != 0 {
				return fmt.Errorf("node %d: FindCoordinator: %s", n, codeName(code))
			}
			got = append(got, node)
		}
		md, err := adm.Metadata(ctx, txn.StateTopic)
		if err != nil {
			return err
		}
		pt, ok := md.Topics[txn.StateTopic]
		if !ok || pt.Err != nil {
			return fmt.Errorf("%s: %v", txn.StateTopic, pt.Err)
		}
		leader := pt.Partitions[txn.Partition(txn.TransactionalID(id), int32(len(pt.Partitions)))].Leader
		for _, n := range got {
			if n != leader {
				return fmt.Errorf("coordinators %v, state partition leader %d", got, leader)
			}
		}
		if leader == not || leader < 0 {
			return fmt.Errorf("the coordinator is still node %d", leader)
		}
		coord = leader
		return nil
	})
	return coord
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestClusterTransactionsAcrossBrokers: on a 3-broker cluster a
// transactional producer writes to partitions led by different brokers;
// one transaction commits and one aborts. Read at read_committed the topic
// holds exactly the committed records, at read_uncommitted both; every
// broker names the same transaction coordinator, the leader of the id's
// __transaction_state partition, which is replicated 3 ways.
func TestClusterTransactionsAcrossBrokers(t *testing.T) {
	c := startTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, adm := c.adminWithController(t, ctx)
	const parts = 6
	spreadTopic(ctx, t, c, adm, "tx", parts)
	p, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.TransactionalID("across"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic("tx"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	run := func(prefix string, commit bool) []string { return txnToEach(ctx, t, p, parts, prefix, commit) }
	committed := run("c", true)
	aborted := run("a", false)
	committed = append(committed, run("d", true)...)

	direct := directClients(t, c)
	coord := txnCoordinatorOf(ctx, t, direct, adm, "across", -1)
	t.Logf("coordinator of across: node %d", coord)
	md, err := adm.Metadata(ctx, txn.StateTopic)
	if err != nil {
		t.Fatal(err)
	}
	for _, pd := range md.Topics[txn.StateTopic].Partitions {
		if len(pd.Replicas) != 3 {
			t.Fatalf("%s/%d has replicas %v, want 3", txn.StateTopic, pd.Partition, pd.Replicas)
		}
	}

	// Admin requests find the transaction on its coordinator, which
	// completes it once every leader wrote its marker.
	eventually(t, 10*time.Second, "across completed on its coordinator", func() error {
		dt, err := adm.DescribeTransactions(ctx, "across")
		if err != nil {
			return err
		}
		if d, ok := dt["across"]; !ok || d.Err != nil || d.Coordinator != coord || d.State != "CompleteCommit" {
			return fmt.Errorf("DescribeTransactions(across): %+v (found %v), want CompleteCommit on node %d", d, ok, coord)
		}
		return nil
	})
	lt, err := adm.ListTransactions(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ids := lt.TransactionalIDs(); !slices.Contains(ids, "across") {
		t.Fatalf("ListTransactions: %v, want across among them", ids)
	}

	slices.Sort(committed)
	all := slices.Sorted(slices.Values(append(slices.Clone(committed), aborted...)))
	if got := readIsolated(ctx, t, c, "tx", kgo.ReadCommitted(), len(committed)); !slices.Equal(got, committed) {
		t.Fatalf("read_committed: %v, want %v", got, committed)
	}
	if got := readIsolated(ctx, t, c, "tx", kgo.ReadUncommitted(), len(all)); !slices.Equal(got, all) {
		t.Fatalf("read_uncommitted: %v, want %v", got, all)
	}
}

// txnToEach runs one transaction of producer p that writes prefix-N to
// each partition N below parts, committed or aborted, and returns the
// values written.
func txnToEach(ctx context.Context, t *testing.T, p *kgo.Client, parts int32, prefix string, commit bool) []string {
	t.Helper()
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	var vals []string
	for part := range parts {
		v := fmt.Sprintf("%s-%d", prefix, part)
		vals = append(vals, v)
		if err := p.ProduceSync(ctx, &kgo.Record{Partition: part, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
	}
	if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatalf("end %s: %v", prefix, err)
	}
	return vals
}

// readIsolated reads topic from the start at isolation level iso up to
// its end offset at that level (readToEnd), checks that it found want
// records, and returns the values sorted.
func readIsolated(ctx context.Context, t *testing.T, c *testCluster, topic string, iso kgo.IsolationLevel, want int) []string {
	t.Helper()
	got := readToEnd(ctx, t, c.seeds(), topic, iso)
	if len(got) != want {
		t.Errorf("%s holds %d records up to its end offset, want %d", topic, len(got), want)
	}
	slices.Sort(got)
	return got
}

// readToEnd reads topic from the start at isolation level iso up to the end
// ListOffsets answers at that level (the last stable offset at
// read_committed, the high watermark at read_uncommitted), and returns its
// record values in the order read. Control records are read too (and not
// returned): below the end, the last offset of a partition is a marker or
// a record that the level shows, so the read reaches end-1 exactly and
// cannot stop short nor need a quiet wait.
func readToEnd(ctx context.Context, t *testing.T, seeds []string, topic string, iso kgo.IsolationLevel) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic), kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(iso), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	list := adm.ListEndOffsets
	if iso == kgo.ReadCommitted() {
		list = adm.ListCommittedOffsets
	}
	ends, err := list(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	left := map[int32]int64{} // partition -> end offset not yet reached
	for _, lo := range ends[topic] {
		if lo.Err != nil {
			t.Fatalf("ListOffsets %s/%d: %v", topic, lo.Partition, lo.Err)
		}
		if lo.Offset > 0 {
			left[lo.Partition] = lo.Offset
		}
	}
	var got []string
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d records of %s; partitions short of their end offset: %v", len(got), topic, left)
		}
		for _, r := range fs.Records() {
			if end, ok := left[r.Partition]; ok && r.Offset+1 >= end {
				delete(left, r.Partition)
			}
			if r.Offset >= ends[topic][r.Partition].Offset {
				continue // past the end listed: not part of this read
			}
			if !r.Attrs.IsControl() {
				got = append(got, string(r.Value))
			}
		}
	}
	return got
}

// TestClusterTxnCoordinatorMoves: franz-go's GroupTransactSession copy
// job, two members, copies "in" to "out" on a 3-broker cluster while the
// transaction coordinator of the first member's id is stopped (shutdown)
// or cut off and stopped (kill) midway. Read at read_committed, "out"
// holds every input record exactly once; read at read_uncommitted it also
// holds the records of every transaction a member saw aborted.
func TestClusterTxnCoordinatorMoves(t *testing.T) {
	for _, kill := range []bool{false, true} {
		name := "shutdown"
		if kill {
			name = "kill"
		}
		t.Run(name, func(t *testing.T) { testTxnCoordinatorMoves(t, kill) })
	}
}

func testTxnCoordinatorMoves(t *testing.T, kill bool) {
	const total, parts = 6000, 4
	c := startTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	_, adm := c.adminWithController(t, ctx)
	spreadTopic(ctx, t, c, adm, "in", parts)
	spreadTopic(ctx, t, c, adm, "out", parts)
	p := newProducer(t, c)
	var recs []*kgo.Record
	for i := range total {
		v := strconv.Itoa(i)
		recs = append(recs, &kgo.Record{Topic: "in", Partition: int32(i % parts), Key: []byte(v), Value: []byte(v)})
	}
	if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	job := &copyJob{seeds: c.seeds()}
	jobCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	for _, id := range []string{"copy-1", "copy-2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			job.run(jobCtx, t, id)
		}()
	}
	eventually(t, 30*time.Second, "a third of the input copied", func() error {
		if n := job.copiedCount(); n < total/3 {
			return fmt.Errorf("%d copied", n)
		}
		return nil
	})
	direct := directClients(t, c)
	coord := txnCoordinatorOf(ctx, t, direct, adm, "copy-1", -1)
	if kill {
		t.Logf("killing node %d, transaction coordinator of copy-1, after %d records copied", coord, job.copiedCount())
		c.net.Isolate(faultnet.NodeID(coord))
	} else {
		t.Logf("stopping node %d, transaction coordinator of copy-1, after %d records copied", coord, job.copiedCount())
	}
	if err := c.brokers[coord-1].Close(); err != nil {
		t.Fatal(err)
	}
	delete(direct, coord)
	coord2 := txnCoordinatorOf(ctx, t, direct, adm, "copy-1", coord)
	t.Logf("new transaction coordinator of copy-1: node %d", coord2)

	// Every input record reaches "out" at read_committed.
	seeds := slices.DeleteFunc(c.seeds(), func(s string) bool { return s == c.brokers[coord-1].Addr() })
	readValues(ctx, t, seeds, "out", kgo.ReadCommitted(), total)
	stop()
	wg.Wait()
	// With the members stopped, all of "out" up to its last stable
	// offset: any record committed twice shows.
	committed := readToEnd(ctx, t, seeds, "out", kgo.ReadCommitted())
	seen := map[string]int{}
	for _, v := range committed {
		seen[v]++
	}
	for i := range total {
		if n := seen[strconv.Itoa(i)]; n != 1 {
			t.Errorf("record %d is in out %d times at read_committed", i, n)
		}
	}
	if len(committed) != total {
		t.Fatalf("out holds %d records at read_committed, want %d", len(committed), total)
	}
	aborted := job.abortedCount()
	uncommitted := readValues(ctx, t, seeds, "out", kgo.ReadUncommitted(), total+aborted)
	t.Logf("members: %d records copied in committed transactions, %d acknowledged in aborted ones, %d restarts; out holds %d records at read_uncommitted",
		job.copiedCount(), aborted, job.restarts.Load(), len(uncommitted))
	useen := map[string]bool{}
	for _, v := range uncommitted {
		useen[v] = true
	}
	if len(useen) != total {
		t.Fatalf("out holds %d distinct values at read_uncommitted, want the %d input values", len(useen), total)
	}
}

// copyJob is a GroupTransactSession copy job ("in" to "out", group
// "copy") over a cluster; a member that fails is started again, as a
// supervisor would restart a process.
type copyJob struct {
	seeds    []string
	mu       sync.Mutex
	copied   int // records in transactions that committed
	aborted  int // records acknowledged in transactions that aborted
	restarts atomic.Int32
}

func (j *copyJob) copiedCount() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.copied
}

func (j *copyJob) abortedCount() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.aborted
}

// run runs member id until ctx ends, restarting it after an error.
func (j *copyJob) run(ctx context.Context, t *testing.T, id string) {
	for ctx.Err() == nil {
		err := j.member(ctx, id)
		if err == nil || ctx.Err() != nil {
			return
		}
		j.restarts.Add(1)
		t.Logf("member %s failed, restarting it: %v", id, err)
	}
}

func (j *copyJob) member(ctx context.Context, id string) error {
	s, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(j.seeds...),
		kgo.TransactionalID(id),
		kgo.ConsumerGroup("copy"),
		kgo.ConsumeTopics("in"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DefaultProduceTopic("out"),
		kgo.TransactionTimeout(10*time.Second),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
	)
	if err != nil {
		return err
	}
	defer s.Close()
	for ctx.Err() == nil {
		fs := s.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var ferr error
		fs.EachError(func(topic string, p int32, err error) { ferr = fmt.Errorf("fetch %s/%d: %w", topic, p, err) })
		if ferr != nil {
			return ferr
		}
		if err := s.Begin(); err != nil {
			return fmt.Errorf("%s: begin: %w", id, err)
		}
		var mu sync.Mutex
		acked := 0
		var perr error
		var wg sync.WaitGroup
		fs.EachRecord(func(r *kgo.Record) {
			wg.Add(1)
			s.Produce(ctx, &kgo.Record{Key: r.Key, Value: r.Value}, func(_ *kgo.Record, err error) {
				defer wg.Done()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					perr = err
					return
				}
				acked++
			})
		})
		wg.Wait()
		committed, err := s.End(ctx, kgo.TransactionEndTry(perr == nil))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("%s: end: %w", id, err)
		}
		j.mu.Lock()
		if committed {
			j.copied += acked
		} else {
			j.aborted += acked
		}
		j.mu.Unlock()
	}
	return nil
}

// readValues reads topic from the start at isolation level iso, through
// seeds, until it has at least want records, and returns their values.
func readValues(ctx context.Context, t *testing.T, seeds []string, topic string, iso kgo.IsolationLevel, want int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(iso), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []string
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s", len(got), want, topic)
		}
		for _, r := range fs.Records() {
			got = append(got, string(r.Value))
		}
	}
	return got
}

// TestClusterLateTxnMarkerFenced is the delayed-message problem for a
// marker (KIP-890 part 2's WriteTxnMarkers v2): the coordinator's
// WriteTxnMarkers for transaction 1 to a remote partition leader is held
// in the network (faultnet's Hold) past the coordinator's request timeout,
// so the coordinator sends it again, that copy lands and transaction 1
// completes. Transaction 2 then writes to the same partition, at the epoch
// transaction 1's end bumped to, which is also the held marker's epoch.
// The held copy is released there, after transaction 2's data; transaction
// 2 is aborted. Read at read_committed the topic holds exactly the
// committed records: the late COMMIT must not have ended transaction 2.
func TestClusterLateTxnMarkerFenced(t *testing.T) {
	c := startTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	_, adm := c.adminWithController(t, ctx)
	leaders := spreadTopic(ctx, t, c, adm, "late", 3)
	const id = "late-marker"
	p, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.TransactionalID(id),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic("late"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	txnTo := func(part int32, v string, commit bool) {
		t.Helper()
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := p.ProduceSync(ctx, &kgo.Record{Partition: part, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
		if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end the transaction of %s: %v", v, err)
		}
	}
	txnTo(0, "zero", true) // the producer and its coordinator are set up

	coord := txnCoordinatorOf(ctx, t, directClients(t, c), adm, id, -1)
	part, leader := int32(-1), int32(-1)
	for pt, l := range leaders {
		if l != coord {
			part, leader = pt, l
			break
		}
	}
	if part < 0 {
		t.Fatalf("every partition of late is led by the coordinator, node %d: %v", coord, leaders)
	}
	t.Logf("coordinator node %d; partition %d led by node %d", coord, part, leader)

	// Hold the coordinator's WriteTxnMarkers requests to the leader: a
	// request frame is its size, then its api key.
	from, to := faultnet.NodeID(coord), faultnet.NodeID(leader)
	c.net.Hold(from, to, func(b []byte) bool {
		return len(b) >= 6 && int16(binary.BigEndian.Uint16(b[4:6])) == int16(kmsg.WriteTxnMarkers)
	})
	released := false
	defer func() {
		if !released {
			_, _ = c.net.Release(from, to)
		}
	}()
	txnTo(part, "one", true)
	eventually(t, 10*time.Second, "the coordinator's marker held on its way", func() error {
		if s := c.net.Stats(from, to); s.Held == 0 {
			return fmt.Errorf("link %d->%d: %+v", from, to, s)
		}
		return nil
	})
	c.net.Heal(from, to) // the coordinator's next try goes through

	// Transaction 2 writes to the partition once transaction 1 completed
	// (its produce is answered CONCURRENT_TRANSACTIONS until then).
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Partition: part, Value: []byte("two")}).FirstErr(); err != nil {
		t.Fatalf("produce two: %v", err)
	}
	// The late COMMIT of transaction 1 arrives now, at two's epoch.
	// Under transaction.version 2 every end bumped the epoch: two's is
	// above the first transaction's, and is the held marker's.
	dp, err := adm.DescribeProducers(ctx, kadm.TopicsSet{"late": {part: {}}})
	if err != nil {
		t.Fatal(err)
	}
	dp.EachProducer(func(ps kadm.DescribedProducer) {
		if ps.ProducerEpoch < 1 {
			t.Fatalf("producer %d writes at epoch %d: the client is not on transaction.version 2", ps.ProducerID, ps.ProducerEpoch)
		}
	})
	k, err := c.net.Release(from, to)
	released = true
	if k != 1 || err != nil {
		t.Fatalf("released %d held connections (%v), want 1 answered", k, err)
	}
	if err := p.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatalf("abort two: %v", err)
	}

	if got := readIsolated(ctx, t, c, "late", kgo.ReadCommitted(), 2); !slices.Equal(got, []string{"one", "zero"}) {
		t.Fatalf("read_committed: %v, want [one zero] (two aborted)", got)
	}
	if got := readIsolated(ctx, t, c, "late", kgo.ReadUncommitted(), 3); !slices.Equal(got, []string{"one", "two", "zero"}) {
		t.Fatalf("read_uncommitted: %v, want [one two zero]", got)
	}
}

// TestClusterSyncMetadata: a broker's SyncMetadata (what a transaction
// coordinator asks before it takes a partition its view does not name as
// deleted) returns with the view holding what the controller had applied:
// a topic just created through another broker is named at once.
func TestClusterSyncMetadata(t *testing.T) {
	c := startTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, adm := c.adminWithController(t, ctx)
	c.waitBrokers(t, ctx, 3)
	for i := range 3 {
		topic := fmt.Sprintf("synced-%d", i)
		r, err := adm.CreateTopic(ctx, int32(i+1), 3, nil, topic)
		if err == nil {
			err = r.Err
		}
		if err != nil {
			t.Fatalf("create %s: %v", topic, err)
		}
		for _, b := range c.brokers {
			if err := b.cn.SyncMetadata(ctx); err != nil {
				t.Fatalf("node %d: SyncMetadata: %v", b.opts.NodeID, err)
			}
			if ct := b.cn.View().Topics[topic]; ct == nil || len(ct.Partitions) != i+1 {
				t.Fatalf("node %d: after SyncMetadata the view has %s as %+v, want %d partitions", b.opts.NodeID, topic, ct, i+1)
			}
		}
	}
}

// TestClusterNoOrphanTransactions is why abortOrphanTransactions does not
// run on a cluster: no leader writes a transactional batch that no
// coordinator will end. A transactional batch without a transactional id
// is refused (INVALID_RECORD), and one with an id is written only once
// that id's coordinator, wherever it is, has the partition in the open
// transaction of that producer id and epoch (Produce v11: verified; v12:
// added there), so that the coordinator writes its marker, at the end, at
// the timeout or after a move. So a leader refuses a produce of an id no
// coordinator knows, of a producer id the coordinator did not hand out,
// and (v11) of a partition not added, and nothing is written; the batch a
// v12 produce adds is ended by the coordinator at its timeout. Followers
// copy only what a leader wrote.
func TestClusterNoOrphanTransactions(t *testing.T) {
	c := startTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, adm := c.adminWithController(t, ctx)
	leader := spreadTopic(ctx, t, c, adm, "orph", 3)[0]

	// A transactional id the coordinator knows, at producer id pid, whose
	// transactions time out after 2 s.
	id := "known"
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = &id, 2000
	var pid int64
	eventually(t, 20*time.Second, "a producer id for "+id, func() error {
		cl := directClients(t, c)[txnCoordinatorOf(ctx, t, directClients(t, c), adm, id, -1)]
		ir, err := init.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		if ir.ErrorCode != 0 {
			return kerr.ErrorForCode(ir.ErrorCode)
		}
		pid = ir.ProducerID
		return nil
	})

	txnBatch := func(pid int64) []byte {
		raw := rawProducerBatch(pid, 0, 0, "orphan")
		raw[22] |= 0x10 // attributes, low byte: transactional
		binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], castagnoli))
		return raw
	}
	clients := map[int16]*kgo.Client{}
	for _, v := range []int16{11, 12} {
		vs := kversion.V4_0_0()
		vs.SetMaxKeyVersion(int16(kmsg.Produce), v)
		clients[v] = newClient(t, c.brokers[leader-1], kgo.MaxVersions(vs))
	}
	produce := func(version int16, txnID *string, records []byte) int16 {
		t.Helper()
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis, req.TransactionID = -1, 5000, txnID
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "orph"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = records
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, clients[version])
		if err != nil {
			t.Fatal(err)
		}
		if resp.Version != version {
			t.Fatalf("produce went at v%d, want v%d", resp.Version, version)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	ends := func() (hw, lso int64) {
		t.Helper()
		for i, list := range []func(context.Context, ...string) (kadm.ListedOffsets, error){adm.ListEndOffsets, adm.ListCommittedOffsets} {
			lo, err := list(ctx, "orph")
			if err != nil {
				t.Fatal(err)
			}
			o, _ := lo.Lookup("orph", 0)
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			if i == 0 {
				hw = o.Offset
			} else {
				lso = o.Offset
			}
		}
		return hw, lso
	}
	ghost, known := "ghost", id
	for _, tc := range []struct {
		what    string
		version int16
		txnID   *string
		pid     int64
	}{
		{"no transactional id", 11, nil, 4242},
		{"an id no coordinator knows (v11)", 11, &ghost, 4242},
		{"an id no coordinator knows (v12)", 12, &ghost, 4242},
		{"another producer id than the coordinator's (v11)", 11, &known, pid + 1},
		{"another producer id than the coordinator's (v12)", 12, &known, pid + 1},
		{"the coordinator's producer id, the partition not added (v11)", 11, &known, pid},
	} {
		if code := produce(tc.version, tc.txnID, txnBatch(tc.pid)); code == 0 {
			t.Errorf("a transactional batch with %s was written", tc.what)
		} else {
			t.Logf("with %s: %s", tc.what, codeName(code))
		}
	}
	if hw, lso := ends(); hw != 0 || lso != 0 {
		t.Fatalf("orph/0: high watermark %d, last stable offset %d; want 0 and 0 (nothing written)", hw, lso)
	}

	// Produce v12 adds the partition at the coordinator: written, and
	// ended there at the transaction's timeout.
	if code := produce(12, &known, txnBatch(pid)); code != 0 {
		t.Fatalf("a v12 transactional produce of the coordinator's producer id: %s", codeName(code))
	}
	eventually(t, 20*time.Second, "the coordinator aborts the transaction at its timeout", func() error {
		if hw, lso := ends(); hw != 2 || lso != 2 {
			return fmt.Errorf("high watermark %d, last stable offset %d; want 2 and 2 (the batch, its ABORT marker)", hw, lso)
		}
		return nil
	})
}

// TestClusterTxnVerifiedOncePerTransaction: a transactional produce to a
// leader that is not the transaction's coordinator asks the coordinator
// once per transaction and partition, not once per produce: while the
// partition holds the producer's open transaction at its epoch, the
// leader knows the partition is in it. The coordinator counts the
// AddPartitionsToTxn it is asked (weir_requests_total): once per
// transaction of ten produces for a transaction.version 2 client (Produce
// v12, added by the leader), twice for an older one (its own add, then
// the leader's one verification).
func TestClusterTxnVerifiedOncePerTransaction(t *testing.T) {
	c := startTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, adm := c.adminWithController(t, ctx)
	leaders := spreadTopic(ctx, t, c, adm, "ver", 3)
	tv1 := kversion.V3_9_0()
	tv1.SetMaxKeyVersion(int16(kmsg.AddPartitionsToTxn), 3) // a client's version
	var want []string
	for _, tc := range []struct {
		name  string
		opts  []kgo.Opt
		asked float64
	}{
		{"transaction.version=2", nil, 1},
		{"transaction.version=1", []kgo.Opt{kgo.MaxVersions(tv1)}, 2},
	} {
		id := "verified-" + tc.name
		p, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.seeds()...), kgo.TransactionalID(id),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic("ver")}, tc.opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		want = append(want, txnToEach(ctx, t, p, 1, "warmup-"+tc.name, true)...)
		coord := txnCoordinatorOf(ctx, t, directClients(t, c), adm, id, -1)
		part := int32(-1)
		for pt, l := range leaders {
			if l != coord {
				part = pt
				break
			}
		}
		if part < 0 {
			t.Fatalf("every partition of ver is led by the coordinator, node %d: %v", coord, leaders)
		}
		completed := func() {
			t.Helper()
			eventually(t, 10*time.Second, id+" completed", func() error {
				dt, err := adm.DescribeTransactions(ctx, id)
				if err != nil {
					return err
				}
				if d := dt[id]; d.Err != nil || d.State != "CompleteCommit" {
					return fmt.Errorf("DescribeTransactions(%s): %+v", id, d)
				}
				return nil
			})
		}
		asked := func() float64 {
			return scrape(t, c.brokers[coord-1])["weir_requests_total"]["api=AddPartitionsToTxn,"]
		}
		const produces = 10
		for txnNo := range 2 {
			completed() // no CONCURRENT_TRANSACTIONS retry counts below
			before := asked()
			if err := p.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			for i := range produces {
				v := fmt.Sprintf("%s/t%d-%d", tc.name, txnNo, i)
				want = append(want, v)
				if err := p.ProduceSync(ctx, &kgo.Record{Partition: part, Value: []byte(v)}).FirstErr(); err != nil {
					t.Fatalf("produce %s: %v", v, err)
				}
			}
			if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
				t.Fatal(err)
			}
			if n := asked() - before; n != tc.asked {
				t.Fatalf("%s, transaction %d: the coordinator was asked %v times for %d produces to one partition, want %v", tc.name, txnNo, n, produces, tc.asked)
			}
		}
		completed()
	}
	slices.Sort(want)
	if got := readIsolated(ctx, t, c, "ver", kgo.ReadCommitted(), len(want)); !slices.Equal(got, want) {
		t.Fatalf("read_committed: %v, want %v", got, want)
	}
}
