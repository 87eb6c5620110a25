package txn

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The scenario files under testdata/ drive a Coordinator with requests,
// clock ticks, marker acknowledgements and restarts, and print everything it
// answers, persists and asks to send. Commands:
//
//	new [max-timeout=D] [expiration=D] [state-partitions=N] [topics=(t:N,...)] [max-ids=N] [max-parts=N]
//	leaders map=(t/p:node,...)         (where markers go; default node 1; -1: none)
//	set-epoch id=T epoch=N             (test hook: jump T's epoch)
//	init [id=T] [timeout=D] [pid=N epoch=N] [v=N]   (no id: an idempotent producer)
//	add id=T pid=N epoch=N parts=(t/p,...) [v=N]    (v4+: one transaction, not VerifyOnly)
//	verify id=T pid=N epoch=N parts=(t/p,...)       (v4, VerifyOnly)
//	offsets id=T pid=N epoch=N group=G [v=N]
//	end id=T pid=N epoch=N result=commit|abort [v=N]
//	written id=T [parts=(t/p,...)] [pid=N epoch=N]  (markers written; default: all
//	                                   of T's last marker, with its id and epoch)
//	tick D                             (advance the clock by D, then Tick)
//	state id=T                         (the coordinator's view of T)
//	restart                            (a new coordinator loads everything persisted,
//	                                   one coordinator epoch later)
//	unload p=N / load p=N              (drop a partition / load it again from the log)
//	begin-load p=N / finish-load p=N   (the two halves of load)
//	lose-last                          (the last record persisted is gone: its append failed)
//	move p=N epoch=E                   (the partition moves to another broker: unloaded,
//	                                   then loaded from the log under coordinator epoch E)
//	truth map=(t/p:node,...)           (who really leads each partition; default: as in leaders)
//	down broker=N / up broker=N        (a broker that cannot be reached, or can again)
//	deliver id=T                       (the driver's marker round for T's pending partitions:
//	                                   one WriteTxnMarkers per leader of the coordinator's
//	                                   view; each broker writes those it really leads and
//	                                   answers NOT_LEADER_OR_FOLLOWER for the others)
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/scenarios", func(t *testing.T, path string) {
		h := newHarness(t, Options{})
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			h.t = t
			out := h.run(td)
			if err := checkInvariants(h.c); err != nil {
				t.Fatalf("%s: after %s: %v", td.Pos, td.Cmd, err)
			}
			return out
		})
	})
}

var epoch0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type fakeTopics map[string]int32

func (f fakeTopics) Partitions(topic string) (int32, bool) {
	n, ok := f[topic]
	return n, ok
}

// counterIDs hands out producer ids 1, 2, 3, ...
type counterIDs struct{ next int64 }

func (c *counterIDs) NextProducerID() (int64, error) {
	c.next++
	return c.next, nil
}

type harness struct {
	t        *testing.T
	opts     Options
	ids      *counterIDs
	c        *Coordinator
	now      time.Time
	tok      Token
	names    map[Token]string
	log      []Record // everything persisted, in order
	cepoch   CoordinatorEpoch
	leaders  map[TopicPartition]NodeID
	lastMark map[TransactionalID]Marker
	truth    map[TopicPartition]NodeID
	down     map[NodeID]bool
}

func newHarness(t *testing.T, o Options) *harness {
	h := &harness{t: t}
	h.reset(o)
	return h
}

func (h *harness) reset(o Options) {
	h.t.Helper()
	if o.StatePartitions == 0 {
		o.StatePartitions = 4
	}
	if o.OffsetsPartitions == 0 {
		o.OffsetsPartitions = 4
	}
	h.ids = &counterIDs{}
	o.ProducerIDs = h.ids
	h.opts, h.now, h.log, h.names, h.cepoch = o, epoch0, nil, map[Token]string{}, 0
	h.leaders, h.lastMark = map[TopicPartition]NodeID{}, map[TransactionalID]Marker{}
	h.truth, h.down = map[TopicPartition]NodeID{}, map[NodeID]bool{}
	h.start()
}

// start makes a new coordinator, one coordinator epoch on, and loads every
// partition from the log.
func (h *harness) start() string {
	h.t.Helper()
	c, err := New(h.opts)
	if err != nil {
		h.t.Fatal(err)
	}
	h.c = c
	h.cepoch++
	var b strings.Builder
	for p := int32(0); p < h.opts.StatePartitions; p++ {
		h.load(p)
	}
	h.ready(&b)
	return b.String()
}

func (h *harness) load(p int32) {
	h.t.Helper()
	h.c.BeginLoad(p)
	for _, rec := range h.log {
		if rec.Partition == p {
			if err := h.c.Load(rec); err != nil {
				h.t.Fatalf("load: %v", err)
			}
		}
	}
	h.c.FinishLoad(h.now, p, h.cepoch)
}

func arg(td *datadriven.TestData, key, def string) string {
	if a, ok := td.Arg(key); ok && len(a.Vals) > 0 {
		return a.Vals[0]
	}
	return def
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

func (h *harness) tp(s string) TopicPartition {
	h.t.Helper()
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		h.t.Fatalf("want topic/partition, got %q", s)
	}
	return TopicPartition{s[:i], int32(h.int(s[i+1:]))}
}

func (h *harness) parts(td *datadriven.TestData) []TopicPartition {
	a, _ := td.Arg("parts")
	var ps []TopicPartition
	for _, v := range a.Vals {
		if v == "" {
			continue // parts=()
		}
		ps = append(ps, h.tp(v))
	}
	return ps
}

func (h *harness) step(td *datadriven.TestData, msg kmsg.Request) {
	h.tok++
	h.names[h.tok] = td.Cmd
	h.c.Step(h.now, Request{Token: h.tok, Msg: msg})
}

func (h *harness) run(td *datadriven.TestData) string {
	h.t.Helper()
	var b strings.Builder
	id, pid, epoch := arg(td, "id", ""), h.int(arg(td, "pid", "-1")), int16(h.int(arg(td, "epoch", "-1")))
	switch td.Cmd {
	case "new":
		var o Options
		o.MaxTransactionTimeout = h.dur(arg(td, "max-timeout", "0s"))
		o.TransactionalIDExpiration = h.dur(arg(td, "expiration", "0s"))
		o.StatePartitions = int32(h.int(arg(td, "state-partitions", "0")))
		o.MaxTransactionalIDs = int(h.int(arg(td, "max-ids", "0")))
		o.MaxPartitionsPerTransaction = int(h.int(arg(td, "max-parts", "0")))
		if a, ok := td.Arg("topics"); ok {
			ft := fakeTopics{}
			for _, s := range a.Vals {
				name, n, _ := strings.Cut(s, ":")
				ft[name] = int32(h.int(n))
			}
			o.Topics = ft
		}
		h.reset(o)
		return "ok"
	case "leaders":
		for _, a := range td.CmdArgs {
			for _, v := range a.Vals {
				s, n, _ := strings.Cut(v, ":")
				h.leaders[h.tp(s)] = NodeID(h.int(n))
			}
		}
		return "ok"
	case "init":
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version = int16(h.int(arg(td, "v", "4")))
		if _, ok := td.Arg("id"); ok {
			req.TransactionalID = &id
		}
		req.TransactionTimeoutMillis = int32(h.dur(arg(td, "timeout", "60s")).Milliseconds())
		req.ProducerID, req.ProducerEpoch = pid, epoch
		h.step(td, req)
	case "add":
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		req.Version = int16(h.int(arg(td, "v", "3")))
		byTopic := map[string][]int32{}
		var order []string
		for _, tp := range h.parts(td) {
			if _, ok := byTopic[tp.Topic]; !ok {
				order = append(order, tp.Topic)
			}
			byTopic[tp.Topic] = append(byTopic[tp.Topic], tp.Partition)
		}
		if req.Version < 4 {
			req.TransactionalID, req.ProducerID, req.ProducerEpoch = id, pid, epoch
			for _, t := range order {
				req.Topics = append(req.Topics, kmsg.AddPartitionsToTxnRequestTopic{Topic: t, Partitions: byTopic[t]})
			}
		} else {
			x := kmsg.AddPartitionsToTxnRequestTransaction{TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch}
			for _, t := range order {
				x.Topics = append(x.Topics, kmsg.AddPartitionsToTxnRequestTransactionTopic{Topic: t, Partitions: byTopic[t]})
			}
			req.Transactions = append(req.Transactions, x)
		}
		h.step(td, req)
	case "verify":
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		req.Version = 4
		x := kmsg.AddPartitionsToTxnRequestTransaction{TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch, VerifyOnly: true}
		for _, tp := range h.parts(td) {
			x.Topics = append(x.Topics, kmsg.AddPartitionsToTxnRequestTransactionTopic{Topic: tp.Topic, Partitions: []int32{tp.Partition}})
		}
		req.Transactions = append(req.Transactions, x)
		h.step(td, req)
	case "offsets":
		req := kmsg.NewPtrAddOffsetsToTxnRequest()
		req.Version = int16(h.int(arg(td, "v", "3")))
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = id, pid, epoch, arg(td, "group", "g")
		h.step(td, req)
	case "end":
		req := kmsg.NewPtrEndTxnRequest()
		req.Version = int16(h.int(arg(td, "v", "4")))
		req.TransactionalID, req.ProducerID, req.ProducerEpoch = id, pid, epoch
		switch r := arg(td, "result", ""); r {
		case "commit":
			req.Commit = true
		case "abort":
		default:
			h.t.Fatalf("%s: result=commit|abort, not %q", td.Pos, r)
		}
		h.step(td, req)
	case "written":
		m, ok := h.lastMark[TransactionalID(id)]
		if !ok {
			h.t.Fatalf("%s: no marker seen for %q", td.Pos, id)
		}
		parts := m.Partitions
		if _, ok := td.Arg("parts"); ok {
			parts = h.parts(td)
		}
		if pid >= 0 {
			m.ProducerID, m.Epoch = ProducerID(pid), Epoch(epoch)
		}
		h.c.MarkersWritten(h.now, TransactionalID(id), m.ProducerID, m.Epoch, parts)
	case "tick":
		if len(td.CmdArgs) != 1 {
			h.t.Fatalf("%s: tick D", td.Pos)
		}
		h.now = h.now.Add(h.dur(td.CmdArgs[0].Key))
		h.c.Tick(h.now)
	case "state":
		in, ok := h.c.Describe(TransactionalID(id))
		if !ok {
			return "none"
		}
		fmt.Fprintf(&b, "%s pid=%d epoch=%d timeout=%v parts=%s", in.State, in.ProducerID, in.Epoch, in.Timeout, tps(in.Partitions))
		if len(in.Pending) > 0 {
			fmt.Fprintf(&b, " pending=%s", tps(in.Pending))
		}
		if len(in.Groups) > 0 {
			fmt.Fprintf(&b, " groups=%v", in.Groups)
		}
		if in.PrevProducerID != NoProducerID {
			fmt.Fprintf(&b, " prev=%d", in.PrevProducerID)
		}
		if in.Version != 0 {
			fmt.Fprintf(&b, " tv=%d", in.Version)
		}
		fmt.Fprintf(&b, " start=%s last=%s", h.rel(in.Start), h.rel(in.LastUpdate))
		if d := h.c.deadline(h.c.txns[TransactionalID(id)]); !d.IsZero() {
			fmt.Fprintf(&b, "\ndeadline %s", h.rel(d))
		}
		return b.String()
	case "restart":
		out := h.start()
		return "restarted\n" + out
	case "unload":
		h.c.Unload(int32(h.int(arg(td, "p", "0"))))
		return "ok"
	case "load":
		h.load(int32(h.int(arg(td, "p", "0"))))
	case "begin-load":
		p := int32(h.int(arg(td, "p", "0")))
		h.c.BeginLoad(p)
		for _, rec := range h.log {
			if rec.Partition == p {
				if err := h.c.Load(rec); err != nil {
					h.t.Fatalf("load: %v", err)
				}
			}
		}
	case "finish-load":
		h.c.FinishLoad(h.now, int32(h.int(arg(td, "p", "0"))), h.cepoch)
	case "set-epoch":
		// A test hook: jump the epoch as if that many sessions had come and
		// gone, to reach its end without 32,000 InitProducerId calls.
		h.c.txns[TransactionalID(id)].Epoch = Epoch(epoch)
		return "ok"
	case "move":
		p := int32(h.int(arg(td, "p", "0")))
		h.c.Unload(p)
		h.c.BeginLoad(p)
		for _, rec := range h.log {
			if rec.Partition == p {
				if err := h.c.Load(rec); err != nil {
					h.t.Fatalf("load: %v", err)
				}
			}
		}
		h.c.FinishLoad(h.now, p, CoordinatorEpoch(h.int(arg(td, "epoch", "0"))))
	case "truth":
		for _, a := range td.CmdArgs {
			for _, v := range a.Vals {
				s, n, _ := strings.Cut(v, ":")
				h.truth[h.tp(s)] = NodeID(h.int(n))
			}
		}
		return "ok"
	case "down", "up":
		h.down[NodeID(h.int(arg(td, "broker", "0")))] = td.Cmd == "down"
		return "ok"
	case "deliver":
		h.deliver(&b, TransactionalID(id))
	case "lose-last":
		// The last record persisted is lost after all: its append failed.
		h.log = h.log[:len(h.log)-1]
		return "ok"
	default:
		h.t.Fatalf("%s: unknown command %q", td.Pos, td.Cmd)
	}
	h.ready(&b)
	if b.Len() == 0 {
		return "ok"
	}
	return b.String()
}

// leaderOf is the leader of tp in the coordinator's view.
func (h *harness) leaderOf(tp TopicPartition) (NodeID, bool) {
	if n, ok := h.leaders[tp]; ok {
		return n, n >= 0
	}
	return 1, true
}

// deliver runs one marker round for id's pending partitions, as the
// cluster's marker writer does: one WriteTxnMarkers per leader of the
// view, each answered by a broker that writes the partitions it really
// leads (h.truth, else the view) and refuses the others; the partitions
// written are reported to the coordinator.
func (h *harness) deliver(b *strings.Builder, id TransactionalID) {
	h.t.Helper()
	in, ok := h.c.Describe(id)
	if !ok || len(in.Pending) == 0 {
		b.WriteString("nothing pending\n")
		return
	}
	m := h.lastMark[id]
	m.Partitions = in.Pending
	reqs, orphans := MarkerRequests([]Marker{m}, 1, h.leaderOf)
	for _, n := range slices.Sorted(maps.Keys(reqs)) {
		req := reqs[n]
		if h.down[n] {
			var parts []TopicPartition
			for _, x := range req.Markers {
				for _, t := range x.Topics {
					for _, p := range t.Partitions {
						parts = append(parts, TopicPartition{t.Topic, p})
					}
				}
			}
			fmt.Fprintf(b, "broker %d: unreachable %s\n", n, tps(parts))
			continue
		}
		resp := kmsg.NewPtrWriteTxnMarkersResponse()
		for _, x := range req.Markers {
			rm := kmsg.NewWriteTxnMarkersResponseMarker()
			rm.ProducerID = x.ProducerID
			for _, t := range x.Topics {
				rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
					rp.Partition = p
					leader, known := h.truth[TopicPartition{t.Topic, p}]
					if !known {
						leader, _ = h.leaderOf(TopicPartition{t.Topic, p})
					}
					if leader != n {
						rp.ErrorCode = kerr.NotLeaderForPartition.Code
					}
					rt.Partitions = append(rt.Partitions, rp)
				}
				rm.Topics = append(rm.Topics, rt)
			}
			resp.Markers = append(resp.Markers, rm)
		}
		done, failed := MarkerResults(resp)
		fmt.Fprintf(b, "broker %d: wrote %s", n, tps(done))
		for _, tp := range slices.SortedFunc(maps.Keys(failed), cmpTP) {
			fmt.Fprintf(b, " %s/%d=%s", tp.Topic, tp.Partition, code(failed[tp]))
		}
		b.WriteString("\n")
		h.c.MarkersWritten(h.now, id, m.ProducerID, m.Epoch, done)
	}
	for _, o := range orphans {
		fmt.Fprintf(b, "no leader: %s\n", tps(o.Partitions))
	}
}

// rel prints t as an offset from the scenario's start.
func (h *harness) rel(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return "+" + t.Sub(epoch0).String()
}

func tps(ps []TopicPartition) string {
	s := make([]string, len(ps))
	for i, tp := range ps {
		s[i] = fmt.Sprintf("%s/%d", tp.Topic, tp.Partition)
	}
	return "[" + strings.Join(s, ",") + "]"
}

func code(c int16) string {
	if c == 0 {
		return "NONE"
	}
	if e := kerr.ErrorForCode(c); e != nil {
		if ke, ok := e.(*kerr.Error); ok {
			return ke.Message
		}
	}
	return strconv.Itoa(int(c))
}

// ready collects the coordinator's output, persists its records (checking
// that each decodes back) and prints it all.
func (h *harness) ready(b *strings.Builder) {
	h.t.Helper()
	rd := h.c.Ready()
	for _, rec := range rd.Records {
		h.log = append(h.log, rec)
		id, p, err := decodeRecord(rec, h.opts.StatePartitions)
		if err != nil {
			h.t.Fatalf("the coordinator wrote a record it cannot read: %v", err)
		}
		if p == nil {
			fmt.Fprintf(b, "persist p%d %s tombstone\n", rec.Partition, id)
			continue
		}
		fmt.Fprintf(b, "persist p%d %s %s pid=%d epoch=%d parts=%s", rec.Partition, id, p.State, p.ProducerID, p.Epoch, tps(p.Partitions))
		if p.PrevProducerID != NoProducerID {
			fmt.Fprintf(b, " prev=%d", p.PrevProducerID)
		}
		if p.NextProducerID != NoProducerID {
			fmt.Fprintf(b, " next=%d", p.NextProducerID)
		}
		if p.Version != 0 {
			fmt.Fprintf(b, " tv=%d", p.Version)
		}
		fmt.Fprintf(b, " timeout=%v start=%s\n", p.Timeout, h.rel(p.Start))
	}
	for _, r := range rd.Responses {
		fmt.Fprintf(b, "#%d %s", r.Token, h.names[r.Token])
		switch m := r.Msg.(type) {
		case *kmsg.InitProducerIDResponse:
			fmt.Fprintf(b, " err=%s pid=%d epoch=%d", code(m.ErrorCode), m.ProducerID, m.ProducerEpoch)
		case *kmsg.AddPartitionsToTxnResponse:
			if m.ErrorCode != 0 {
				fmt.Fprintf(b, " err=%s", code(m.ErrorCode))
			}
			for _, t := range m.Topics {
				for _, p := range t.Partitions {
					fmt.Fprintf(b, " %s/%d=%s", t.Topic, p.Partition, code(p.ErrorCode))
				}
			}
			for _, x := range m.Transactions {
				fmt.Fprintf(b, " %s:", x.TransactionalID)
				for _, t := range x.Topics {
					for _, p := range t.Partitions {
						fmt.Fprintf(b, " %s/%d=%s", t.Topic, p.Partition, code(p.ErrorCode))
					}
				}
			}
		case *kmsg.AddOffsetsToTxnResponse:
			fmt.Fprintf(b, " err=%s", code(m.ErrorCode))
		case *kmsg.EndTxnResponse:
			fmt.Fprintf(b, " err=%s", code(m.ErrorCode))
			if m.Version >= 5 {
				fmt.Fprintf(b, " pid=%d epoch=%d", m.ProducerID, m.ProducerEpoch)
			}
		default:
			h.t.Fatalf("unexpected response %T", r.Msg)
		}
		b.WriteString("\n")
	}
	for _, m := range rd.Markers {
		h.lastMark[m.TransactionalID] = m
	}
	reqs, orphans := MarkerRequests(rd.Markers, 2, h.leaderOf)
	for _, n := range slices.Sorted(maps.Keys(reqs)) {
		for _, m := range reqs[n].Markers {
			result := "abort"
			if m.Committed {
				result = "commit"
			}
			var parts []string
			for _, t := range m.Topics {
				for _, p := range t.Partitions {
					parts = append(parts, fmt.Sprintf("%s/%d", t.Topic, p))
				}
			}
			fmt.Fprintf(b, "marker to broker %d: %s pid=%d epoch=%d coordinator-epoch=%d tv=%d [%s]\n",
				n, result, m.ProducerID, m.ProducerEpoch, m.CoordinatorEpoch, m.TransactionVersion, strings.Join(parts, ","))
		}
	}
	for _, m := range orphans {
		fmt.Fprintf(b, "marker without leader: %s pid=%d %s\n", m.TransactionalID, m.ProducerID, tps(m.Partitions))
	}
}
