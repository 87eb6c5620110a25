package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// txnCommitOffset adds group g to p's open transaction and commits offset
// off for tx/0 in it (TxnOffsetCommit v3, no member: a simple consumer).
func txnCommitOffset(t *testing.T, p *kgo.Client, g string, off int64) {
	t.Helper()
	ctx := testCtx(t)
	// A record too, so that the client ends the transaction with EndTxn
	// (it does not know of offsets added through raw requests).
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	pid, epoch, err := p.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ao := kmsg.NewPtrAddOffsetsToTxnRequest()
	ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = "offsets-tx", pid, epoch, g
	aor, err := ao.RequestWith(ctx, p)
	if err != nil || aor.ErrorCode != 0 {
		t.Fatalf("AddOffsetsToTxn: %v, error %d", err, aor.ErrorCode)
	}
	tc := kmsg.NewPtrTxnOffsetCommitRequest()
	tc.Version = 3
	tc.TransactionalID, tc.Group, tc.ProducerID, tc.ProducerEpoch, tc.Generation = "offsets-tx", g, pid, epoch, -1
	tp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	tp.Partition, tp.Offset = 0, off
	tc.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "tx", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{tp}}}
	tcr, err := tc.RequestWith(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if c := tcr.Topics[0].Partitions[0].ErrorCode; c != 0 {
		t.Fatalf("TxnOffsetCommit: %v", kerr.ErrorForCode(c))
	}
}

// fetchOffset returns g's committed offset of tx/0 and its error code, with
// or without RequireStable.
func fetchOffset(t *testing.T, c *kgo.Client, g string, stable bool) (int64, int16) {
	t.Helper()
	of := kmsg.NewPtrOffsetFetchRequest()
	of.Version, of.Group, of.RequireStable = 7, g, stable
	of.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "tx", Partitions: []int32{0}}}
	r, err := of.RequestWith(testCtx(t), c)
	if err != nil {
		t.Fatal(err)
	}
	if r.ErrorCode != 0 {
		t.Fatalf("OffsetFetch: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	p := r.Topics[0].Partitions[0]
	return p.Offset, p.ErrorCode
}

// waitOffset polls until g's committed offset of tx/0 is want.
func waitOffset(t *testing.T, c *kgo.Client, g string, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, code := fetchOffset(t, c, g, true)
		if got == want && code == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s: offset %d (error %v), want %d", g, got, kerr.ErrorForCode(code), want)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}

// TestTxnOffsetCommitVisibleAtMarker: offsets committed in a transaction
// are invisible (UNSTABLE_OFFSET_COMMIT with RequireStable, the previous
// offset without) until the commit's marker; an abort drops them; a broker
// restart in between keeps them pending, and the commit after it makes
// them visible.
func TestTxnOffsetCommitVisibleAtMarker(t *testing.T) {
	addr, dir := freePort(t), t.TempDir()
	b, err := Open(Options{DataDir: dir, Listen: addr, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	createTopic(t, b, "tx", 1)
	p, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("offsets-tx"), kgo.DefaultProduceTopic("tx"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := testCtx(t)

	// Committed.
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	txnCommitOffset(t, p, "g", 5)
	if off, code := fetchOffset(t, p, "g", true); code != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("RequireStable while pending: offset %d, error %v; want UNSTABLE_OFFSET_COMMIT", off, kerr.ErrorForCode(code))
	}
	if off, code := fetchOffset(t, p, "g", false); off != -1 || code != 0 {
		t.Fatalf("without RequireStable while pending: offset %d, error %v; want -1", off, kerr.ErrorForCode(code))
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	waitOffset(t, p, "g", 5)

	// KIP-447: a member the group does not know is refused.
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	pid, epoch, err := p.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tc := kmsg.NewPtrTxnOffsetCommitRequest()
	tc.Version = 3
	tc.TransactionalID, tc.Group, tc.ProducerID, tc.ProducerEpoch = "offsets-tx", "g", pid, epoch
	tc.Generation, tc.MemberID = 3, "ghost"
	tp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	tp.Partition, tp.Offset = 0, 7
	tc.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "tx", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{tp}}}
	tcr, err := tc.RequestWith(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if c := tcr.Topics[0].Partitions[0].ErrorCode; c != kerr.UnknownMemberID.Code {
		t.Fatalf("TxnOffsetCommit from an unknown member: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(c))
	}
	if err := p.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}

	// Aborted: the offset stays 5.
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	txnCommitOffset(t, p, "g", 9)
	if err := p.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	waitOffset(t, p, "g", 5)

	// Pending across a restart, then committed.
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	txnCommitOffset(t, p, "g", 12)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2, err := Open(Options{DataDir: dir, Listen: addr, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, b2)
	if off, code := fetchOffset(t, c, "g", true); code != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("after the restart, RequireStable: offset %d, error %v; want UNSTABLE_OFFSET_COMMIT", off, kerr.ErrorForCode(code))
	}
	if off, _ := fetchOffset(t, c, "g", false); off != 5 {
		t.Fatalf("after the restart: offset %d, want 5", off)
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	waitOffset(t, c, "g", 12)

	// The next start replays the committed offset (at its marker), with
	// nothing pending.
	if err := b2.Close(); err != nil {
		t.Fatal(err)
	}
	b3 := startBroker(t, Options{DataDir: dir, Listen: addr})
	if off, code := fetchOffset(t, newClient(t, b3), "g", true); off != 12 || code != 0 {
		t.Fatalf("after a second restart: offset %d, error %v; want 12", off, kerr.ErrorForCode(code))
	}
}
