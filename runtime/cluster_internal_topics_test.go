package runtime_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker"
	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
)

// newWeirCluster starts n in-process Weir nodes, each a controller voter
// and a broker, with the orders topics (replication factor min(3, n)).
func newWeirCluster(t *testing.T, n int, partitions int32) *cluster {
	t.Helper()
	var voters []string
	for i := 1; i <= n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		voters = append(voters, fmt.Sprintf("%d@%s", i, ln.Addr()))
		ln.Close()
	}
	type opened struct {
		b   *broker.Broker
		err error
	}
	// NB: the nodes open together: each waits for a quorum of the others.
	ch := make([]chan opened, n)
	for i := range n {
		ch[i] = make(chan opened, 1)
		dir := t.TempDir()
		go func() {
			b, err := broker.Open(broker.Options{NodeID: int32(i + 1), ControllerVoters: strings.Join(voters, ","),
				Listen: "127.0.0.1:0", DataDir: dir, Fsync: broker.FsyncNever,
				GroupInitialRebalanceDelay: -1, Logger: quietLogger()})
			ch[i] <- opened{b, err}
		}()
	}
	var bs []*broker.Broker
	var addrs []string
	var errs []error
	for i := range n {
		o := <-ch[i]
		if o.err != nil {
			errs = append(errs, fmt.Errorf("node %d: %w", i+1, o.err))
			continue
		}
		bs = append(bs, o.b)
		addrs = append(addrs, o.b.Addr())
	}
	// NB: the nodes close together: one by one, the last ones would each
	// wait for a quorum that is gone.
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, b := range bs {
			wg.Go(func() { _ = b.Close() })
		}
		wg.Wait()
	})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	c := &cluster{addrs: addrs, session: 6 * time.Second}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// Every broker registered first, so that the orders topics (and the
	// application's) are placed on all of them.
	waitFor(t, 20*time.Second, fmt.Sprintf("%d brokers registered", n), func() error {
		bs, err := adm.ListBrokers(context.Background())
		if err == nil && len(bs) != n {
			err = fmt.Errorf("%d brokers", len(bs))
		}
		return err
	})
	createTopics(t, c, partitions)
	// NB: a broker lists a topic once it has applied its creation, which
	// the broker that answered CreateTopics may have done before the
	// others: an instance asking one of them for its input topics too soon
	// is told they do not exist, and stops.
	for _, addr := range addrs {
		bcl, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err != nil {
			t.Fatal(err)
		}
		defer bcl.Close()
		waitFor(t, 20*time.Second, "the orders topics listed by "+addr, func() error {
			req := kmsg.NewPtrMetadataRequest()
			for _, topic := range []string{orders.InputTopic, orders.UpdatesTopic, orders.FinalTopic} {
				rt := kmsg.NewMetadataRequestTopic()
				rt.Topic = kmsg.StringPtr(topic)
				req.Topics = append(req.Topics, rt)
			}
			raw, err := bcl.SeedBrokers()[0].Request(context.Background(), req)
			if err != nil {
				return err
			}
			for _, mt := range raw.(*kmsg.MetadataResponse).Topics {
				if mt.ErrorCode != 0 || len(mt.Partitions) != int(partitions) {
					return fmt.Errorf("%s: %v, %d partitions", *mt.Topic, kerr.ErrorForCode(mt.ErrorCode), len(mt.Partitions))
				}
			}
			return nil
		})
	}
	return c
}

// waitFor polls f every 100ms until it returns nil, failing after d with
// its last error.
func waitFor(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, d, err)
		}
		<-tick.C
	}
}

// TestClusterInternalTopicsReplicated: on a 3-broker Weir cluster an
// application that names no replication factor creates its changelog and
// repartition topics with replication factor 3 and min.insync.replicas 2,
// and counts every order. Fails on the code before: its internal topics
// took the broker's default replication factor, 1.
func TestClusterInternalTopicsReplicated(t *testing.T) {
	c := newWeirCluster(t, 3, 3)
	base := time.UnixMilli(1_700_000_000_000).Truncate(time.Minute)
	p := newProducer(t, c)
	in := startInstance(t, c, t.TempDir())
	seq := 0
	p.send(t, 200, 20, base, &seq)
	in.waitCountsRunning(t, c, p.expected())

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	tds, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var internal []string
	for name, td := range tds {
		if !strings.HasPrefix(name, "orders-app-") {
			continue
		}
		internal = append(internal, name)
		for _, pd := range td.Partitions {
			if len(pd.Replicas) != 3 {
				t.Errorf("%s/%d has replicas %v, want 3", name, pd.Partition, pd.Replicas)
			}
		}
	}
	if len(internal) == 0 {
		t.Fatalf("the application created no internal topic (topics: %v)", tds.Names())
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, internal...)
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range rcs {
		v := ""
		for _, cfg := range rc.Configs {
			if cfg.Key == "min.insync.replicas" && cfg.Value != nil {
				v = *cfg.Value
			}
		}
		if v != "2" {
			t.Errorf("%s: min.insync.replicas %q, want 2", rc.Name, v)
		}
	}
	if !t.Failed() {
		t.Logf("internal topics %v: replication factor 3, min.insync.replicas 2", internal)
	}
}
