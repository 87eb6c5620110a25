package broker

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

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
	run := func(prefix string, commit bool) []string {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		var vals []string
		for part := range int32(parts) {
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

	slices.Sort(committed)
	all := slices.Sorted(slices.Values(append(slices.Clone(committed), aborted...)))
	if got := readIsolated(ctx, t, c, "tx", kgo.ReadCommitted(), len(committed)); !slices.Equal(got, committed) {
		t.Fatalf("read_committed: %v, want %v", got, committed)
	}
	if got := readIsolated(ctx, t, c, "tx", kgo.ReadUncommitted(), len(all)); !slices.Equal(got, all) {
		t.Fatalf("read_uncommitted: %v, want %v", got, all)
	}
}

// readIsolated reads topic from the start at isolation level iso until it has
// want records and the topic's end is reached (read once more for a
// quiet moment so that extra records show), and returns the values sorted.
func readIsolated(ctx context.Context, t *testing.T, c *testCluster, topic string, iso kgo.IsolationLevel, want int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.ConsumeTopics(topic),
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
	quiet, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	for quiet.Err() == nil {
		for _, r := range cl.PollFetches(quiet).Records() {
			got = append(got, string(r.Value))
		}
	}
	slices.Sort(got)
	return got
}
