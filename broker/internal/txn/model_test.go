package txn

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRandomOperations drives a coordinator with random requests from
// several producer sessions per transactional id (old and new protocol
// versions), clock ticks, partial marker deliveries and restarts, and checks
// it against a model of what the clients were told:
//
//   - only the session that last got an epoch from InitProducerId or EndTxn
//     v5 (the owner) is ever answered NONE by AddPartitionsToTxn,
//     AddOffsetsToTxn or EndTxn: every older session is fenced;
//   - every transaction is decided once, and its markers go to exactly the
//     partitions its adds were acknowledged for: a commit answered NONE
//     commits them, a fence or a timeout aborts them, a new session never
//     starts while they are undecided, and a restart sends the same decision
//     again;
//   - every request is answered at once and exactly once;
//   - the state reloaded from the records equals the state in memory, and
//     the invariants hold after every step.
func TestRandomOperations(t *testing.T) {
	n := 20
	if testing.Short() {
		n = 4
	}
	for i := 0; i < n; i++ {
		seed := uint64(time.Now().UnixNano()) + uint64(i)
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Logf("seed %d", seed)
			runRandom(t, rand.New(rand.NewPCG(seed, seed)), 3000)
		})
	}
}

type session struct {
	id    TransactionalID
	name  string
	pid   ProducerID
	epoch Epoch
	v2    bool
}

// decision is a decided transaction as the model knows it.
type decision struct {
	commit bool
	parts  []TopicPartition
}

type modelID struct {
	owner   *session
	open    map[TopicPartition]bool // acknowledged adds of the undecided transaction
	decided *decision               // the last decision
}

func runRandom(t *testing.T, r *rand.Rand, steps int) {
	t.Helper()
	ids := &counterIDs{}
	opts := Options{
		StatePartitions: 3, OffsetsPartitions: 2, ProducerIDs: ids,
		MaxTransactionTimeout: 30 * time.Second, TransactionalIDExpiration: 2 * time.Minute,
	}
	var log []Record
	var cepoch CoordinatorEpoch
	start := func(now time.Time) (*Coordinator, Ready) {
		c, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		cepoch++
		for p := int32(0); p < opts.StatePartitions; p++ {
			c.BeginLoad(p)
			for _, rec := range log {
				if rec.Partition == p {
					if err := c.Load(rec); err != nil {
						t.Fatalf("load: %v", err)
					}
				}
			}
			c.FinishLoad(now, p, cepoch)
		}
		return c, c.Ready()
	}
	now := epoch0
	c, _ := start(now)

	txnIDs := []TransactionalID{"a", "b", "c"}
	v2 := map[TransactionalID]bool{}
	model := map[TransactionalID]*modelID{}
	var sessions []*session
	for i, id := range txnIDs {
		v2[id] = r.IntN(2) == 0
		model[id] = &modelID{open: map[TopicPartition]bool{}}
		for j := 0; j < 3; j++ {
			sessions = append(sessions, &session{id: id, name: fmt.Sprintf("%s%d", id, j), pid: -1, epoch: -1, v2: v2[txnIDs[i]]})
		}
	}
	parts := []TopicPartition{{"t", 0}, {"t", 1}, {"u", 0}}
	// outstanding markers, as the driver holds them.
	type out struct {
		m    Marker
		left []TopicPartition
	}
	var outs []*out
	var tok Token
	stats := map[string]int{}
	defer func() { t.Log(stats) }()

	fail := func(step int, format string, args ...any) {
		t.Helper()
		t.Fatalf("step %d: %s", step, fmt.Sprintf(format, args...))
	}
	// checkMarker checks one marker against the model: fresh decisions
	// (from Step or Tick) take the open transaction; re-sent ones (after a
	// restart) repeat the last decision.
	checkMarker := func(step int, m Marker, fresh bool) {
		mi := model[m.TransactionalID]
		if fresh {
			if want := slices.SortedFunc(maps.Keys(mi.open), cmpTP); !slices.Equal(m.Partitions, want) {
				fail(step, "%s decided (commit=%v) for %v, but the adds acknowledged were %v", m.TransactionalID, m.Commit, m.Partitions, want)
			}
			mi.decided = &decision{m.Commit, m.Partitions}
			clear(mi.open)
		} else if mi.decided == nil || mi.decided.commit != m.Commit || !slices.Equal(mi.decided.parts, m.Partitions) {
			fail(step, "%s: a restart re-sent commit=%v %v, the decision was %+v", m.TransactionalID, m.Commit, m.Partitions, mi.decided)
		}
		outs = append(outs, &out{m: m, left: slices.Clone(m.Partitions)})
	}

	for step := 0; step < steps; step++ {
		s := sessions[r.IntN(len(sessions))]
		if o := model[s.id].owner; o != nil && r.IntN(4) > 0 {
			s = o // mostly the current session, so that transactions get somewhere
		}
		mi := model[s.id]
		var req kmsg.Request
		var commit bool
		var added []TopicPartition
		switch op := r.IntN(20); {
		case op < 2:
			m := kmsg.NewPtrInitProducerIDRequest()
			m.Version = int16(r.IntN(6))
			id := string(s.id)
			m.TransactionalID = &id
			m.TransactionTimeoutMillis = int32(5000 + r.IntN(25000))
			if m.Version >= 3 && s.pid >= 0 && r.IntN(2) == 0 {
				m.ProducerID, m.ProducerEpoch = int64(s.pid), int16(s.epoch)
			}
			req = m
		case op < 8:
			m := kmsg.NewPtrAddPartitionsToTxnRequest()
			m.Version = int16(r.IntN(4))
			if s.v2 {
				m.Version = 5
			}
			for _, tp := range parts {
				if r.IntN(2) == 0 {
					added = append(added, tp)
				}
			}
			if m.Version < 4 {
				m.TransactionalID, m.ProducerID, m.ProducerEpoch = string(s.id), int64(s.pid), int16(s.epoch)
				for _, tp := range added {
					m.Topics = append(m.Topics, kmsg.AddPartitionsToTxnRequestTopic{Topic: tp.Topic, Partitions: []int32{tp.Partition}})
				}
			} else {
				x := kmsg.AddPartitionsToTxnRequestTransaction{TransactionalID: string(s.id), ProducerID: int64(s.pid), ProducerEpoch: int16(s.epoch)}
				for _, tp := range added {
					x.Topics = append(x.Topics, kmsg.AddPartitionsToTxnRequestTransactionTopic{Topic: tp.Topic, Partitions: []int32{tp.Partition}})
				}
				m.Transactions = append(m.Transactions, x)
			}
			req = m
		case op < 9:
			m := kmsg.NewPtrAddOffsetsToTxnRequest()
			m.Version = int16(r.IntN(5))
			m.TransactionalID, m.ProducerID, m.ProducerEpoch = string(s.id), int64(s.pid), int16(s.epoch)
			m.Group = []string{"g", "h"}[r.IntN(2)]
			added = []TopicPartition{{OffsetsTopic, Partition(TransactionalID(m.Group), 2)}}
			added[0].Partition = groupPartition(m.Group, 2)
			req = m
		case op < 12:
			m := kmsg.NewPtrEndTxnRequest()
			m.Version = int16(r.IntN(5))
			if s.v2 {
				m.Version = 5
			}
			m.TransactionalID, m.ProducerID, m.ProducerEpoch = string(s.id), int64(s.pid), int16(s.epoch)
			m.Commit = r.IntN(3) > 0
			commit = m.Commit
			req = m
		case op < 16:
			if len(outs) > 0 {
				i := r.IntN(len(outs))
				o := outs[i]
				var done []TopicPartition
				for _, tp := range o.left {
					if r.IntN(2) == 0 {
						done = append(done, tp)
					}
				}
				o.left = slices.DeleteFunc(o.left, func(tp TopicPartition) bool { return slices.Contains(done, tp) })
				if len(o.left) == 0 {
					outs = slices.Delete(outs, i, i+1)
				}
				c.MarkersWritten(now, o.m.TransactionalID, o.m.ProducerID, o.m.Epoch, done)
			}
		case op < 19:
			now = now.Add(time.Duration(r.IntN(8000)) * time.Millisecond)
			c.Tick(now)
		default:
			var rd Ready
			outs = nil
			c, rd = start(now)
			if len(rd.Responses) > 0 || len(rd.Records) > 0 && !onlyCompletions(rd.Records, opts.StatePartitions) {
				fail(step, "a load produced responses or records other than completions: %+v", rd)
			}
			log = append(log, rd.Records...)
			for _, m := range rd.Markers {
				checkMarker(step, m, false)
			}
		}
		if req != nil {
			tok++
			c.Step(now, Request{Token: tok, Msg: req})
		}
		rd := c.Ready()
		log = append(log, rd.Records...)
		if req != nil && (len(rd.Responses) != 1 || rd.Responses[0].Token != tok) {
			fail(step, "%T got responses %+v", req, rd.Responses)
		}
		for _, m := range rd.Markers {
			checkMarker(step, m, true)
		}
		for _, rec := range rd.Records {
			if rec.Value == nil {
				id, _, _ := decodeRecord(rec, opts.StatePartitions)
				if len(model[id].open) > 0 {
					fail(step, "%s expired with acknowledged adds %v undecided", id, model[id].open)
				}
				model[id].owner = nil
			}
		}
		for _, resp := range rd.Responses {
			switch m := resp.Msg.(type) {
			case *kmsg.InitProducerIDResponse:
				if m.ErrorCode == 0 {
					if len(mi.open) > 0 {
						fail(step, "session %s started with %v of the last one undecided", s.name, mi.open)
					}
					s.pid, s.epoch = ProducerID(m.ProducerID), Epoch(m.ProducerEpoch)
					for _, o := range sessions {
						if o != s && o.id == s.id && o.pid == s.pid && o.epoch == s.epoch {
							fail(step, "sessions %s and %s both hold %d/%d", s.name, o.name, s.pid, s.epoch)
						}
					}
					mi.owner = s
				}
			case *kmsg.AddPartitionsToTxnResponse:
				ok := true
				for _, tp := range m.Topics {
					for _, p := range tp.Partitions {
						ok = ok && p.ErrorCode == 0
					}
				}
				for _, x := range m.Transactions {
					for _, tp := range x.Topics {
						for _, p := range tp.Partitions {
							ok = ok && p.ErrorCode == 0
						}
					}
				}
				if ok && len(added) > 0 {
					if mi.owner != s {
						fail(step, "session %s (%d/%d) added %v but %v owns %s", s.name, s.pid, s.epoch, added, mi.owner, s.id)
					}
					for _, tp := range added {
						mi.open[tp] = true
					}
				}
			case *kmsg.AddOffsetsToTxnResponse:
				if m.ErrorCode == 0 {
					if mi.owner != s {
						fail(step, "session %s added offsets but %v owns %s", s.name, mi.owner, s.id)
					}
					mi.open[added[0]] = true
				}
			case *kmsg.EndTxnResponse:
				if m.ErrorCode == 0 {
					if mi.owner != s {
						fail(step, "session %s ended a transaction but %v owns %s", s.name, mi.owner, s.id)
					}
					if len(mi.open) > 0 {
						fail(step, "session %s: EndTxn(commit=%v) answered but %v is undecided", s.name, commit, mi.open)
					}
					if commit && len(rd.Markers) > 0 && !rd.Markers[0].Commit {
						fail(step, "EndTxn(commit) answered NONE but the transaction aborted")
					}
					if m.Version >= 5 {
						s.pid, s.epoch = ProducerID(m.ProducerID), Epoch(m.ProducerEpoch)
					}
				}
			}
		}
		for _, resp := range rd.Responses {
			stats[fmt.Sprintf("%T/%d", resp.Msg, respCode(resp.Msg))]++
		}
		stats["markers"] += len(rd.Markers)
		if err := checkInvariants(c); err != nil {
			fail(step, "%v", err)
		}
		if step%50 == 0 {
			checkReload(t, step, c, opts, log)
		}
	}
}

// groupPartition is the __consumer_offsets partition of group g.
func groupPartition(g string, n int32) int32 {
	c, _ := New(Options{OffsetsPartitions: n, ProducerIDs: &counterIDs{}})
	return c.offsetsPartition(g)
}

// onlyCompletions reports whether recs are all CompleteCommit or
// CompleteAbort records (what a load may write: a prepare with nothing left
// to mark).
func onlyCompletions(recs []Record, n int32) bool {
	for _, rec := range recs {
		_, p, err := decodeRecord(rec, n)
		if err != nil || p == nil || (p.State != StateCompleteCommit && p.State != StateCompleteAbort) {
			return false
		}
	}
	return true
}

// checkReload loads log into a fresh coordinator and compares what it knows
// of every id with c, except what is not persisted.
func checkReload(t *testing.T, step int, c *Coordinator, opts Options, log []Record) {
	t.Helper()
	fresh, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < opts.StatePartitions; p++ {
		fresh.BeginLoad(p)
		for _, rec := range log {
			if rec.Partition == p {
				if err := fresh.Load(rec); err != nil {
					t.Fatalf("step %d: load: %v", step, err)
				}
			}
		}
	}
	if diff := cmp.Diff(c.IDs(), fresh.IDs()); diff != "" {
		t.Fatalf("step %d: ids in memory vs reloaded (-+):\n%s", step, diff)
	}
	for _, id := range c.IDs() {
		a, b := c.txns[id].persisted, fresh.txns[id].persisted
		if diff := cmp.Diff(a, b); diff != "" {
			t.Fatalf("step %d: %s in memory vs reloaded (-+):\n%s", step, id, diff)
		}
	}
}

func respCode(m kmsg.Response) int16 {
	switch m := m.(type) {
	case *kmsg.InitProducerIDResponse:
		return m.ErrorCode
	case *kmsg.EndTxnResponse:
		return m.ErrorCode
	case *kmsg.AddOffsetsToTxnResponse:
		return m.ErrorCode
	case *kmsg.AddPartitionsToTxnResponse:
		for _, t := range m.Topics {
			return t.Partitions[0].ErrorCode
		}
		for _, x := range m.Transactions {
			for _, t := range x.Topics {
				return t.Partitions[0].ErrorCode
			}
		}
	}
	return -99
}
