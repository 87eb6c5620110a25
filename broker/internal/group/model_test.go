package group

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRandomOperations applies random requests and clock ticks from a few
// clients to the coordinator and checks after every step that its
// invariants hold, that every response answers a request that was stepped
// and not answered before, and that every request is answered eventually
// (JoinGroup and SyncGroup by the end of their rebalance).
func TestRandomOperations(t *testing.T) {
	for i := 0; i < 20; i++ {
		seed := uint64(time.Now().UnixNano()) + uint64(i)
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Logf("seed %d", seed)
			runRandom(t, rand.New(rand.NewPCG(seed, seed)), 2000)
		})
	}
}

func runRandom(t *testing.T, r *rand.Rand, steps int) {
	n := 0
	c, err := New(Options{
		InitialRebalanceDelay: time.Duration(r.IntN(2)) * 500 * time.Millisecond,
		MinSessionTimeout:     100 * time.Millisecond,
		MaxMembers:            4,
		MaxGroups:             3,
		OffsetsPartitions:     3,
		NewMemberSuffix:       func() string { n++; return strconv.Itoa(n) },
	})
	if err != nil {
		t.Fatal(err)
	}
	now := epoch
	groups := []string{"a", "b", "c", "d"}
	// What each simulated client last learned: its member id and generation
	// per group.
	type view struct {
		member string
		gen    int32
	}
	views := map[string]*view{}
	outstanding := map[Token]string{}
	var tok Token
	pick := func(ss []string) string { return ss[r.IntN(len(ss))] }
	clients := []string{"c0", "c1", "c2", "c3", "c4"}

	for step := 0; step < steps; step++ {
		g, cl := pick(groups), pick(clients)
		key := g + "/" + cl
		v := views[key]
		if v == nil {
			v = &view{gen: -1}
			views[key] = v
		}
		member := v.member
		if r.IntN(10) == 0 {
			member = "bogus"
		}
		var msg kmsg.Request
		switch op := r.IntN(8); op {
		case 0, 1:
			req := kmsg.NewPtrJoinGroupRequest()
			req.Version = int16(r.IntN(10))
			req.Group, req.MemberID, req.ProtocolType = g, member, "consumer"
			if r.IntN(4) == 0 {
				req.InstanceID = strp("i-" + cl)
			}
			req.SessionTimeoutMillis = int32(100 + r.IntN(400))
			req.RebalanceTimeoutMillis = int32(100 + r.IntN(900))
			req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: pick([]string{"range", "sticky"}), Metadata: []byte(cl)}}
			msg = req
		case 2:
			req := kmsg.NewPtrSyncGroupRequest()
			req.Group, req.MemberID, req.Generation = g, member, v.gen
			req.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: member, MemberAssignment: []byte("x")}}
			msg = req
		case 3:
			req := kmsg.NewPtrHeartbeatRequest()
			req.Group, req.MemberID, req.Generation = g, member, v.gen
			msg = req
		case 4:
			req := kmsg.NewPtrLeaveGroupRequest()
			req.Version, req.Group = 5, g
			req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: member}}
			msg = req
		case 5:
			req := kmsg.NewPtrOffsetCommitRequest()
			req.Version, req.Group, req.MemberID, req.Generation = 8, g, member, v.gen
			if r.IntN(3) == 0 {
				req.Generation = -1
			}
			req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: int32(r.IntN(3)), Offset: int64(step)}}}}
			msg = req
		case 6:
			req := kmsg.NewPtrDeleteGroupsRequest()
			req.Groups = []string{g}
			msg = req
		case 7:
			now = now.Add(time.Duration(r.IntN(300)) * time.Millisecond)
			c.Tick(now)
		}
		if msg != nil {
			tok++
			outstanding[tok] = key
			c.Step(now, Request{Token: tok, ClientID: cl, Msg: msg})
		}
		rd := c.Ready()
		for _, resp := range rd.Responses {
			k, ok := outstanding[resp.Token]
			if !ok {
				t.Fatalf("step %d: response to #%d, which is not outstanding", step, resp.Token)
			}
			delete(outstanding, resp.Token)
			switch m := resp.Msg.(type) {
			case *kmsg.JoinGroupResponse:
				if m.ErrorCode == 0 || m.MemberID != "" {
					views[k].member = m.MemberID
				}
				if m.ErrorCode == 0 {
					views[k].gen = m.Generation
				}
			}
		}
		if err := checkInvariants(c); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
	}
	// Let every timeout fire: whatever is still waiting must be answered.
	for i := 0; i < 50 && len(outstanding) > 0; i++ {
		now = now.Add(time.Second)
		c.Tick(now)
		for _, resp := range c.Ready().Responses {
			delete(outstanding, resp.Token)
		}
	}
	if len(outstanding) > 0 {
		t.Fatalf("%d requests never answered: %v", len(outstanding), fmt.Sprint(outstanding))
	}
}
