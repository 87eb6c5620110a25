package protocol

import (
	"context"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/txn"
)

// laggingCluster is a Cluster whose view moves to next when synced with
// the controller (or fails to, with syncErr).
type laggingCluster struct {
	view, next *ClusterView
	syncErr    error
	syncs      int
}

func (c *laggingCluster) View() *ClusterView { return c.view }

func (c *laggingCluster) Forward(context.Context, kmsg.Request) (kmsg.Response, error) {
	return nil, errors.New("not here")
}

func (c *laggingCluster) SyncMetadata(context.Context) error {
	c.syncs++
	if c.syncErr != nil {
		return c.syncErr
	}
	c.view = c.next
	return nil
}

func viewWith(topics map[string]int) *ClusterView {
	v := &ClusterView{Topics: map[string]*ClusterTopic{}}
	for name, n := range topics {
		v.Topics[name] = &ClusterTopic{Name: name, Partitions: make([]ClusterPartition, n)}
	}
	return v
}

// TestMarkerViewCatchesUp: a coordinator whose view does not name a
// partition of a transaction (a topic created, or partitions added, after
// what this broker has applied) catches its view up with the controller
// before taking the partition as deleted; when the controller cannot be
// asked, the markers wait instead of being dropped.
func TestMarkerViewCatchesUp(t *testing.T) {
	ctx := context.Background()
	parts := []txn.TopicPartition{{Topic: "a", Partition: 0}, {Topic: "b", Partition: 2}}

	// Every partition in the view: no trip to the controller.
	c := &laggingCluster{view: viewWith(map[string]int{"a": 1, "b": 3})}
	if v, err := markerView(ctx, c, parts); err != nil || v != c.view || c.syncs != 0 {
		t.Fatalf("view naming every partition: %v, %d syncs; want it as is, none", err, c.syncs)
	}

	// b is new to the controller, and b/2 too: the view catches up.
	c = &laggingCluster{view: viewWith(map[string]int{"a": 1, "b": 2}), next: viewWith(map[string]int{"a": 1, "b": 3})}
	v, err := markerView(ctx, c, parts)
	if err != nil || c.syncs != 1 || v.Topics["b"] == nil || len(v.Topics["b"].Partitions) != 3 {
		t.Fatalf("lagging view: %v, %d syncs; want the controller's view, with b/2", err, c.syncs)
	}

	// The controller cannot be reached: no view, so nothing is dropped.
	c = &laggingCluster{view: viewWith(map[string]int{"a": 1}), syncErr: ErrNoController}
	if _, err := markerView(ctx, c, parts); !errors.Is(err, ErrNoController) {
		t.Fatalf("no controller: %v, want ErrNoController (try again later)", err)
	}

	// Deleted: caught up, b is still not there, and the caller drops it.
	c = &laggingCluster{view: viewWith(map[string]int{"a": 1}), next: viewWith(map[string]int{"a": 1})}
	if v, err := markerView(ctx, c, parts); err != nil || c.syncs != 1 || v.Topics["b"] != nil {
		t.Fatalf("deleted topic: %v, %d syncs; want the caught-up view without b", err, c.syncs)
	}
}
