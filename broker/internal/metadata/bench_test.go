package metadata

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// stateMachine is the quorum's StateMachine contract, restated here so
// that the compiler checks *Image has its shape without importing quorum.
type stateMachine interface {
	Apply(index uint64, data []byte) error
	Snapshot() (data []byte, index uint64, err error)
	Restore(data []byte, index uint64) error
}

var _ stateMachine = (*Image)(nil)

// benchCluster returns a controller over an image with three unfenced
// brokers and topics of 10 partitions with replication factor 3.
func benchCluster(b *testing.B, topics int) (*Controller, *Image) {
	b.Helper()
	var n uint32
	opts := Options{NewTopicID: func() TopicID {
		n++
		return TopicID{12: byte(n >> 24), 13: byte(n >> 16), 14: byte(n >> 8), 15: byte(n)}
	}}
	im := NewImage()
	c, err := NewController(im, ctlEpoch, opts)
	if err != nil {
		b.Fatal(err)
	}
	commit := func(records []Record, err error) {
		if err != nil {
			b.Fatal(err)
		}
		if err := im.Apply(im.Applied()+1, EncodeEntry(records)); err != nil {
			b.Fatal(err)
		}
		c.Committed(im.Applied())
	}
	for node := int32(1); node <= 3; node++ {
		reg := kmsg.NewPtrBrokerRegistrationRequest()
		reg.BrokerID = node
		reg.Listeners = []kmsg.BrokerRegistrationRequestListener{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9092}}
		records, resp, err := c.RegisterBroker(ctlEpoch, reg)
		commit(records, err)
		hb := kmsg.NewPtrBrokerHeartbeatRequest()
		hb.BrokerID, hb.BrokerEpoch, hb.CurrentMetadataOffset = node, resp.BrokerEpoch, int64(im.Applied())
		records, _, err = c.Heartbeat(ctlEpoch, hb)
		commit(records, err)
	}
	for i := range topics {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: fmt.Sprintf("t%d", i), NumPartitions: 10, ReplicationFactor: 3}}
		records, _, err := c.CreateTopics(req)
		commit(records, err)
	}
	return c, im
}

// BenchmarkCreateTopic: the controller deciding one CreateTopics (one topic,
// 10 partitions, replication factor 3) on a cluster of 100 such topics, and
// the image applying the resulting entry.
func BenchmarkCreateTopic(b *testing.B) {
	c, im := benchCluster(b, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: fmt.Sprintf("new%d", i), NumPartitions: 10, ReplicationFactor: 3}}
		records, resp, err := c.CreateTopics(req)
		if err != nil || resp.Topics[0].ErrorCode != 0 {
			b.Fatal(err, resp.Topics[0].ErrorCode)
		}
		if err := im.Apply(im.Applied()+1, EncodeEntry(records)); err != nil {
			b.Fatal(err)
		}
		c.Committed(im.Applied())
	}
}

// BenchmarkHeartbeat: a steady-state heartbeat (no records) on a cluster of
// 100 topics.
func BenchmarkHeartbeat(b *testing.B) {
	c, im := benchCluster(b, 100)
	br, _ := im.Broker(1)
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID, req.BrokerEpoch, req.CurrentMetadataOffset = 1, int64(br.Epoch), int64(im.Applied())
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		records, resp, err := c.Heartbeat(ctlEpoch.Add(time.Duration(i)), req)
		if err != nil || resp.ErrorCode != 0 || len(records) != 0 {
			b.Fatal(err, resp.ErrorCode, len(records))
		}
	}
}

// BenchmarkSnapshotRestore: snapshot and restore of an image of 100 topics
// of 10 partitions.
func BenchmarkSnapshotRestore(b *testing.B) {
	_, im := benchCluster(b, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		snap, idx, _ := im.Snapshot()
		if err := NewImage().Restore(snap, idx); err != nil {
			b.Fatal(err)
		}
	}
}
