package metadata

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestControllerRandom drives a controller with random requests from a few
// brokers and admins, random clock ticks, and proposals that sometimes fail
// (the controller is then Reset). The records it hands out are committed
// in order to a separate image. Throughout: the controller never errs and
// its records always apply; both images keep their invariants; with
// nothing pending, the controller's image is the committed one; no
// unfenced broker outlives its session past a tick; a broker told to shut
// down leads nothing; placed replicas are distinct, unfenced and spread
// over as many racks as they can be.
func TestControllerRandom(t *testing.T) {
	runs, steps := 4, 1500
	if raceEnabled {
		runs, steps = 2, 500
	}
	for i := range runs {
		seed := uint64(time.Now().UnixNano()) + uint64(i)
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Logf("seed %d", seed)
			runControllerRandom(t, seed, steps)
		})
	}
}

func runControllerRandom(t *testing.T, seed uint64, steps int) {
	r := rand.New(rand.NewPCG(seed, seed+1))
	var nextID uint16
	opts := Options{
		SessionTimeout: 5 * time.Second,
		NewTopicID: func() TopicID {
			nextID++
			return TopicID{14: byte(nextID >> 8), 15: byte(nextID)}
		},
		MaxPartitionsPerRequest: 12,
	}
	now := ctlEpoch
	committed := NewImage()
	c, err := NewController(committed, now, opts)
	if err != nil {
		t.Fatal(err)
	}
	var pending [][]Record
	commitPending := func(step int) {
		for _, records := range pending {
			if err := committed.Apply(committed.Applied()+1, EncodeEntry(records)); err != nil {
				t.Fatalf("step %d: committing the controller's records: %v", step, err)
			}
			c.Committed(committed.Applied())
		}
		pending = nil
	}
	topics := []string{"a", "b", "c", "d"}
	pickTopic := func() string { return topics[r.IntN(len(topics))] }
	rackOf := func(n int32) string { return []string{"", "r1", "r2", "r1", "r2", "r3"}[n] }
	stats := map[string]int{}

	for step := 1; step <= steps; step++ {
		img := c.Image()
		node := int32(1 + r.IntN(5))
		epochOf := func() int64 {
			b, _ := img.Broker(NodeID(node))
			if r.IntN(10) == 0 {
				return int64(b.Epoch) - 1
			}
			return int64(b.Epoch)
		}
		var records []Record
		var err error
		op := r.IntN(12)
		switch op {
		case 0:
			req := kmsg.NewPtrBrokerRegistrationRequest()
			req.BrokerID, req.IncarnationID[0] = node, byte(r.IntN(2))
			if rk := rackOf(node); rk != "" {
				req.Rack = &rk
			}
			req.Listeners = []kmsg.BrokerRegistrationRequestListener{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: uint16(9000 + node)}}
			records, _, err = c.RegisterBroker(now, req)
		case 1, 2, 3:
			req := kmsg.NewPtrBrokerHeartbeatRequest()
			req.BrokerID, req.BrokerEpoch = node, epochOf()
			req.CurrentMetadataOffset = int64(committed.Applied())
			req.WantShutdown = r.IntN(15) == 0
			req.WantFence = r.IntN(15) == 0
			var resp *kmsg.BrokerHeartbeatResponse
			records, resp, err = c.Heartbeat(now, req)
			if err == nil && resp.ErrorCode != 0 && len(records) > 0 {
				t.Fatalf("step %d: a refused heartbeat produced records", step)
			}
			if err == nil && resp.ShouldShutdown && c.Image().Leaderships(NodeID(node)) != 0 {
				t.Fatalf("step %d: broker %d told to shut down still leads %d partitions", step, node, c.Image().Leaderships(NodeID(node)))
			}
			if err == nil && resp.ShouldShutdown {
				stats["shutdown"]++
			}
		case 4:
			now = now.Add(time.Duration(r.IntN(4000)) * time.Millisecond)
			records, err = c.Tick(now)
			for _, b := range c.Image().Brokers() {
				if !b.Fenced && !now.Before(c.sessions[b.ID].Add(opts.SessionTimeout)) {
					t.Fatalf("step %d: broker %d unfenced past its session", step, b.ID)
				}
			}
		case 5, 6:
			req := kmsg.NewPtrCreateTopicsRequest()
			for range 1 + r.IntN(2) {
				tp := kmsg.NewCreateTopicsRequestTopic()
				tp.Topic = pickTopic()
				tp.NumPartitions = int32(r.IntN(6) - 1)
				tp.ReplicationFactor = int16(r.IntN(5) - 1)
				if r.IntN(6) == 0 {
					tp.NumPartitions, tp.ReplicationFactor = -1, -1
					for p := range 1 + r.IntN(3) {
						tp.ReplicaAssignment = append(tp.ReplicaAssignment, kmsg.CreateTopicsRequestTopicReplicaAssignment{Partition: int32(p), Replicas: []int32{int32(1 + r.IntN(5)), int32(1 + r.IntN(5))}})
					}
				}
				req.Topics = append(req.Topics, tp)
			}
			unfenced := map[string]bool{}
			var unfencedIDs []NodeID
			for _, b := range img.Brokers() {
				if !b.Fenced {
					unfenced[b.Rack] = true
					unfencedIDs = append(unfencedIDs, b.ID)
				}
			}
			var resp *kmsg.CreateTopicsResponse
			records, resp, err = c.CreateTopics(req)
			if err != nil {
				break
			}
			for i, rt := range resp.Topics {
				if rt.ErrorCode != 0 {
					continue
				}
				stats["topics created"]++
				if len(req.Topics[i].ReplicaAssignment) > 0 {
					continue
				}
				for _, p := range c.Image().Partitions(rt.TopicID) {
					racks := map[string]bool{}
					for _, n := range p.Replicas {
						if !slices.Contains(unfencedIDs, n) {
							t.Fatalf("step %d: replica %d of %s/%d is not an unfenced broker %v", step, n, rt.Topic, p.Partition, unfencedIDs)
						}
						racks[rackOf(int32(n))] = true
					}
					if want := min(len(p.Replicas), len(unfenced)); len(racks) != want || len(p.Replicas) != int(rt.ReplicationFactor) {
						t.Fatalf("step %d: %s/%d replicas %v span %d racks, want %d (rf %d)", step, rt.Topic, p.Partition, p.Replicas, len(racks), want, rt.ReplicationFactor)
					}
				}
			}
		case 7:
			req := kmsg.NewPtrCreatePartitionsRequest()
			req.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: pickTopic(), Count: int32(r.IntN(8))}}
			records, _, err = c.CreatePartitions(req)
		case 8:
			req := kmsg.NewPtrDeleteTopicsRequest()
			req.TopicNames = []string{pickTopic()}
			records, _, err = c.DeleteTopics(req)
		case 9:
			req := kmsg.NewPtrIncrementalAlterConfigsRequest()
			v := strconv.Itoa(r.IntN(9))
			res := kmsg.IncrementalAlterConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: pickTopic()}
			if r.IntN(3) == 0 {
				res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeBroker, ""
			}
			res.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "k", Op: kmsg.IncrementalAlterConfigOp(r.IntN(4)), Value: &v}}
			req.Resources = []kmsg.IncrementalAlterConfigsRequestResource{res}
			records, _, err = c.IncrementalAlterConfigs(req)
		case 10:
			req := kmsg.NewPtrAllocateProducerIDsRequest()
			req.BrokerID, req.BrokerEpoch = node, epochOf()
			records, _, err = c.AllocateProducerIDs(req)
		case 11:
			if r.IntN(4) == 0 {
				req := kmsg.NewPtrUnregisterBrokerRequest()
				req.BrokerID = node
				records, _, err = c.UnregisterBroker(req)
			}
		}
		if err != nil {
			t.Fatalf("step %d (op %d): controller error: %v", step, op, err)
		}
		if len(records) > 0 {
			pending = append(pending, records)
		}
		// Entries commit, or the proposals fail and the controller starts
		// over from the committed image.
		switch x := r.IntN(10); {
		case x < 7:
			commitPending(step)
		case x == 7:
			c.Reset(committed, now)
			pending = nil
			stats["resets"]++
		}
		checkImageInvariants(t, committed)
		checkImageInvariants(t, c.Image())
		if len(pending) == 0 {
			got, want := dumpImage(c.Image()), dumpImage(committed)
			got.Applied = want.Applied
			if d := cmp.Diff(want, got); d != "" {
				t.Fatalf("step %d: controller image differs from the committed one:\n%s", step, d)
			}
		}
	}
	commitPending(steps + 1)
	if stats["topics created"] == 0 || stats["shutdown"] == 0 {
		t.Fatalf("the run never created a topic or shut a broker down: %v", stats)
	}
	t.Logf("%v; %d brokers, %d topics at the end", stats, len(committed.Brokers()), len(committed.Topics()))
}
