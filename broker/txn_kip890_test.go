package broker

import (
	"encoding/binary"
	"hash/crc32"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// TestTransactionVersionServesBothClients: franz-go reads the
// transaction.version feature and runs KIP-890 part 2 (EndTxn v5: every
// end of a transaction bumps its epoch, Produce v12 and TxnOffsetCommit v5
// add what they touch); the same client capped at Kafka 3.9's versions runs
// the older protocol at one epoch. Both read back exactly their committed
// transactions.
func TestTransactionVersionServesBothClients(t *testing.T) {
	b := startBroker(t, Options{})
	createTopic(t, b, "tx", 1)
	for _, tc := range []struct {
		name string
		opts []kgo.Opt
		bump int16 // epoch growth per transaction
	}{
		{"transaction.version=2", nil, 1},
		{"transaction.version=1", []kgo.Opt{kgo.MaxVersions(kversion.V3_9_0())}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "tv-" + tc.name
			p := txnProducer(t, b, id, tc.opts...)
			ctx := testCtx(t)
			_, start, err := p.ProducerID(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for i, commit := range []bool{true, false, true} {
				if err := p.BeginTransaction(); err != nil {
					t.Fatal(err)
				}
				produceTxn(t, p, tc.name+"/"+string(rune('a'+i)))
				if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
					t.Fatalf("end transaction %d: %v", i, err)
				}
				_, epoch, err := p.ProducerID(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if want := start + int16(i+1)*tc.bump; epoch != want {
					t.Fatalf("after transaction %d the epoch is %d, want %d", i, epoch, want)
				}
			}
		})
	}
	got := readAll(t, b, "tx", true, 4)
	slices.Sort(got)
	want := []string{"transaction.version=1/a", "transaction.version=1/c", "transaction.version=2/a", "transaction.version=2/c"}
	if !slices.Equal(got, want) {
		t.Fatalf("read_committed %v, want %v", got, want)
	}
}

// TestDelayedTransactionMessagesFenced is the delayed-message problem
// Jepsen found in Kafka's transaction protocol: a produce and an
// EndTxn(commit) of one transaction, held up in the network (here: held by
// the test, which sends them late, as a network that delays a request and
// lets the client's retry through would), land while the same producer's
// next transaction is open. Under transaction.version 2 (EndTxn v5) the
// first transaction's end bumped the epoch, so both are fenced and the next
// transaction keeps exactly its own content. The same messages from a
// client of the older protocol are not fenced (as in Kafka): the late
// produce joins the next transaction and the late commit commits it, which
// the test checks too, to show that it can see the damage.
func TestDelayedTransactionMessagesFenced(t *testing.T) {
	b := startBroker(t, Options{})
	for _, tv2 := range []bool{true, false} {
		name, topic := "transaction.version=2", "delayed2"
		opts := []kgo.Opt(nil)
		if !tv2 {
			name, topic = "transaction.version=1", "delayed1"
			v := kversion.V3_9_0()
			v.SetMaxKeyVersion(int16(kmsg.AddPartitionsToTxn), 3) // a client's version
			opts = []kgo.Opt{kgo.MaxVersions(v)}
		}
		t.Run(name, func(t *testing.T) {
			createTopic(t, b, topic, 2)
			c := newClient(t, b, opts...)
			ctx := testCtx(t)
			id := "delayed-" + topic

			init := kmsg.NewPtrInitProducerIDRequest()
			init.TransactionalID, init.TransactionTimeoutMillis = &id, 60000
			ir, err := init.RequestWith(ctx, c)
			if err != nil || ir.ErrorCode != 0 {
				t.Fatalf("InitProducerId: %v %v", err, kerr.ErrorForCode(ir.ErrorCode))
			}
			pid, epoch := ir.ProducerID, ir.ProducerEpoch
			add := func(epoch int16, parts ...int32) {
				t.Helper()
				if tv2 {
					return // Produce v12 adds them
				}
				req := kmsg.NewPtrAddPartitionsToTxnRequest()
				req.TransactionalID, req.ProducerID, req.ProducerEpoch = id, pid, epoch
				req.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: topic, Partitions: parts}}
				resp, err := req.RequestWith(ctx, c)
				if err != nil {
					t.Fatal(err)
				}
				for _, rp := range resp.Topics[0].Partitions {
					if rp.ErrorCode != 0 {
						t.Fatalf("AddPartitionsToTxn %d: %v", rp.Partition, kerr.ErrorForCode(rp.ErrorCode))
					}
				}
			}
			produce := func(part int32, epoch int16, seq int32, value string) *kmsg.ProduceRequest {
				raw := rawProducerBatch(pid, epoch, seq, value)
				raw[22] |= 0x10 // transactional
				binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], castagnoli))
				req := kmsg.NewPtrProduceRequest()
				req.TransactionID, req.Acks, req.TimeoutMillis = &id, -1, 5000
				req.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: part, Records: raw}}}}
				return req
			}
			send := func(req *kmsg.ProduceRequest) int16 {
				t.Helper()
				resp, err := req.RequestWith(ctx, c)
				if err != nil {
					t.Fatal(err)
				}
				return resp.Topics[0].Partitions[0].ErrorCode
			}
			end := func(epoch int16, commit bool) *kmsg.EndTxnRequest {
				req := kmsg.NewPtrEndTxnRequest()
				req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = id, pid, epoch, commit
				return req
			}
			endTxn := func(req *kmsg.EndTxnRequest) *kmsg.EndTxnResponse {
				t.Helper()
				resp, err := req.RequestWith(ctx, c)
				if err != nil {
					t.Fatal(err)
				}
				return resp
			}

			// Transaction 1: "a" to partition 0, committed. A produce of it
			// to partition 1 and a first EndTxn(commit) are held up; the
			// client's retry of the EndTxn gets through.
			add(epoch, 0)
			if code := send(produce(0, epoch, 0, "a")); code != 0 {
				t.Fatalf("produce a: %v", kerr.ErrorForCode(code))
			}
			lateProduce := produce(1, epoch, 0, "late")
			lateCommit := end(epoch, true)
			r1 := endTxn(end(epoch, true))
			if r1.ErrorCode != 0 {
				t.Fatalf("EndTxn(commit) of transaction 1: %v", kerr.ErrorForCode(r1.ErrorCode))
			}
			seq0 := int32(1) // the older protocol keeps the epoch, and partition 0's sequence goes on
			if r1.Version >= 5 {
				if r1.ProducerID != pid || r1.ProducerEpoch != epoch+1 {
					t.Fatalf("EndTxn v5 answered producer %d epoch %d, want %d epoch %d", r1.ProducerID, r1.ProducerEpoch, pid, epoch+1)
				}
				epoch, seq0 = r1.ProducerEpoch, 0
			} else if tv2 {
				t.Fatalf("EndTxn went as v%d, want v5", r1.Version)
			}
			waitTxnState(t, c, id, "CompleteCommit")

			// Transaction 2: "b" to partition 0, partition 1 added; then the
			// held-up messages of transaction 1 arrive.
			add(epoch, 0, 1)
			if code := send(produce(0, epoch, seq0, "b")); code != 0 {
				t.Fatalf("produce b: %v", kerr.ErrorForCode(code))
			}
			lateProduceCode := send(lateProduce)
			lateCommitCode := endTxn(lateCommit).ErrorCode
			t.Logf("late produce: %v; late EndTxn(commit): %v", kerr.ErrorForCode(lateProduceCode), kerr.ErrorForCode(lateCommitCode))
			abortCode := endTxn(end(epoch, false)).ErrorCode

			got := readAll(t, b, topic, true, 1)
			slices.Sort(got)
			if !tv2 {
				// The older protocol: the damage the defence prevents.
				if slices.Equal(got, []string{"a"}) {
					t.Fatalf("without the epoch bump the late messages were still refused (produce %v, commit %v): the test does not show the problem",
						kerr.ErrorForCode(lateProduceCode), kerr.ErrorForCode(lateCommitCode))
				}
				t.Logf("without the epoch bump: read_committed %v (the late commit committed transaction 2)", got)
				return
			}
			if lateProduceCode != kerr.InvalidProducerEpoch.Code {
				t.Errorf("late produce of transaction 1: %v, want INVALID_PRODUCER_EPOCH", kerr.ErrorForCode(lateProduceCode))
			}
			if lateCommitCode != kerr.ProducerFenced.Code {
				t.Errorf("late EndTxn(commit) of transaction 1: %v, want PRODUCER_FENCED", kerr.ErrorForCode(lateCommitCode))
			}
			if abortCode != 0 {
				t.Errorf("EndTxn(abort) of transaction 2: %v", kerr.ErrorForCode(abortCode))
			}
			if !slices.Equal(got, []string{"a"}) {
				t.Fatalf("read_committed %v, want [a]: transaction 1 only", got)
			}
			if all := readAll(t, b, topic, false, 2); !slices.Equal(sorted(all), []string{"a", "b"}) {
				t.Fatalf("read_uncommitted %v, want [a b]: the late produce must not be in the log", all)
			}
		})
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// waitTxnState polls DescribeTransactions until id is in state.
func waitTxnState(t *testing.T, c *kgo.Client, id, state string) {
	t.Helper()
	adm := kadm.NewClient(c)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ds, err := adm.DescribeTransactions(testCtx(t), id)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := ds.On(id, nil)
		if d.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("transaction %s is %s, never reached %s", id, d.State, state)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}
