package assign

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/streams"
)

func TestJoinSyncWireRoundTrip(t *testing.T) {
	local := []TaskID{{0, 1}, {2, 300}}
	for _, addr := range []string{"", "10.1.2.3:8080"} {
		got, gotAddr, err := DecodeJoin(EncodeJoin(nil, local, addr))
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(local, got); d != "" || gotAddr != addr {
			t.Fatalf("join %q: got %v %q (-want +got):\n%s", addr, got, gotAddr, d)
		}
	}
	hosts := &HostMap{Hosts: []Host{
		{Addr: "a:1", Active: []TaskID{{0, 0}}, Standby: []TaskID{{0, 1}}},
		{Addr: "b:2", Active: []TaskID{{0, 1}}, Standby: []TaskID{}},
	}}
	standby, gotHosts, err := DecodeSync(EncodeSync(nil, local, hosts))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(local, standby); d != "" {
		t.Fatalf("standby (-want +got):\n%s", d)
	}
	if d := cmp.Diff(hosts, gotHosts); d != "" {
		t.Fatalf("hosts (-want +got):\n%s", d)
	}
	// Version 1 (an instance with no query address) still decodes.
	if _, h, err := DecodeSync(EncodeTasks(nil, local)); err != nil || h != nil {
		t.Fatalf("version 1 sync: hosts %v, err %v", h, err)
	}
}

func TestHostsWireRefusesMalformed(t *testing.T) {
	good := EncodeSync(nil, []TaskID{{0, 1}}, &HostMap{Hosts: []Host{{Addr: "a:1", Active: []TaskID{{0, 0}}}}})
	for i := range good {
		if _, _, err := DecodeSync(good[:i]); !IsBadUserData(err) && i > 0 {
			t.Errorf("sync cut at %d of %d bytes: err %v, want bad user data", i, len(good), err)
		}
	}
	// A count claiming more hosts than the bytes can hold fails before it
	// allocates for them.
	huge := append([]byte{hostsVersion, 0}, 0xff, 0xff, 0xff, 0xff, 0x0f)
	if _, _, err := DecodeSync(huge); !IsBadUserData(err) {
		t.Fatalf("huge host count: err %v", err)
	}
	if _, _, err := DecodeJoin([]byte{9}); !IsBadUserData(err) {
		t.Fatalf("unknown version: err %v", err)
	}
}

func FuzzDecodeSync(f *testing.F) {
	f.Add(EncodeSync(nil, []TaskID{{0, 1}}, &HostMap{Hosts: []Host{{Addr: "a:1", Active: []TaskID{{0, 0}}}}}))
	f.Add(EncodeJoin(nil, []TaskID{{1, 2}}, "h:9"))
	f.Fuzz(func(t *testing.T, b []byte) {
		standby, hosts, err := DecodeSync(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to bytes that decode to the same
		// (varints may be written longer than needed, so not the same
		// bytes), and its addresses are bounded.
		again := EncodeSync(nil, standby, hosts)
		standby2, hosts2, err := DecodeSync(again)
		if err != nil {
			t.Fatalf("%x decoded, re-encoded to %x, which does not decode: %v", b, again, err)
		}
		if d := cmp.Diff(standby, standby2, cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("%x: standbys change on a round trip:\n%s", b, d)
		}
		if d := cmp.Diff(hosts, hosts2, cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("%x: hosts change on a round trip:\n%s", b, d)
		}
		if hosts != nil {
			for _, h := range hosts.Hosts {
				if len(h.Addr) > maxAddrLen {
					t.Fatalf("%x: an address of %d bytes", b, len(h.Addr))
				}
			}
		}
	})
}

// groupSim is a consumer group of balancers, stepped by hand: each
// rebalance joins every member with what it owns, lets the first member
// (the leader) balance, and hands every member its sync assignment.
type groupSim struct {
	layout     Layout
	counts     map[string]int32
	standbys   int
	generation int32
	members    []*simMember
}

type simMember struct {
	id    string
	b     *Balancer
	owned map[string][]int32
}

func (g *groupSim) member(id string) *simMember {
	for _, m := range g.members {
		if m.id == id {
			return m
		}
	}
	return nil
}

func (g *groupSim) topics() []string {
	var ts []string
	for t := range g.layout.Topics {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}

func (g *groupSim) rebalance(t *testing.T) string {
	t.Helper()
	if len(g.members) == 0 {
		return "no members\n"
	}
	var jm []kmsg.JoinGroupResponseMember
	for _, m := range g.members {
		jm = append(jm, kmsg.JoinGroupResponseMember{MemberID: m.id,
			ProtocolMetadata: m.b.JoinGroupMetadata(g.topics(), m.owned, g.generation)})
	}
	g.generation++
	gb, _, err := g.members[0].b.MemberBalancer(jm)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := gb.(kgo.GroupMemberBalancerOrError).BalanceOrError(g.counts)
	if err != nil {
		return fmt.Sprintf("error: %v\n", err)
	}
	var out strings.Builder
	for _, sa := range plan.IntoSyncAssignment() {
		m := g.member(sa.MemberID)
		owned, err := m.b.ParseSyncAssignment(sa.MemberAssignment)
		if err != nil {
			t.Fatal(err)
		}
		m.owned = owned
	}
	for _, m := range g.members {
		var active []string
		for _, tp := range g.topics() {
			for _, p := range m.owned[tp] {
				active = append(active, TaskID{g.layout.Topics[tp], p}.String())
			}
		}
		var standby []string
		for _, s := range m.b.Standbys() {
			standby = append(standby, s.String())
		}
		fmt.Fprintf(&out, "%s (%s): active [%s] standby [%s]\n", m.id, m.b.addr, strings.Join(active, " "), strings.Join(standby, " "))
	}
	return out.String()
}

// locate answers where key lives in every member's view; they must agree.
func (g *groupSim) locate(t *testing.T, key string, sub int) string {
	t.Helper()
	var n int32
	for tp, s := range g.layout.Topics {
		if s == sub {
			n = max(n, g.counts[tp])
		}
	}
	task := TaskID{Subtopology: sub, Partition: int32(streams.KeyPartition([]byte(key), int(n)))}
	var answers []string
	for _, m := range g.members {
		h := m.b.Hosts()
		if h == nil {
			answers = append(answers, "no host map")
			continue
		}
		active, standbys, ok := h.Locate(task)
		if !ok {
			active = "none"
		}
		answers = append(answers, fmt.Sprintf("task %s: active %s standbys [%s]", task, active, strings.Join(standbys, " ")))
	}
	if len(slices.Compact(slices.Clone(answers))) != 1 {
		t.Fatalf("members disagree on %q: %q", key, answers)
	}
	return answers[0] + "\n"
}

// TestKeyLocationDatadriven runs testdata/key_location: members join and
// leave, the group rebalances (cooperatively: a moving task is withheld
// for a round) and every member answers where a key's task runs.
func TestKeyLocationDatadriven(t *testing.T) {
	var g *groupSim
	datadriven.RunTest(t, "testdata/key_location", func(t *testing.T, td *datadriven.TestData) string {
		return runKeyLocation(t, &g, td)
	})
}

func runKeyLocation(t *testing.T, gp **groupSim, td *datadriven.TestData) string {
	g := *gp
	switch td.Cmd {
	case "layout":
		g = &groupSim{layout: Layout{Topics: map[string]int{}}, counts: map[string]int32{}}
		*gp = g
		for _, a := range td.CmdArgs {
			switch a.Key {
			case "topic":
				// topic=name:subtopology:partitions
				for _, v := range a.Vals {
					f := strings.Split(v, ":")
					s, _ := strconv.Atoi(f[1])
					n, _ := strconv.Atoi(f[2])
					g.layout.Topics[f[0]] = s
					g.counts[f[0]] = int32(n)
				}
			case "standbys":
				g.standbys, _ = strconv.Atoi(a.Vals[0])
			}
		}
		return ""
	case "join":
		var id, addr string
		td.ScanArgs(t, "member", &id)
		if td.HasArg("addr") {
			td.ScanArgs(t, "addr", &addr)
		}
		b := NewBalancer(g.layout, g.standbys, nil)
		b.SetQueryAddr(addr)
		g.members = append(g.members, &simMember{id: id, b: b, owned: map[string][]int32{}})
		return ""
	case "leave":
		var id string
		td.ScanArgs(t, "member", &id)
		g.members = slices.DeleteFunc(g.members, func(m *simMember) bool { return m.id == id })
		return ""
	case "rebalance":
		return g.rebalance(t)
	case "locate":
		var key string
		sub := 0
		td.ScanArgs(t, "key", &key)
		if td.HasArg("subtopology") {
			td.ScanArgs(t, "subtopology", &sub)
		}
		return g.locate(t, key, sub)
	}
	t.Fatalf("unknown command %q", td.Cmd)
	return ""
}
