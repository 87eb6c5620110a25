package group

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupKeys are the API keys the coordinator steps.
var groupKeys = []int16{
	kmsg.JoinGroup.Int16(), kmsg.SyncGroup.Int16(), kmsg.Heartbeat.Int16(), kmsg.LeaveGroup.Int16(),
	kmsg.OffsetCommit.Int16(), kmsg.OffsetFetch.Int16(), kmsg.OffsetDelete.Int16(),
	kmsg.DescribeGroups.Int16(), kmsg.ListGroups.Int16(), kmsg.DeleteGroups.Int16(),
}

// FuzzStep decodes arbitrary bytes as group requests, as the wire would
// deliver them, and steps them (with ticks in between) into one
// coordinator: it must never panic, must answer each request at most once,
// and its invariants must hold throughout.
func FuzzStep(f *testing.F) {
	join := kmsg.NewPtrJoinGroupRequest()
	join.Version, join.Group, join.ProtocolType = 5, "g", "consumer"
	join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = 10000, 10000
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte("m")}}
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Version, commit.Group, commit.Generation = 8, "g", -1
	commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Offset: 3}}}}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Version, sync.Group, sync.MemberID, sync.Generation = 3, "g", "c-1", 1
	for _, r := range []kmsg.Request{join, commit, sync} {
		f.Add(r.Key(), r.GetVersion(), r.AppendTo(nil), uint8(3))
	}

	f.Fuzz(func(t *testing.T, key, version int16, body []byte, repeat uint8) {
		valid := false
		for _, k := range groupKeys {
			valid = valid || k == key
		}
		if !valid {
			return
		}
		req := kmsg.RequestForKey(key)
		if version < 0 || version > req.MaxVersion() {
			return
		}
		req.SetVersion(version)
		if err := req.ReadFrom(body); err != nil {
			return
		}
		n := 0
		c, err := New(Options{
			MinSessionTimeout: time.Millisecond, InitialRebalanceDelay: 5 * time.Millisecond,
			MaxMembers: 8, MaxGroups: 8, NewMemberSuffix: func() string { n++; return string(rune('a' + n%26)) },
		})
		if err != nil {
			t.Fatal(err)
		}
		now := epoch
		answered := map[Token]bool{}
		for i := Token(1); i <= Token(repeat%8)+1; i++ {
			c.Step(now, Request{Token: i, ClientID: "c", Msg: req})
			now = now.Add(time.Duration(i) * time.Millisecond)
			c.Tick(now)
			for _, r := range c.Ready().Responses {
				if answered[r.Token] {
					t.Fatalf("token %d answered twice", r.Token)
				}
				answered[r.Token] = true
				if r.Msg.Key() != key {
					t.Fatalf("answer of key %d to a request of key %d", r.Msg.Key(), key)
				}
			}
			if err := checkInvariants(c); err != nil {
				t.Fatal(err)
			}
		}
	})
}
