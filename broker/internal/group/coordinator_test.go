package group

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/batch"
)

// The scenario files under testdata/ drive a Coordinator with requests and
// clock ticks and print everything it answers and persists. Commands:
//
//	new [initial-delay=D] [retention=D] [max-members=N] [max-groups=N] [topics=(t:N,...)]
//	join group=G client=C [member=M] [instance=I] [protocols=(name:meta,...)] [session=D] [rebalance=D] [v=N] [type=T]
//	     [consumer-topics=(t,...)]    (the first protocol's metadata becomes a consumer subscription)
//	sync group=G member=M gen=N [instance=I] [assign=(member:bytes,...)] [v=N]
//	heartbeat group=G member=M gen=N [instance=I]
//	leave group=G member=M            (v0)
//	leave group=G members=(m/i,...)   (v5 batch; either part may be empty)
//	commit group=G [member=M] [gen=N] [instance=I] offsets=(topic/p=offset,...) [meta=S] [v=N]
//	fetch group=G [partitions=(topic/p,...)] [v=N] [stable]   (stable: RequireStable)
//	txn-commit group=G pid=N epoch=N [member=M] [gen=N] offsets=(topic/p=offset,...) [v=N]
//	txn-marker pid=N p=N [commit]     (the producer's COMMIT or ABORT marker reached partition N)
//	fetch groups=(G,...) v=8          (all offsets of each)
//	offset-delete group=G partitions=(topic/p,...)
//	describe groups=(G,...)
//	list [states=(S,...)]
//	delete groups=(G,...)
//	new-topics topics=(t:N,...)       (the topics that exist from now on)
//	tick D                            (advance the clock by D, then Tick)
//	state group=G                     (the coordinator's view of G)
//	restart                           (a new coordinator loads everything persisted, markers included)
//	unload p=N                        (stop serving __consumer_offsets partition N)
//	load p=N                          (replay what was persisted to partition N, then serve it)
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/scenarios", func(t *testing.T, path string) {
		h := &harness{t: t}
		h.reset(Options{})
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			out := h.run(td)
			if err := checkInvariants(h.c); err != nil {
				t.Fatalf("%s: after %s: %v", td.Pos, td.Cmd, err)
			}
			return out
		})
	})
}

type fakeTopics map[string]int32

func (f fakeTopics) Partitions(topic string) (int32, bool) {
	n, ok := f[topic]
	return n, ok
}

type harness struct {
	t     *testing.T
	opts  Options
	c     *Coordinator
	now   time.Time
	tok   Token
	log   []Record // everything persisted, in order
	names map[Token]string
	// marks are the transaction markers written to __consumer_offsets,
	// each before log[at].
	marks []harnessMark
}

type harnessMark struct {
	at        int
	pid       int64
	commit    bool
	partition int32
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func (h *harness) reset(o Options) {
	h.t.Helper()
	n := 0
	o.NewMemberSuffix = func() string { n++; return strconv.Itoa(n) }
	if o.OffsetsPartitions == 0 {
		o.OffsetsPartitions = 4
	}
	if o.InitialRebalanceDelay == 0 {
		o.InitialRebalanceDelay = -1
	}
	if o.MinSessionTimeout == 0 {
		o.MinSessionTimeout = time.Second
	}
	c, err := New(o)
	if err != nil {
		h.t.Fatal(err)
	}
	h.opts, h.c, h.now, h.log, h.names = o, c, epoch, nil, map[Token]string{}
}

func arg(td *datadriven.TestData, key, def string) string {
	if a, ok := td.Arg(key); ok && len(a.Vals) > 0 {
		return a.Vals[0]
	}
	return def
}

func args(td *datadriven.TestData, key string) ([]string, bool) {
	a, ok := td.Arg(key)
	if !ok {
		return nil, false
	}
	return a.Vals, true
}

func (h *harness) dur(s string) time.Duration {
	h.t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

func (h *harness) int(s string) int64 {
	h.t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

func optStr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func splitTP(h *harness, s string) (string, int32) {
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		h.t.Fatalf("want topic/partition, got %q", s)
	}
	return s[:i], int32(h.int(s[i+1:]))
}

func (h *harness) step(td *datadriven.TestData, msg kmsg.Request) {
	h.tok++
	h.names[h.tok] = td.Cmd
	h.c.Step(h.now, Request{Token: h.tok, ClientID: arg(td, "client", "cli"), ClientHost: "/10.0.0.1", Msg: msg})
}

func (h *harness) run(td *datadriven.TestData) string {
	h.t.Helper()
	switch td.Cmd {
	case "new":
		var o Options
		o.InitialRebalanceDelay = h.dur(arg(td, "initial-delay", "-1ns"))
		o.OffsetsRetention = h.dur(arg(td, "retention", "0s"))
		o.MaxMembers = int(h.int(arg(td, "max-members", "0")))
		o.MaxGroups = int(h.int(arg(td, "max-groups", "0")))
		o.MaxProtocolMetadataBytes = int(h.int(arg(td, "max-metadata", "0")))
		if ts, ok := args(td, "topics"); ok {
			ft := fakeTopics{}
			for _, s := range ts {
				name, n, _ := strings.Cut(s, ":")
				ft[name] = int32(h.int(n))
			}
			o.Topics = ft
		}
		h.reset(o)
		return "ok"
	case "new-topics":
		// Change the topics the coordinator sees, keeping its state.
		ft := fakeTopics{}
		ts, _ := args(td, "topics")
		for _, s := range ts {
			name, n, _ := strings.Cut(s, ":")
			ft[name] = int32(h.int(n))
		}
		h.c.opts.Topics = ft
		h.opts.Topics = ft // and after a restart
		return "ok"
	case "join":
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version = int16(h.int(arg(td, "v", "9")))
		req.Group = arg(td, "group", "g")
		if n := arg(td, "group-len", ""); n != "" {
			req.Group = strings.Repeat("g", int(h.int(n)))
		}
		req.MemberID = arg(td, "member", "")
		req.InstanceID = optStr(arg(td, "instance", ""))
		req.ProtocolType = arg(td, "type", "consumer")
		req.SessionTimeoutMillis = int32(h.dur(arg(td, "session", "10s")).Milliseconds())
		req.RebalanceTimeoutMillis = int32(h.dur(arg(td, "rebalance", "20s")).Milliseconds())
		ps, ok := args(td, "protocols")
		if !ok {
			ps = []string{"range:m"}
		}
		for _, p := range ps {
			name, meta, _ := strings.Cut(p, ":")
			req.Protocols = append(req.Protocols, kmsg.JoinGroupRequestProtocol{Name: name, Metadata: []byte(meta)})
		}
		if ts, ok := args(td, "consumer-topics"); ok {
			meta := kmsg.ConsumerMemberMetadata{Version: 1, Topics: ts}
			req.Protocols[0].Metadata = meta.AppendTo(nil)
		}
		if n := arg(td, "big-metadata", ""); n != "" {
			req.Protocols[0].Metadata = make([]byte, h.int(n))
		}
		h.step(td, req)
	case "sync":
		req := kmsg.NewPtrSyncGroupRequest()
		req.Version = int16(h.int(arg(td, "v", "5")))
		req.Group = arg(td, "group", "g")
		req.MemberID = arg(td, "member", "")
		req.InstanceID = optStr(arg(td, "instance", ""))
		req.Generation = int32(h.int(arg(td, "gen", "0")))
		as, _ := args(td, "assign")
		for _, a := range as {
			m, b, _ := strings.Cut(a, ":")
			req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: m, MemberAssignment: []byte(b)})
		}
		h.step(td, req)
	case "heartbeat":
		req := kmsg.NewPtrHeartbeatRequest()
		req.Version = 4
		req.Group = arg(td, "group", "g")
		req.MemberID = arg(td, "member", "")
		req.InstanceID = optStr(arg(td, "instance", ""))
		req.Generation = int32(h.int(arg(td, "gen", "0")))
		h.step(td, req)
	case "leave":
		req := kmsg.NewPtrLeaveGroupRequest()
		req.Group = arg(td, "group", "g")
		if ms, ok := args(td, "members"); ok {
			req.Version = 5
			for _, s := range ms {
				m, i, _ := strings.Cut(s, "/")
				req.Members = append(req.Members, kmsg.LeaveGroupRequestMember{MemberID: m, InstanceID: optStr(i)})
			}
		} else {
			req.MemberID = arg(td, "member", "")
		}
		h.step(td, req)
	case "commit":
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version = int16(h.int(arg(td, "v", "8")))
		req.Group = arg(td, "group", "g")
		req.MemberID = arg(td, "member", "")
		req.InstanceID = optStr(arg(td, "instance", ""))
		req.Generation = int32(h.int(arg(td, "gen", "-1")))
		meta := arg(td, "meta", "")
		if n := arg(td, "meta-bytes", ""); n != "" {
			meta = strings.Repeat("x", int(h.int(n)))
		}
		offs, _ := args(td, "offsets")
		for _, s := range offs {
			tp, o, _ := strings.Cut(s, "=")
			topic, p := splitTP(h, tp)
			if len(req.Topics) == 0 || req.Topics[len(req.Topics)-1].Topic != topic {
				req.Topics = append(req.Topics, kmsg.OffsetCommitRequestTopic{Topic: topic})
			}
			last := &req.Topics[len(req.Topics)-1]
			last.Partitions = append(last.Partitions, kmsg.OffsetCommitRequestTopicPartition{
				Partition: p, Offset: h.int(o), LeaderEpoch: -1, Metadata: optStr(meta),
			})
		}
		h.step(td, req)
	case "fetch":
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = int16(h.int(arg(td, "v", "7")))
		if gs, ok := args(td, "groups"); ok {
			for _, g := range gs {
				req.Groups = append(req.Groups, kmsg.OffsetFetchRequestGroup{Group: g})
			}
		} else {
			req.RequireStable = td.HasArg("stable")
			req.Group = arg(td, "group", "g")
			if ps, ok := args(td, "partitions"); ok {
				for _, s := range ps {
					topic, p := splitTP(h, s)
					if len(req.Topics) == 0 || req.Topics[len(req.Topics)-1].Topic != topic {
						req.Topics = append(req.Topics, kmsg.OffsetFetchRequestTopic{Topic: topic})
					}
					req.Topics[len(req.Topics)-1].Partitions = append(req.Topics[len(req.Topics)-1].Partitions, p)
				}
			}
		}
		h.step(td, req)
	case "txn-commit":
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.Version = int16(h.int(arg(td, "v", "3")))
		req.TransactionalID = "tx"
		req.Group = arg(td, "group", "g")
		req.ProducerID = h.int(arg(td, "pid", "1"))
		req.ProducerEpoch = int16(h.int(arg(td, "epoch", "0")))
		req.MemberID = arg(td, "member", "")
		req.Generation = int32(h.int(arg(td, "gen", "-1")))
		offs, _ := args(td, "offsets")
		for _, s := range offs {
			tp, o, _ := strings.Cut(s, "=")
			topic, p := splitTP(h, tp)
			if len(req.Topics) == 0 || req.Topics[len(req.Topics)-1].Topic != topic {
				req.Topics = append(req.Topics, kmsg.TxnOffsetCommitRequestTopic{Topic: topic})
			}
			last := &req.Topics[len(req.Topics)-1]
			last.Partitions = append(last.Partitions, kmsg.TxnOffsetCommitRequestTopicPartition{Partition: p, Offset: h.int(o), LeaderEpoch: -1})
		}
		h.step(td, req)
	case "txn-marker":
		m := harnessMark{at: len(h.log), pid: h.int(arg(td, "pid", "1")), commit: td.HasArg("commit"), partition: int32(h.int(arg(td, "p", "-1")))}
		h.marks = append(h.marks, m)
		h.c.completeTxn(h.now, m.pid, m.commit, m.partition)
	case "offset-delete":
		req := kmsg.NewPtrOffsetDeleteRequest()
		req.Group = arg(td, "group", "g")
		ps, _ := args(td, "partitions")
		for _, s := range ps {
			topic, p := splitTP(h, s)
			req.Topics = append(req.Topics, kmsg.OffsetDeleteRequestTopic{Topic: topic, Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: p}}})
		}
		h.step(td, req)
	case "describe":
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Version = 5
		req.Groups, _ = args(td, "groups")
		h.step(td, req)
	case "list":
		req := kmsg.NewPtrListGroupsRequest()
		req.Version = 4
		req.StatesFilter, _ = args(td, "states")
		h.step(td, req)
	case "delete":
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.Version = 2
		req.Groups, _ = args(td, "groups")
		h.step(td, req)
	case "drop-topics":
		ts, _ := args(td, "topics")
		h.c.DropTopics(h.now, ts)
	case "tick":
		h.now = h.now.Add(h.dur(td.CmdArgs[0].Key))
		h.c.Tick(h.now)
	case "state":
		return h.state(GroupID(arg(td, "group", "g")))
	case "unload":
		h.c.Unload(h.now, int32(h.int(arg(td, "p", "-1"))))
	case "load":
		p := int32(h.int(arg(td, "p", "-1")))
		var out strings.Builder
		for _, rec := range h.log {
			if rec.Partition != p {
				continue
			}
			if err := h.c.Load(rec); err != nil {
				fmt.Fprintf(&out, "load error: %v\n", err)
			}
		}
		h.c.FinishLoadPartition(h.now, p)
		return out.String() + h.ready()
	case "restart":
		o := h.opts
		c, err := New(o)
		if err != nil {
			h.t.Fatal(err)
		}
		var out strings.Builder
		load := func(rec Record) error {
			if err := c.Load(rec); err != nil {
				fmt.Fprintf(&out, "load error: %v\n", err)
			}
			return nil
		}
		// Per partition, as TopicLog.Replay reads them: transactional
		// records wait for their marker.
		for p := range h.opts.OffsetsPartitions {
			fn, marker, flush := txnReplay(load)
			mark := func(i int) {
				for _, m := range h.marks {
					if m.at == i && m.partition == p {
						hdr, b := controlBatch(h.t, m.pid, m.commit)
						if err := marker(hdr, b); err != nil {
							h.t.Fatal(err)
						}
					}
				}
			}
			for i, rec := range h.log {
				mark(i)
				if rec.Partition == p {
					_ = fn(rec)
				}
			}
			mark(len(h.log))
			_ = flush()
		}
		c.FinishLoad(h.now)
		h.c = c
		if rd := h.ready(); rd != "(nothing)" {
			out.WriteString(rd + "\n")
		}
		return out.String() + "restarted"
	default:
		h.t.Fatalf("%s: unknown command %q", td.Pos, td.Cmd)
	}
	return h.ready()
}

func errName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
		return e.Message
	}
	return strconv.Itoa(int(code))
}

// ready drains the coordinator and prints what it persisted and answered.
func (h *harness) ready() string {
	h.t.Helper()
	rd := h.c.Ready()
	var b strings.Builder
	for _, rec := range rd.Records {
		h.log = append(h.log, rec)
		b.WriteString(describeRecord(rec))
		b.WriteByte('\n')
	}
	for _, r := range rd.Responses {
		fmt.Fprintf(&b, "#%d %s\n", r.Token, describeResponse(r.Msg))
	}
	if b.Len() == 0 {
		return "(nothing)"
	}
	return strings.TrimRight(b.String(), "\n")
}

func describeRecord(rec Record) string {
	version := int16(rec.Key[0])<<8 | int16(rec.Key[1])
	if version == 2 {
		var k kmsg.GroupMetadataKey
		_ = k.ReadFrom(rec.Key)
		if rec.Value == nil {
			return fmt.Sprintf("persist p%d group %s tombstone", rec.Partition, k.Group)
		}
		var v kmsg.GroupMetadataValue
		if err := v.ReadFrom(rec.Value); err != nil {
			return "bad group value: " + err.Error()
		}
		var ms []string
		for _, m := range v.Members {
			ms = append(ms, fmt.Sprintf("%s:%q", m.MemberID, m.Assignment))
		}
		return fmt.Sprintf("persist p%d group %s gen=%d type=%s proto=%s leader=%s members=[%s]",
			rec.Partition, k.Group, v.Generation, v.ProtocolType, derefOr(v.Protocol), derefOr(v.Leader), strings.Join(ms, " "))
	}
	var k kmsg.OffsetCommitKey
	_ = k.ReadFrom(rec.Key)
	if rec.Value == nil {
		return fmt.Sprintf("persist p%d offset %s %s/%d tombstone", rec.Partition, k.Group, k.Topic, k.Partition)
	}
	var v kmsg.OffsetCommitValue
	if err := v.ReadFrom(rec.Value); err != nil {
		return "bad offset value: " + err.Error()
	}
	if rec.txn {
		return fmt.Sprintf("persist p%d txn pid=%d epoch=%d offset %s %s/%d=%d", rec.Partition, rec.txnPID, rec.txnEpoch, k.Group, k.Topic, k.Partition, v.Offset)
	}
	return fmt.Sprintf("persist p%d offset %s %s/%d=%d", rec.Partition, k.Group, k.Topic, k.Partition, v.Offset)
}

func derefOr(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func describeResponse(msg kmsg.Response) string {
	switch r := msg.(type) {
	case *kmsg.JoinGroupResponse:
		s := fmt.Sprintf("join err=%s member=%s", errName(r.ErrorCode), r.MemberID)
		if r.ErrorCode == 0 {
			s += fmt.Sprintf(" gen=%d proto=%s leader=%s", r.Generation, derefOr(r.Protocol), r.LeaderID)
			if len(r.Members) > 0 {
				var ms []string
				for _, m := range r.Members {
					id := m.MemberID
					if m.InstanceID != nil {
						id += "/" + *m.InstanceID
					}
					ms = append(ms, fmt.Sprintf("%s:%q", id, m.ProtocolMetadata))
				}
				s += " members=[" + strings.Join(ms, " ") + "]"
			}
			if r.SkipAssignment {
				s += " skip-assignment"
			}
		}
		return s
	case *kmsg.SyncGroupResponse:
		if r.ErrorCode != 0 {
			return "sync err=" + errName(r.ErrorCode)
		}
		return fmt.Sprintf("sync err=NONE assignment=%q", r.MemberAssignment)
	case *kmsg.HeartbeatResponse:
		return "heartbeat err=" + errName(r.ErrorCode)
	case *kmsg.LeaveGroupResponse:
		s := "leave err=" + errName(r.ErrorCode)
		for _, m := range r.Members {
			s += fmt.Sprintf(" %s/%s=%s", m.MemberID, derefOr(m.InstanceID), errName(m.ErrorCode))
		}
		return s
	case *kmsg.OffsetCommitResponse:
		s := "commit"
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				s += fmt.Sprintf(" %s/%d=%s", t.Topic, p.Partition, errName(p.ErrorCode))
			}
		}
		return s
	case *kmsg.OffsetFetchResponse:
		if r.Version >= 8 {
			s := "fetch"
			for _, g := range r.Groups {
				s += fmt.Sprintf(" %s(err=%s", g.Group, errName(g.ErrorCode))
				for _, t := range g.Topics {
					for _, p := range t.Partitions {
						s += fmt.Sprintf(" %s/%d=%d", t.Topic, p.Partition, p.Offset)
					}
				}
				s += ")"
			}
			return s
		}
		s := "fetch err=" + errName(r.ErrorCode)
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				s += fmt.Sprintf(" %s/%d=%d", t.Topic, p.Partition, p.Offset)
				if p.ErrorCode != 0 && p.ErrorCode != r.ErrorCode {
					s += "(" + errName(p.ErrorCode) + ")"
				}
			}
		}
		return s
	case *kmsg.TxnOffsetCommitResponse:
		s := "txn-commit"
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				s += fmt.Sprintf(" %s/%d=%s", t.Topic, p.Partition, errName(p.ErrorCode))
			}
		}
		return s
	case *kmsg.OffsetDeleteResponse:
		s := "offset-delete err=" + errName(r.ErrorCode)
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				s += fmt.Sprintf(" %s/%d=%s", t.Topic, p.Partition, errName(p.ErrorCode))
			}
		}
		return s
	case *kmsg.DescribeGroupsResponse:
		var lines []string
		for _, g := range r.Groups {
			s := fmt.Sprintf("describe %s err=%s state=%s type=%s proto=%s", g.Group, errName(g.ErrorCode), g.State, g.ProtocolType, g.Protocol)
			for _, m := range g.Members {
				s += fmt.Sprintf("\n  member %s instance=%s client=%s host=%s meta=%q assign=%q", m.MemberID, derefOr(m.InstanceID), m.ClientID, m.ClientHost, m.ProtocolMetadata, m.MemberAssignment)
			}
			lines = append(lines, s)
		}
		return strings.Join(lines, "\n")
	case *kmsg.ListGroupsResponse:
		s := "list err=" + errName(r.ErrorCode)
		for _, g := range r.Groups {
			s += fmt.Sprintf(" %s(%s,%s)", g.Group, g.ProtocolType, g.GroupState)
		}
		return s
	case *kmsg.DeleteGroupsResponse:
		s := "delete"
		for _, g := range r.Groups {
			s += fmt.Sprintf(" %s=%s", g.Group, errName(g.ErrorCode))
		}
		return s
	}
	return fmt.Sprintf("%T", msg)
}

// state prints the coordinator's own view of a group.
func (h *harness) state(id GroupID) string {
	g := h.c.groups[id]
	if g == nil {
		return "no group"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "state=%s gen=%d type=%s proto=%s leader=%s", g.state, g.generation, g.protocolType, g.protocol, g.leader)
	for _, m := range g.sortedMembers() {
		fmt.Fprintf(&b, "\nmember %s", m.id)
		if m.instanceID != "" {
			fmt.Fprintf(&b, " instance=%s", m.instanceID)
		}
		if m.join != nil {
			fmt.Fprintf(&b, " awaiting-join=#%d", m.join.tok)
		}
		if m.sync != nil {
			fmt.Fprintf(&b, " awaiting-sync=#%d", m.sync.tok)
		}
		fmt.Fprintf(&b, " expires-in=%v assign=%q", m.deadline.Sub(h.now), m.assignment)
	}
	for _, id := range g.pendingIDs() {
		fmt.Fprintf(&b, "\npending %s expires-in=%v", id, g.pending[id].Sub(h.now))
	}
	for _, tp := range sortedTPs(g.offsets) {
		fmt.Fprintf(&b, "\noffset %s/%d=%d", tp.topic, tp.partition, g.offsets[tp].offset)
	}
	if len(h.c.timers) > 0 {
		fmt.Fprintf(&b, "\nnext-wakeup-in=%v", h.c.timers[0].at.Sub(h.now))
	}
	return b.String()
}

// controlBatch builds a COMMIT or ABORT marker batch of producer pid.
func controlBatch(t *testing.T, pid int64, commit bool) (batch.Header, []byte) {
	t.Helper()
	kind := byte(0)
	if commit {
		kind = 1
	}
	h := batch.Header{Attributes: 0x30, ProducerID: pid, BaseSequence: -1}
	b, err := batch.Build(h, []batch.Record{{Key: []byte{0, 0, 0, kind}, Value: []byte{0, 0, 0, 0, 0, 0}}}, batch.CodecNone)
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := batch.ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return hdr, b
}
