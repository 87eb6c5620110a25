package metadata

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// alterPartition runs the alter-partition command of the controller
// scenarios (controller_test.go).
func (h *ctlHarness) alterPartition(td *datadriven.TestData) string {
	h.t.Helper()
	req := kmsg.NewPtrAlterPartitionRequest()
	req.Version = int16(h.int(tdArg(td, "v", "2")))
	req.BrokerID = int32(h.int(tdArg(td, "node", "")))
	b, _ := h.c.Image().Broker(NodeID(req.BrokerID))
	req.BrokerEpoch = h.int(tdArg(td, "epoch", strconv.FormatInt(int64(b.Epoch), 10)))
	for _, line := range strings.Split(strings.TrimSpace(td.Input), "\n") {
		fs := strings.Fields(line)
		if len(fs) < 2 {
			h.t.Fatalf("%s: want <topic> <partition> ...", td.Pos)
		}
		_, kv := lineArgs(fs[0] + " " + strings.Join(fs[2:], " "))
		t := kmsg.NewAlterPartitionRequestTopic()
		t.Topic = fs[0]
		if tp, ok := h.c.Image().Topic(TopicName(fs[0])); ok {
			t.TopicID = tp.ID
		} else {
			t.TopicID = TopicID{15: 0xee}
		}
		p := kmsg.NewAlterPartitionRequestTopicPartition()
		p.Partition = int32(h.int(fs[1]))
		cur := Partition{LeaderEpoch: -1, PartitionEpoch: -1}
		if tp, ok := h.c.Image().Topic(TopicName(fs[0])); ok {
			if pp, ok := h.c.Image().Partition(tp.ID, p.Partition); ok {
				cur = pp
			}
		}
		p.LeaderEpoch = int32(h.int(cmpOr(kv["leader-epoch"], strconv.Itoa(int(cur.LeaderEpoch)))))
		p.PartitionEpoch = int32(h.int(cmpOr(kv["pepoch"], strconv.Itoa(int(cur.PartitionEpoch)))))
		for _, m := range strings.Split(kv["isr"], ",") {
			if m == "" {
				continue
			}
			id, e, hasEpoch := strings.Cut(m, ":")
			p.NewISR = append(p.NewISR, int32(h.int(id)))
			ep := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
			ep.BrokerID, ep.BrokerEpoch = int32(h.int(id)), -1
			if hasEpoch {
				ep.BrokerEpoch = h.int(e)
			} else if mb, ok := h.c.Image().Broker(NodeID(ep.BrokerID)); ok {
				ep.BrokerEpoch = int64(mb.Epoch)
			}
			p.NewEpochISR = append(p.NewEpochISR, ep)
		}
		t.Partitions = append(t.Partitions, p)
		req.Topics = append(req.Topics, t)
	}
	records, resp, err := h.c.AlterPartition(req)
	if err != nil {
		return h.commit(td, nil, err, "")
	}
	var out strings.Builder
	if resp.ErrorCode != 0 {
		fmt.Fprintf(&out, "reply err=%s\n", errName(resp.ErrorCode))
	}
	for i, t := range resp.Topics {
		for _, p := range t.Partitions {
			isr := make([]NodeID, len(p.ISR))
			for j, n := range p.ISR {
				isr[j] = NodeID(n)
			}
			fmt.Fprintf(&out, "reply %s/%d err=%s leader=%d leader-epoch=%d pepoch=%d isr=%s\n",
				req.Topics[i].Topic, p.Partition, errName(p.ErrorCode), p.LeaderID, p.LeaderEpoch, p.PartitionEpoch, fmtNodes(isr))
		}
	}
	return h.commit(td, records, nil, out.String())
}
