package broker

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// syncGate holds back fsyncs of the files of one topic while closed.
type syncGate struct {
	topic string
	mu    sync.Mutex
	open  chan struct{} // closed while the gate is open
}

func newSyncGate(topic string) *syncGate {
	g := &syncGate{topic: topic, open: make(chan struct{})}
	close(g.open)
	return g
}

func (g *syncGate) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
		g.open = make(chan struct{})
	default:
	}
}

func (g *syncGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

func (g *syncGate) MaybeError(op errorfs.Op) error {
	if (op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData) && strings.Contains(op.Path, "/topics/"+g.topic+"/") {
		g.mu.Lock()
		ch := g.open
		g.mu.Unlock()
		<-ch
	}
	return nil
}

func (g *syncGate) String() string { return "syncGate(" + g.topic + ")" }

// TestClusterReplicationCountsOnlyFsynced: under --fsync group the high
// watermark counts what each in-sync replica has fsynced, not what it has
// written. With one follower's fsyncs held back, an acks=all produce is not
// acknowledged (the follower holds the records, unsynced), even once the
// follower's wait for its fsync has given up; once its fsyncs go through,
// the records are committed and acks=all works again.
func TestClusterReplicationCountsOnlyFsynced(t *testing.T) {
	gate := newSyncGate("d")
	defer gate.release()
	c := startTestClusterWith(t, make([]string, 3), func(i int, o *Options) {
		o.ReplicaLagTime = 30 * time.Second // the slow follower stays in the ISR
		if i == 2 {
			o.logFS = errorfs.Wrap(vfs.Default, gate)
			// Its wait for each round's fsync gives up long before
			// the held produce's timeout; it must still not report
			// the records as its own.
			o.cluster.durableWait = 200 * time.Millisecond
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// NB: a partition created while a broker is still fenced starts
	// without it, led by another: the produces below go to node 1.
	createAssigned(t, ctx, cl, "d", []int32{1, 2, 3}, nil)
	waitPlacement(t, ctx, cl, 1, "d", 1, []int32{1, 2, 3})
	leader := c.brokers[0].Addr()
	eventually(t, 15*time.Second, "a first acks=all produce", func() error {
		if code := rawProduce(t, leader, "d", 0, "first", 2000); code != 0 {
			return kerr.ErrorForCode(code)
		}
		return nil
	})
	// NB: a first attempt that timed out may have been written too.
	first := partitionLog(c.brokers[0], "d", 0).LogEndOffset()
	waitReplicated(t, c, "d", 0, first, 10*time.Second)

	gate.shut()
	if code := rawProduce(t, leader, "d", 0, "held", 1500); code == 0 {
		t.Fatal("acks=all acknowledged while an in-sync follower had not fsynced the records")
	} else {
		t.Logf("acks=all with a follower's fsync held back: %v", kerr.ErrorForCode(code))
	}
	slow := partitionLog(c.brokers[2], "d", 0)
	eventually(t, 10*time.Second, "the slow follower holds the records, unsynced", func() error {
		if slow.LogEndOffset() <= first {
			return fmt.Errorf("follower end %d", slow.LogEndOffset())
		}
		return nil
	})
	if hw := partitionLog(c.brokers[0], "d", 0).HighWatermark(); hw != first {
		t.Fatalf("leader's high watermark %d with the follower's fsync held back, want %d", hw, first)
	}
	gate.release()
	eventually(t, 15*time.Second, "the held record committed", func() error {
		if hw := partitionLog(c.brokers[0], "d", 0).HighWatermark(); hw <= first {
			return fmt.Errorf("high watermark %d", hw)
		}
		return nil
	})
	if code := rawProduce(t, leader, "d", 0, "after", 5000); code != 0 {
		t.Fatalf("acks=all after the follower's fsyncs resumed: %v", kerr.ErrorForCode(code))
	}
}
