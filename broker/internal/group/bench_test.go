package group

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// stableGroup returns a coordinator holding one Stable group of n members,
// and their member ids.
func stableGroup(b *testing.B, n int) (*Coordinator, []string) {
	b.Helper()
	c, err := New(Options{InitialRebalanceDelay: -1, MinSessionTimeout: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	tok := Token(0)
	known := map[string]bool{}
	var ids []string
	step := func(m kmsg.Request) {
		tok++
		c.Step(epoch, Request{Token: tok, ClientID: "c", Msg: m})
		for _, r := range c.Ready().Responses {
			if jr, ok := r.Msg.(*kmsg.JoinGroupResponse); ok && jr.ErrorCode == 0 && !known[jr.MemberID] {
				known[jr.MemberID] = true
				ids = append(ids, jr.MemberID)
			}
		}
	}
	for i := 0; i < n; i++ {
		step(joinReq("", time.Minute)) // waits for the others to rejoin
		for _, id := range ids {
			step(joinReq(id, time.Minute))
		}
	}
	gen := int32(c.groups["g"].generation)
	leader := string(c.groups["g"].leader)
	assign := map[string]string{}
	for _, id := range ids {
		assign[id] = "x"
	}
	step(syncReq(leader, gen, assign))
	if st := c.groups["g"].state; st != StateStable || len(c.groups["g"].members) != n {
		b.Fatalf("group is %v with %d members", st, len(c.groups["g"].members))
	}
	return c, ids
}

// BenchmarkCoordinatorHeartbeat is the state machine's cost per heartbeat
// in a stable 100-member group.
func BenchmarkCoordinatorHeartbeat(b *testing.B) {
	c, ids := stableGroup(b, 100)
	gen := int32(c.groups["g"].generation)
	reqs := make([]*kmsg.HeartbeatRequest, len(ids))
	for i, id := range ids {
		reqs[i] = kmsg.NewPtrHeartbeatRequest()
		reqs[i].Group, reqs[i].MemberID, reqs[i].Generation = "g", id, gen
	}
	now := epoch
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Step(now, Request{Token: Token(i), Msg: reqs[i%len(reqs)]})
		if rd := c.Ready(); rd.Responses[0].Msg.(*kmsg.HeartbeatResponse).ErrorCode != 0 {
			b.Fatal("heartbeat failed")
		}
	}
}

// BenchmarkDriverCommit is one OffsetCommit of 6 partitions through the
// driver, persisted to an in-memory log, against the same commit stepped
// into the bare state machine: the ratio is the driver's overhead.
func BenchmarkDriverCommit(b *testing.B) {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.Generation = 8, "simple", -1
	t := kmsg.OffsetCommitRequestTopic{Topic: "orders"}
	for p := int32(0); p < 6; p++ {
		t.Partitions = append(t.Partitions, kmsg.OffsetCommitRequestTopicPartition{Partition: p, Offset: 42, LeaderEpoch: -1})
	}
	req.Topics = []kmsg.OffsetCommitRequestTopic{t}
	b.Run("coordinator", func(b *testing.B) {
		c, err := New(Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			c.Step(epoch, Request{Token: Token(i), Msg: req})
			c.Ready()
		}
	})
	b.Run("driver", func(b *testing.B) {
		d, err := OpenDriver(context.Background(), DriverOptions{Log: &discardLog{}})
		if err != nil {
			b.Fatal(err)
		}
		defer d.Close()
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := d.Handle(context.Background(), "c", "h", req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// discardLog is a Log that keeps nothing.
type discardLog struct{}

func (discardLog) Append(context.Context, int32, []Record) error { return nil }
func (discardLog) Write(context.Context, int32, []Record) error  { return nil }

func (discardLog) Replay(context.Context, int32, func(Record) error) error { return nil }
