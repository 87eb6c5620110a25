package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/broker/internal/metadata"
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

// TestClusterReassignThrottled: r/0 holds 200 batches on broker 4 alone;
// `weir topic reassign --plan` adds broker 5 with --throttle 1 (byte per
// second): 5's catch-up stalls after its first batch (a fetch returns at
// least one whole batch, then the bucket is in debt), so --verify reports
// it in progress and leaves the throttle, while replication to the ISR of
// another partition on 4 and 5 is not throttled (acks=all produces there
// succeed). Once the rate is raised the reassignment completes, and
// --verify removes the throttle from the metadata.
func TestClusterReassignThrottled(t *testing.T) {
	c := startLeadersCluster(t, 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers[0].Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	createAssigned(t, ctx, cl, "r", []int32{4}, nil)
	createAssigned(t, ctx, cl, "isr", []int32{4, 5}, nil)
	waitPlacement(t, ctx, cl, 1, "r", 4, []int32{4})
	waitPlacement(t, ctx, cl, 1, "isr", 4, []int32{4, 5})
	leader := c.brokers[3].Addr()
	value := string(bytes.Repeat([]byte("x"), 1000))
	for i := range 200 {
		if code := rawProduce(t, leader, "r", 0, value, 5000); code != 0 {
			t.Fatalf("produce %d to r/0: error code %d", i, code)
		}
	}
	plan := cli.Plan{Version: 1, Partitions: []cli.PlanPartition{{Topic: "r", Partition: 0, Replicas: []int32{4, 5}}}}
	var buf bytes.Buffer
	if err := cli.ReassignPlan(ctx, adm, &buf, cli.Output{}, plan, 1); err != nil {
		t.Fatalf("reassign: %v\n%s", err, buf.String())
	}
	t.Logf("reassign:\n%s", buf.String())
	if want := `{"version":1,"partitions":[{"topic":"r","partition":0,"replicas":[4]}]}`; !bytes.Contains(buf.Bytes(), []byte(want)) {
		t.Fatalf("reassign did not print the rollback plan %s:\n%s", want, buf.String())
	}
	throttle := func(b *Broker) (string, bool) {
		v, ok := b.cn.Image().Config(metadata.ConfigResource{Type: metadata.ConfigBroker})[cli.ThrottleRateConfig]
		return v, ok
	}
	eventually(t, 10*time.Second, "the throttle in broker 5's metadata", func() error {
		if v, ok := throttle(c.brokers[4]); !ok || v != "1" {
			return fmt.Errorf("%s=%q (set: %v)", cli.ThrottleRateConfig, v, ok)
		}
		return nil
	})
	// ISR members' replication is not throttled: acks=all to isr/0 (on
	// 4 and 5) needs 5's fetches.
	for i := range 20 {
		if code := rawProduce(t, leader, "isr", 0, value, 5000); code != 0 {
			t.Fatalf("acks=all produce %d to isr/0 while r/0's catch-up is throttled: error code %d", i, code)
		}
	}
	if err := cli.VerifyPlan(ctx, adm, &buf, cli.Output{}, plan); err == nil || !strings.Contains(err.Error(), "in progress") {
		t.Fatalf("verify at 1 byte/s: %v, want r/0 in progress\n%s", err, buf.String())
	}
	if _, ok := throttle(c.brokers[4]); !ok {
		t.Fatal("verify removed the throttle before the reassignment was done")
	}
	if l := partitionLog(c.brokers[4], "r", 0).LogEndOffset(); l >= 200 {
		t.Fatalf("broker 5 holds %d records of r/0 at 1 byte/s", l)
	}
	fast := "100000000"
	if _, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: cli.ThrottleRateConfig, Op: kadm.SetConfig, Value: &fast}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the reassignment done and the throttle removed by --verify", func() error {
		buf.Reset()
		return cli.VerifyPlan(ctx, adm, &buf, cli.Output{}, plan)
	})
	t.Logf("verify:\n%s", buf.String())
	eventually(t, 10*time.Second, "no throttle in any broker's metadata", func() error {
		for i, b := range c.brokers {
			if v, ok := throttle(b); ok {
				return fmt.Errorf("node %d still has %s=%s", i+1, cli.ThrottleRateConfig, v)
			}
		}
		return nil
	})
	if l := partitionLog(c.brokers[4], "r", 0).LogEndOffset(); l != 200 {
		t.Fatalf("broker 5 holds %d records of r/0, want 200", l)
	}
}

// TestClusterReassignPlanJSON: `weir topic reassign --plan FILE --json`
// prints one document, the rollback plan and every move, the refused one
// with the controller's reason, and fails naming the refused partition.
func TestClusterReassignPlanJSON(t *testing.T) {
	c := startLeadersCluster(t, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers[0].Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	createAssigned(t, ctx, cl, "j", []int32{4}, nil)
	createAssigned(t, ctx, cl, "k", []int32{4}, nil)
	waitPlacement(t, ctx, cl, 1, "j", 4, []int32{4})
	waitPlacement(t, ctx, cl, 1, "k", 4, []int32{4})
	plan := cli.Plan{Version: 1, Partitions: []cli.PlanPartition{
		{Topic: "j", Partition: 0, Replicas: []int32{4}},
		{Topic: "k", Partition: 0, Replicas: []int32{4, 9}}, // 9 is not registered
	}}
	var buf bytes.Buffer
	err = cli.ReassignPlan(ctx, kadm.NewClient(cl), &buf, cli.Output{JSON: true}, plan, 0)
	if err == nil || !strings.Contains(err.Error(), "refused for k/0") {
		t.Fatalf("reassign: %v, want k/0 refused\n%s", err, buf.String())
	}
	var doc struct {
		Rollback cli.Plan   `json:"rollback"`
		Moves    []cli.Move `json:"moves"`
	}
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("reassign --json: %v", err)
	}
	if dec.More() {
		t.Fatal("reassign --json printed more than one document")
	}
	wantBack := cli.Plan{Version: 1, Partitions: []cli.PlanPartition{
		{Topic: "j", Partition: 0, Replicas: []int32{4}},
		{Topic: "k", Partition: 0, Replicas: []int32{4}},
	}}
	if d := cmp.Diff(wantBack, doc.Rollback); d != "" {
		t.Fatalf("rollback plan (-want +got):\n%s", d)
	}
	if len(doc.Moves) != 2 || doc.Moves[0].Err != "" || !strings.Contains(doc.Moves[1].Err, "not registered") {
		t.Fatalf("moves %+v, want j/0 started and k/0 refused (broker 9 not registered)", doc.Moves)
	}
	if d := cmp.Diff([]int32{4, 9}, doc.Moves[1].To); d != "" || !slices.Equal(doc.Moves[1].From, []int32{4}) {
		t.Fatalf("k/0's move %+v, want from [4] to [4 9]", doc.Moves[1])
	}
}
