package cluster

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weir-dev/weir/broker/internal/metadata"
	"github.com/weir-dev/weir/broker/internal/protocol"
)

// TestBuildView: the view lists unfenced brokers only, with their first
// listener, and each partition's placement; the controller it names is
// the raft leader when that is a live broker, else a live broker (a
// controller-only leader cannot be reached by clients).
func TestBuildView(t *testing.T) {
	img := metadata.NewImage()
	var recs []metadata.Record
	for _, n := range []metadata.NodeID{1, 2, 3} {
		recs = append(recs, metadata.RegisterBrokerRecord{Node: n, Epoch: metadata.BrokerEpoch(n),
			Listeners: []metadata.Listener{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: uint16(9000 + n)}}, Fenced: true})
	}
	recs = append(recs,
		metadata.UnfenceBrokerRecord{Node: 1, Epoch: 1}, metadata.UnfenceBrokerRecord{Node: 2, Epoch: 2},
		metadata.TopicRecord{ID: metadata.TopicID{7}, Name: "t"},
		metadata.PartitionRecord{Topic: metadata.TopicID{7}, Partition: 0, Replicas: []metadata.NodeID{2, 1}, ISR: []metadata.NodeID{2, 1}, Leader: 2},
	)
	if err := img.Apply(1, metadata.EncodeEntry(recs)); err != nil {
		t.Fatal(err)
	}
	brokers := []protocol.Node{
		{ID: 1, Host: "127.0.0.1", Port: 9001, Listeners: []protocol.NodeListener{{Name: "PLAINTEXT", Protocol: protocol.Plaintext, Host: "127.0.0.1", Port: 9001}}},
		{ID: 2, Host: "127.0.0.1", Port: 9002, Listeners: []protocol.NodeListener{{Name: "PLAINTEXT", Protocol: protocol.Plaintext, Host: "127.0.0.1", Port: 9002}}},
	}
	for _, tc := range []struct {
		leader, want int32
	}{{2, 2}, {3, 1}, {-1, 1}} {
		v := buildView(img, "c", tc.leader)
		if v.ControllerID != tc.want {
			t.Errorf("raft leader %d: view names controller %d, want %d", tc.leader, v.ControllerID, tc.want)
		}
		if diff := cmp.Diff(brokers, v.Brokers); diff != "" {
			t.Errorf("brokers (-want +got):\n%s", diff)
		}
	}
	want := &protocol.ClusterTopic{Name: "t", ID: [16]byte{7}, Partitions: []protocol.ClusterPartition{
		{Leader: 2, Replicas: []int32{2, 1}, ISR: []int32{2, 1}},
	}}
	v := buildView(img, "c", 2)
	if diff := cmp.Diff(want, v.Topics["t"]); diff != "" {
		t.Errorf("topic (-want +got):\n%s", diff)
	}
	if v.ByID[[16]byte{7}] != v.Topics["t"] || v.Applied != 1 || v.ClusterID != "c" {
		t.Errorf("view: by id %v, applied %d, cluster %q", v.ByID, v.Applied, v.ClusterID)
	}
}
