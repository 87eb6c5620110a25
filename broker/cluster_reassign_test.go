package broker

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/internal/cli"
)

// placement returns topic/0's replicas and leader as broker via's
// metadata has them.
func placement(ctx context.Context, cl *kgo.Client, topic string) ([]int32, int32, error) {
	md, err := kadm.NewClient(cl).Metadata(ctx, topic)
	if err != nil {
		return nil, 0, err
	}
	pd, ok := md.Topics[topic].Partitions[0]
	if !ok {
		return nil, 0, fmt.Errorf("no %s/0 in metadata", topic)
	}
	return pd.Replicas, pd.Leader, nil
}

// TestClusterReassignUnderLoad: three brokers (4, 5, 6) beside three
// voters; an idempotent acks=all producer writes to r/0 on replicas 4
// (leader) and 5 the whole time. `weir topic reassign r --partition 0
// --replicas 5,6` moves it: leadership leaves 4 at once, 6 catches up,
// the assignment switches to [5 6] and 4 drops its copy. Then `weir
// cluster drain 5` moves it off 5 (to the least loaded other broker):
// leadership to 6 first. In the end every acknowledged record is read exactly once
// from the new replicas, whose logs agree.
func TestClusterReassignUnderLoad(t *testing.T) {
	c := startLeadersCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers[0].Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	createAssigned(t, ctx, cl, "r", []int32{4, 5}, nil)
	waitPlacement(t, ctx, cl, 1, "r", 4, []int32{4, 5})
	acks, stop := produceInBackground(t, c, "r")
	defer stop()
	waitAcks := func(n int) {
		t.Helper()
		eventually(t, 30*time.Second, fmt.Sprintf("%d records acknowledged", n), func() error {
			if got := acks.count(); got < n {
				return fmt.Errorf("%d acknowledged", got)
			}
			return nil
		})
	}
	waitAcks(50)

	var buf bytes.Buffer
	if err := cli.Reassign(ctx, adm, &buf, cli.Output{}, "r", 0, []int32{5, 6}); err != nil {
		t.Fatalf("reassign: %v\n%s", err, buf.String())
	}
	t.Logf("reassign:\n%s", buf.String())
	eventually(t, 30*time.Second, "r/0 on [5 6]", func() error {
		rs, l, err := placement(ctx, cl, "r")
		if err != nil {
			return err
		}
		if !slices.Equal(rs, []int32{5, 6}) || l != 5 {
			return fmt.Errorf("replicas %v leader %d", rs, l)
		}
		return nil
	})
	eventually(t, 10*time.Second, "4's copy of r/0 dropped", func() error {
		if l := partitionLog(c.brokers[3], "r", 0); l.LogEndOffset() != l.LogStartOffset() {
			return fmt.Errorf("node 4's log ends at %d", l.LogEndOffset())
		}
		return nil
	})
	waitAcks(acks.count() + 50)

	buf.Reset()
	if err := cli.Drain(ctx, adm, &buf, cli.Output{}, 5); err != nil {
		t.Fatalf("drain: %v\n%s", err, buf.String())
	}
	t.Logf("drain:\n%s", buf.String())
	var moved int32 // the broker that took 5's replica
	eventually(t, 30*time.Second, "r/0 off broker 5", func() error {
		rs, l, err := placement(ctx, cl, "r")
		if err != nil {
			return err
		}
		if len(rs) != 2 || rs[0] != 6 || rs[1] == 5 || rs[1] == 6 || l != 6 {
			return fmt.Errorf("replicas %v leader %d", rs, l)
		}
		moved = rs[1]
		return nil
	})
	waitAcks(acks.count() + 50)
	stop()

	a := slices.Clone(acks.acked)
	got := readCluster(t, ctx, c, "r", a[len(a)-1]+1)
	seen := map[string]int{}
	for _, v := range got {
		seen[v]++
	}
	for _, n := range a {
		switch seen[strconv.Itoa(n)] {
		case 1:
		case 0:
			t.Fatalf("acknowledged record %d lost (%d acknowledged, %d read)", n, len(a), len(got))
		default:
			t.Fatalf("acknowledged record %d read %d times", n, seen[strconv.Itoa(n)])
		}
	}
	end := partitionLog(c.brokers[5], "r", 0).LogEndOffset()
	waitOn(t, c, "r", end, moved, 6)
	if x, y := logBytes(t, partitionLog(c.brokers[moved-1], "r", 0), end), logBytes(t, partitionLog(c.brokers[5], "r", 0), end); !bytes.Equal(x, y) {
		t.Fatalf("r/0: the logs of %d and 6 differ", moved)
	}
	eventually(t, 10*time.Second, "5's copy of r/0 dropped", func() error {
		if l := partitionLog(c.brokers[4], "r", 0); l.LogEndOffset() != l.LogStartOffset() {
			return fmt.Errorf("node 5's log ends at %d", l.LogEndOffset())
		}
		return nil
	})
	t.Logf("%d acknowledged, %d failed, %d read", len(a), acks.errs, len(got))
}
