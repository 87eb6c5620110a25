package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/weir-dev/weir/broker/internal/topics"
)

// txnProducer returns a transactional franz-go client for id.
func txnProducer(t *testing.T, b *Broker, id string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return newClient(t, b, append([]kgo.Opt{kgo.TransactionalID(id), kgo.DefaultProduceTopic("tx"),
		kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
}

// createTopic creates topic with n partitions.
func createTopic(t *testing.T, b *Broker, topic string, n int32) {
	t.Helper()
	adm := kadm.NewClient(newClient(t, b))
	if _, err := adm.CreateTopic(testCtx(t), n, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
}

// produceTxn produces values to partition 0 of the client's default topic
// inside an open transaction.
func produceTxn(t *testing.T, c *kgo.Client, values ...string) {
	t.Helper()
	for _, v := range values {
		if err := c.ProduceSync(testCtx(t), &kgo.Record{Value: []byte(v), Partition: 0}).FirstErr(); err != nil {
			t.Fatalf("produce %q: %v", v, err)
		}
	}
}

// readAll reads topic from the start at the given isolation level until it
// has n values, then for a quiet half second more (so that a record that
// should not be there has its chance to show), and returns the values.
func readAll(t *testing.T, b *Broker, topic string, committed bool, n int) []string {
	t.Helper()
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := newClient(t, b, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(iso), kgo.FetchMaxWait(100*time.Millisecond))
	var out []string
	poll := func(ctx context.Context) {
		fs := c.PollFetches(ctx)
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				t.Fatalf("fetch %s/%d: %v", topic, p, err)
			}
		})
		for _, r := range fs.Records() {
			out = append(out, string(r.Value))
		}
	}
	for len(out) < n {
		poll(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %v, want %d values", out, n)
		}
	}
	quiet, cancel2 := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel2()
	for quiet.Err() == nil {
		poll(quiet)
	}
	return out
}

// ends returns the end offset of partition 0 of topic at read_uncommitted
// and at read_committed (the last stable offset).
func ends(t *testing.T, b *Broker, topic string) (hw, lso int64) {
	t.Helper()
	adm := kadm.NewClient(newClient(t, b))
	u, err := adm.ListEndOffsets(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	c, err := adm.ListCommittedOffsets(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	ou, _ := u.Lookup(topic, 0)
	oc, _ := c.Lookup(topic, 0)
	return ou.Offset, oc.Offset
}

// waitLSO polls until partition 0's last stable offset is at least want.
func waitLSO(t *testing.T, b *Broker, topic string, want int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, lso := ends(t, b, topic)
		if lso >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("last stable offset %d never reached %d", lso, want)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}

// TestTransactionCommitAbort: a committed transaction's records are read at
// both isolation levels, an aborted one's only at read_uncommitted.
func TestTransactionCommitAbort(t *testing.T) {
	b := startBroker(t, Options{MetricsAddr: "127.0.0.1:0"})
	createTopic(t, b, "tx", 1)
	p := txnProducer(t, b, "commit-abort")
	ctx := testCtx(t)
	for i, commit := range []bool{true, false, true} {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		produceTxn(t, p, fmt.Sprintf("t%d-a", i), fmt.Sprintf("t%d-b", i))
		if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end transaction %d (commit %v): %v", i, commit, err)
		}
	}
	// 3 transactions × (2 records + 1 marker); EndTxn is answered once
	// the decision is stored, the markers follow.
	waitLSO(t, b, "tx", 9)
	committed := readAll(t, b, "tx", true, 4)
	if want := []string{"t0-a", "t0-b", "t2-a", "t2-b"}; !slices.Equal(committed, want) {
		t.Fatalf("read_committed read %v, want %v", committed, want)
	}
	all := readAll(t, b, "tx", false, 6)
	if want := []string{"t0-a", "t0-b", "t1-a", "t1-b", "t2-a", "t2-b"}; !slices.Equal(all, want) {
		t.Fatalf("read_uncommitted read %v, want %v", all, want)
	}
	waitMetrics(t, b, map[string]float64{"weir_txn_committed_total": 2, "weir_txn_aborted_total": 1, "weir_txn_timed_out_total": 0, "weir_txn_open": 0})
}

// TestTransactionHoldsReadCommitted: while a transaction is open, a
// read_committed consumer stops at its first record (the last stable
// offset), even for records produced after it outside the transaction; a
// read_uncommitted consumer reads them all. The commit releases them.
func TestTransactionHoldsReadCommitted(t *testing.T) {
	b := startBroker(t, Options{})
	createTopic(t, b, "tx", 1)
	plain := newClient(t, b, kgo.DefaultProduceTopic("tx"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := testCtx(t)
	if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p := txnProducer(t, b, "holder")
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceTxn(t, p, "in-txn")
	if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	hw, lso := ends(t, b, "tx")
	if hw != 3 || lso != 1 {
		t.Fatalf("open transaction at offset 1: high watermark %d, last stable offset %d; want 3 and 1", hw, lso)
	}
	if got := readAll(t, b, "tx", false, 3); !slices.Equal(got, []string{"before", "in-txn", "after"}) {
		t.Fatalf("read_uncommitted read %v", got)
	}
	// DescribeProducers shows the open transaction's first offset.
	dp, err := kadm.NewClient(newClient(t, b)).DescribeProducers(ctx, kadm.TopicsSet{"tx": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	starts := map[int64]int64{}
	dp.EachProducer(func(p kadm.DescribedProducer) { starts[p.ProducerID] = p.CurrentTxnStartOffset })
	open := 0
	for _, off := range starts {
		if off == 1 {
			open++
		} else if off != -1 {
			t.Fatalf("DescribeProducers: a transaction starting at %d: %v", off, starts)
		}
	}
	if len(starts) != 2 || open != 1 {
		t.Fatalf("DescribeProducers: %v, want the plain producer and one transaction starting at 1", starts)
	}
	// read_committed: only "before", however long it polls.
	c := newClient(t, b, kgo.ConsumeTopics("tx"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))
	var got []string
	pollUntil := time.Now().Add(time.Second)
	for time.Now().Before(pollUntil) {
		pctx, cancel := context.WithDeadline(ctx, pollUntil)
		fs := c.PollFetches(pctx)
		cancel()
		for _, r := range fs.Records() {
			got = append(got, string(r.Value))
		}
	}
	if !slices.Equal(got, []string{"before"}) {
		t.Fatalf("read_committed read %v while the transaction is open, want [before]", got)
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	for len(got) < 3 {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("after the commit read_committed read %v", got)
		}
		for _, r := range fs.Records() {
			got = append(got, string(r.Value))
		}
	}
	if !slices.Equal(got, []string{"before", "in-txn", "after"}) {
		t.Fatalf("after the commit read_committed read %v", got)
	}
}

// TestTransactionTimeoutAborts: a transaction left open past its timeout
// is aborted by the coordinator: its records are never read at
// read_committed, the last stable offset moves past them, and the producer
// that left it is fenced.
func TestTransactionTimeoutAborts(t *testing.T) {
	b := startBroker(t, Options{MetricsAddr: "127.0.0.1:0"})
	createTopic(t, b, "tx", 1)
	p := txnProducer(t, b, "hung", kgo.TransactionTimeout(1500*time.Millisecond))
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceTxn(t, p, "hung-1", "hung-2")
	if m := scrape(t, b); m["weir_txn_open"][""] != 1 {
		t.Fatalf("weir_txn_open %v with one transaction open", m["weir_txn_open"])
	}
	waitLSO(t, b, "tx", 3) // two records and the coordinator's abort marker
	if got := readAll(t, b, "tx", true, 0); len(got) != 0 {
		t.Fatalf("read_committed read %v from a timed-out transaction", got)
	}
	if err := p.EndTransaction(testCtx(t), kgo.TryCommit); err == nil {
		t.Fatal("the timed-out transaction committed")
	}
	waitMetrics(t, b, map[string]float64{"weir_txn_timed_out_total": 1, "weir_txn_aborted_total": 1, "weir_txn_committed_total": 0, "weir_txn_open": 0})
}

// TestTransactionFencing: a second producer with the same transactional id
// fences the first: the first's open transaction is aborted and its commit
// fails with an epoch error; the second's transaction commits.
func TestTransactionFencing(t *testing.T) {
	b := startBroker(t, Options{})
	createTopic(t, b, "tx", 1)
	ctx := testCtx(t)
	old := txnProducer(t, b, "fenced")
	if err := old.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceTxn(t, old, "zombie")

	young := txnProducer(t, b, "fenced")
	if err := young.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceTxn(t, young, "live")
	if err := young.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	err := old.EndTransaction(ctx, kgo.TryCommit)
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("the fenced producer's commit: %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", err)
	}
	waitLSO(t, b, "tx", 4) // zombie, its abort marker, live, its commit marker
	if got := readAll(t, b, "tx", true, 1); !slices.Equal(got, []string{"live"}) {
		t.Fatalf("read_committed read %v, want [live]", got)
	}
}

// TestTransactionSurvivesRestart: a transaction left open by a broker
// restart is still open after it (the last stable offset stays at its first
// record) and is aborted at its timeout; a committed one stays committed.
func TestTransactionSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(Options{DataDir: dir, Listen: "127.0.0.1:0", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	createTopic(t, b, "tx", 1)
	ctx := testCtx(t)
	p, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.TransactionalID("restart"), kgo.DefaultProduceTopic("tx"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionTimeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceTxn(t, p, "kept")
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceTxn(t, p, "open-at-restart")
	if err := b.Close(); err != nil { // with the transaction open
		t.Fatal(err)
	}
	p.Close()

	b2 := startBroker(t, Options{DataDir: dir})
	hw, lso := ends(t, b2, "tx")
	if hw != 3 || lso != 2 {
		t.Fatalf("after the restart: high watermark %d, last stable offset %d; want 3 and 2 (the open transaction)", hw, lso)
	}
	waitLSO(t, b2, "tx", 4) // the timeout's abort marker
	if got := readAll(t, b2, "tx", true, 1); !slices.Equal(got, []string{"kept"}) {
		t.Fatalf("read_committed read %v, want [kept]", got)
	}
	if got := readAll(t, b2, "tx", false, 2); !slices.Equal(got, []string{"kept", "open-at-restart"}) {
		t.Fatalf("read_uncommitted read %v", got)
	}
	// The id's next producer starts from the stored epoch.
	p2 := txnProducer(t, b2, "restart")
	if err := p2.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceTxn(t, p2, "after-restart")
	if err := p2.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	waitLSO(t, b2, "tx", 6)
	if got := readAll(t, b2, "tx", true, 2); !slices.Equal(got, []string{"kept", "after-restart"}) {
		t.Fatalf("read_committed read %v, want [kept after-restart]", got)
	}
}

// waitMetrics polls the broker's metrics until each named one (without
// labels) has its wanted value.
func waitMetrics(t *testing.T, b *Broker, want map[string]float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := scrape(t, b)
		ok := true
		for name, v := range want {
			got, found := m[name][""]
			ok = ok && found && got == v
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			got := map[string]float64{}
			for name := range want {
				got[name] = m[name][""]
			}
			t.Fatalf("metrics %v, want %v", got, want)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}

// TestTransactionalBatchNeedsTransactionalID: a transactional batch in a
// produce without a transactional id is refused (INVALID_RECORD), as Kafka
// refuses it: nothing would ever end its transaction. A transactional
// produce to a partition not added to the transaction is refused too.
func TestTransactionalBatchNeedsTransactionalID(t *testing.T) {
	b := startBroker(t, Options{})
	createTopic(t, b, "tx", 1)
	c := newClient(t, b)
	raw := rawProducerBatch(4242, 0, 0, "sneaky")
	raw[22] |= 0x10 // attributes, low byte: transactional
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], castagnoli))
	if code := produceRaw(t, c, "tx", raw); code != kerr.InvalidRecord.Code {
		t.Fatalf("transactional batch without a transactional id: %v, want INVALID_RECORD", kerr.ErrorForCode(code))
	}
	if hw, lso := ends(t, b, "tx"); hw != 0 || lso != 0 {
		t.Fatalf("after the refused batch: high watermark %d, last stable offset %d", hw, lso)
	}

	// A transactional producer's id, but a partition it never added.
	p := txnProducer(t, b, "adder")
	pid, epoch, err := p.ProducerID(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	raw = rawProducerBatch(pid, epoch, 0, "unadded")
	raw[22] |= 0x10
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], castagnoli))
	req := kmsg.NewPtrProduceRequest()
	id := "adder"
	req.TransactionID, req.Acks, req.TimeoutMillis = &id, -1, 5000
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: "tx", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: raw}}}}
	// Produce v11: the client adds its partitions itself (KIP-890 part 1).
	v11 := newClient(t, b, kgo.MaxVersions(kversion.V3_9_0()))
	resp, err := req.RequestWith(testCtx(t), v11)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidTxnState.Code {
		t.Fatalf("transactional produce v11 to a partition not in the transaction: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(code))
	}
	// Produce v12 (KIP-890 part 2): the partition leader adds the
	// partition, which opens the transaction.
	if resp, err = req.RequestWith(testCtx(t), c); err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("transactional produce v12: %v, want it added to the transaction", kerr.ErrorForCode(code))
	}
	if resp.Version < 12 {
		t.Fatalf("produce went as v%d, want v12", resp.Version)
	}
	adm := kadm.NewClient(c)
	ds, err := adm.DescribeTransactions(testCtx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := ds.On(id, nil)
	if d.State != "Ongoing" || len(d.Topics["tx"]) != 1 {
		t.Fatalf("after a v12 produce the transaction is %s with %v, want Ongoing with tx/0", d.State, d.Topics)
	}
}

// TestDeleteRecordsStopsAtOpenTransaction: DeleteRecords cannot move the
// log start past the first offset of an open transaction
// (OFFSET_OUT_OF_RANGE); -1 deletes up to it (the last stable offset, not
// the high watermark); once the transaction ends, everything up to the
// high watermark can go.
func TestDeleteRecordsStopsAtOpenTransaction(t *testing.T) {
	b := startBroker(t, Options{})
	createTopic(t, b, "tx", 1)
	plain := newClient(t, b, kgo.DefaultProduceTopic("tx"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := testCtx(t)
	if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte("a")}, &kgo.Record{Value: []byte("b")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p := txnProducer(t, b, "deleter")
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceTxn(t, p, "in-txn")
	if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(newClient(t, b))
	del := func(off int64) (int64, error) {
		t.Helper()
		res, err := adm.DeleteRecords(ctx, kadm.Offsets{"tx": {0: {Topic: "tx", Partition: 0, At: off}}})
		if err != nil {
			t.Fatal(err)
		}
		r, ok := res.Lookup("tx", 0)
		if !ok {
			t.Fatalf("no answer for tx/0: %v", res)
		}
		return r.LowWatermark, r.Err
	}
	if _, err := del(3); !errors.Is(err, kerr.OffsetOutOfRange) {
		t.Fatalf("delete before 3 (the transaction starts at 2): %v, want OFFSET_OUT_OF_RANGE", err)
	}
	if lw, err := del(-1); err != nil || lw != 2 {
		t.Fatalf("delete before -1: low watermark %d, %v; want 2 (the open transaction's first offset)", lw, err)
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	// Offsets 0-3 hold the records, 4 the commit marker.
	waitLSO(t, b, "tx", 5)
	if lw, err := del(-1); err != nil || lw != 5 {
		t.Fatalf("delete before -1 after the commit: low watermark %d, %v; want the high watermark 5", lw, err)
	}
}

// TestOrphanTransactionAbortedAtRecovery: a transactional batch that no
// transactional id owns (Produce refuses one now, but a log written before
// may hold it) opens a transaction that nothing can end: the last stable
// offset stays at its first offset. At the next start the broker aborts it
// (an ABORT marker), so read_committed readers and retention move on.
func TestOrphanTransactionAbortedAtRecovery(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(Options{DataDir: dir, Listen: "127.0.0.1:0", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	createTopic(t, b, "tx", 1)
	raw := rawProducerBatch(4242, 0, 0, "orphan")
	raw[22] |= 0x10 // attributes, low byte: transactional
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], castagnoli))
	tp, ok := b.reg.Get("tx")
	if !ok {
		t.Fatal("no topic tx")
	}
	p, _ := tp.Partition(0)
	if err := p.Log().(topics.TxnLog).AppendTrusted(testCtx(t), raw); err != nil {
		t.Fatal(err)
	}
	if hw, lso := ends(t, b, "tx"); hw != 1 || lso != 0 {
		t.Fatalf("with the orphan batch: high watermark %d, last stable offset %d; want 1 and 0", hw, lso)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := startBroker(t, Options{DataDir: dir})
	if hw, lso := ends(t, b2, "tx"); hw != 2 || lso != 2 {
		t.Fatalf("after the restart: high watermark %d, last stable offset %d; want 2 and 2 (the orphan aborted by a marker at 1)", hw, lso)
	}
	if got := readAll(t, b2, "tx", false, 1); !slices.Equal(got, []string{"orphan"}) {
		t.Fatalf("read_uncommitted read %v, want [orphan]", got)
	}
	if got := readAll(t, b2, "tx", true, 0); len(got) != 0 {
		t.Fatalf("read_committed read %v, want nothing (aborted)", got)
	}
}
