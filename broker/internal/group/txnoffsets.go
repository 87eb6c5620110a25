package group

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/batch"
	"github.com/weir-dev/weir/broker/internal/topics"
)

// Transactional offset commits (TxnOffsetCommit, KIP-98 and KIP-447).
//
// A transactional producer commits its consumer's offsets inside its
// transaction: the offsets are stored at once in __consumer_offsets, as
// Kafka stores them, in a transactional batch carrying the producer id and
// epoch (Record.txn), but stay pending, invisible to OffsetFetch, until the
// transaction coordinator's marker reaches the group's partition of
// __consumer_offsets: COMMIT makes them the group's committed offsets
// (CompleteTxn), ABORT drops them. Replay does the same from the log: a
// transactional batch's records are applied at their COMMIT marker, dropped
// at their ABORT marker, and those with no marker yet are loaded as pending
// (Record.txn set, see TopicLog.Replay). OffsetFetch with RequireStable
// answers UNSTABLE_OFFSET_COMMIT for a partition with a pending offset.

// txnPending is one producer's pending offsets, by group and partition.
type txnPending struct {
	epoch  int16
	groups map[GroupID]map[topicPartition]offset
}

// txnCommit handles TxnOffsetCommit v0-5 (v5 differs only in what the
// protocol handler did first: add the group to the transaction). From v3
// on (KIP-447) the request names the consumer's generation and member,
// checked as OffsetCommit checks them; a request with generation -1 and no
// member id (an older client) is not checked.
func (c *Coordinator) txnCommit(now time.Time, r Request, req *kmsg.TxnOffsetCommitRequest) {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	defer c.respond(r.Token, resp)
	code := c.validGroupID(req.Group)
	g := c.groups[GroupID(req.Group)]
	if code == 0 && !c.owns(GroupID(req.Group)) {
		code = kerr.NotCoordinator.Code
	}
	pid, epoch := req.ProducerID, req.ProducerEpoch
	p := c.txnOffsets[pid]
	if code == 0 && p != nil && epoch < p.epoch {
		code = kerr.ProducerFenced.Code
		if req.Version < 2 {
			code = kerr.InvalidProducerEpoch.Code
		}
	}
	if code == 0 && req.Version >= 3 && (req.Generation >= 0 || req.MemberID != "") {
		switch {
		case g == nil:
			code = kerr.IllegalGeneration.Code
		default:
			if _, c2 := c.validMember(g, req.MemberID, deref(req.InstanceID)); c2 != 0 {
				code = c2
			} else if Generation(req.Generation) != g.generation {
				code = kerr.IllegalGeneration.Code
			}
		}
	}
	for _, t := range req.Topics {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		check := c.commitCheck(t.Topic, code)
		for _, tp := range t.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition = tp.Partition
			if rp.ErrorCode = check(tp.Partition, tp.Metadata); rp.ErrorCode == 0 {
				epochL := int32(-1)
				if req.Version >= 2 {
					epochL = tp.LeaderEpoch
				}
				o := offset{offset: tp.Offset, leaderEpoch: epochL, metadata: deref(tp.Metadata), committed: now}
				key := topicPartition{t.Topic, tp.Partition}
				c.addPending(pid, epoch, GroupID(req.Group), key, o)
				rec := c.offsetRecord(GroupID(req.Group), key, &o)
				rec.txn, rec.txnPID, rec.txnEpoch = true, pid, epoch
				c.records = append(c.records, rec)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
}

func (c *Coordinator) addPending(pid int64, epoch int16, g GroupID, tp topicPartition, o offset) {
	if c.txnOffsets == nil {
		c.txnOffsets = make(map[int64]*txnPending)
	}
	p := c.txnOffsets[pid]
	if p == nil {
		p = &txnPending{epoch: epoch, groups: make(map[GroupID]map[topicPartition]offset)}
		c.txnOffsets[pid] = p
	}
	p.epoch = max(p.epoch, epoch)
	m := p.groups[g]
	if m == nil {
		m = make(map[topicPartition]offset)
		p.groups[g] = m
	}
	m[tp] = o
}

// loadPending applies a pending transactional offset record found by
// replay.
func (c *Coordinator) loadPending(rec Record) error {
	var k kmsg.OffsetCommitKey
	if err := k.ReadFrom(rec.Key); err != nil || rec.Value == nil {
		return nil // only offset records are transactional
	}
	var v kmsg.OffsetCommitValue
	if err := v.ReadFrom(rec.Value); err != nil {
		return err
	}
	if v.Version < 3 {
		v.LeaderEpoch = -1
	}
	c.addPending(rec.txnPID, rec.txnEpoch, GroupID(k.Group), topicPartition{k.Topic, k.Partition},
		offset{offset: v.Offset, leaderEpoch: v.LeaderEpoch, metadata: v.Metadata, committed: time.UnixMilli(v.CommitTimestamp)})
	return nil
}

// revertTxn drops a pending offset whose record could not be stored.
func (c *Coordinator) revertTxn(rec Record) {
	var k kmsg.OffsetCommitKey
	if err := k.ReadFrom(rec.Key); err != nil {
		return
	}
	if p := c.txnOffsets[rec.txnPID]; p != nil {
		delete(p.groups[GroupID(k.Group)], topicPartition{k.Topic, k.Partition})
	}
}

// completeTxn ends producer pid's transaction for the groups of
// __consumer_offsets partition part: commit makes their pending offsets the
// committed ones, abort drops them.
func (c *Coordinator) completeTxn(now time.Time, pid int64, commit bool, part int32) {
	p := c.txnOffsets[pid]
	if p == nil {
		return
	}
	for id, offs := range p.groups {
		if Partition(id, c.opts.OffsetsPartitions) != part {
			continue
		}
		delete(p.groups, id)
		if !commit || !c.owned[part] {
			continue
		}
		g := c.getOrCreate(now, id)
		if g == nil {
			continue
		}
		for tp, o := range offs {
			g.offsets[tp] = o
		}
		c.settle(now, g)
	}
	if len(p.groups) == 0 {
		delete(c.txnOffsets, pid)
	}
}

// markUnstable answers UNSTABLE_OFFSET_COMMIT, for a RequireStable fetch,
// for every partition with a pending transactional offset.
func (c *Coordinator) markUnstable(req *kmsg.OffsetFetchRequest, resp *kmsg.OffsetFetchResponse) {
	if len(c.txnOffsets) == 0 || !req.RequireStable {
		return
	}
	pending := func(g string, topic string, part int32) bool {
		for _, p := range c.txnOffsets {
			if _, ok := p.groups[GroupID(g)][topicPartition{topic, part}]; ok {
				return true
			}
		}
		return false
	}
	code := kerr.UnstableOffsetCommit.Code
	for i := range resp.Topics {
		t := &resp.Topics[i]
		for j := range t.Partitions {
			if pending(req.Group, t.Topic, t.Partitions[j].Partition) {
				t.Partitions[j].ErrorCode, t.Partitions[j].Offset = code, -1
			}
		}
	}
	for gi := range resp.Groups {
		rg := &resp.Groups[gi]
		for i := range rg.Topics {
			t := &rg.Topics[i]
			for j := range t.Partitions {
				if pending(rg.Group, t.Topic, t.Partitions[j].Partition) {
					t.Partitions[j].ErrorCode, t.Partitions[j].Offset = code, -1
				}
			}
		}
	}
}

// CompleteTxn applies the marker of producer pid's transaction written to
// __consumer_offsets partition part: commit makes the transaction's offsets
// of that partition's groups visible, abort drops them.
func (d *Driver) CompleteTxn(pid int64, commit bool, part int32) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	d.c.completeTxn(d.opts.Now(), pid, commit, part)
	d.deliverLocked(d.c.Ready())
	return nil
}

// trustedAppender is a log that takes batches a producer may not send: the
// transactional batches of TxnOffsetCommit carry no sequence number.
type trustedAppender interface {
	AppendTrusted(ctx context.Context, batches []byte) error
}

// failTxnCommit is failCommit for TxnOffsetCommit.
func failTxnCommit(r *kmsg.TxnOffsetCommitResponse, code int16) {
	for i := range r.Topics {
		for j := range r.Topics[i].Partitions {
			if r.Topics[i].Partitions[j].ErrorCode == 0 {
				r.Topics[i].Partitions[j].ErrorCode = code
			}
		}
	}
}

// hasTxn reports whether any of recs is a transactional offset.
func hasTxn(recs []Record) bool {
	for _, r := range recs {
		if r.txn {
			return true
		}
	}
	return false
}

// encodeRuns encodes recs as concatenated uncompressed batches, one per run
// of records of the same kind: plain, or transactional of one producer
// epoch (whose batch carries the producer and the transactional bit, with
// no sequence number, as Kafka writes them).
func encodeRuns(ts int64, recs []Record) ([]byte, error) {
	var out []byte
	for i := 0; i < len(recs); {
		j := i + 1
		for j < len(recs) && recs[j].txn == recs[i].txn && recs[j].txnPID == recs[i].txnPID && recs[j].txnEpoch == recs[i].txnEpoch {
			j++
		}
		h := batch.Header{FirstTimestamp: ts, MaxTimestamp: ts, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
		if recs[i].txn {
			h.Attributes = txnAttr
			h.ProducerID, h.ProducerEpoch = recs[i].txnPID, recs[i].txnEpoch
		}
		brs := make([]batch.Record, j-i)
		for k, r := range recs[i:j] {
			brs[k] = batch.Record{OffsetDelta: int32(k), Key: r.Key, Value: r.Value}
		}
		b, err := batch.Build(h, brs, batch.CodecNone)
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
		i = j
	}
	return out, nil
}

// txnAttr is the transactional attribute bit of a batch.
const txnAttr = 0x10

// appendTrusted appends batches holding transactional offsets, which only
// a log that takes broker-written batches accepts.
func appendTrusted(ctx context.Context, log topics.Log, b []byte, p int32) error {
	ta, ok := log.(trustedAppender)
	if !ok {
		return fmt.Errorf("group: %s/%d cannot store transactional offsets", OffsetsTopic, p)
	}
	if err := ta.AppendTrusted(ctx, b); err != nil {
		return fmt.Errorf("group: append to %s/%d: %w", OffsetsTopic, p, err)
	}
	return nil
}

// txnReplay wraps a replay's fn: records of transactional batches are held
// per producer until their marker (given to marker): COMMIT passes them on
// as plain records, ABORT drops them; flush passes on those still without a
// marker, as pending (Record.txn set).
func txnReplay(fn func(Record) error) (wrapped func(Record) error, marker func(batch.Header, []byte) error, flush func() error) {
	held := map[int64][]Record{}
	var order []int64
	wrapped = func(r Record) error {
		if !r.txn {
			return fn(r)
		}
		if _, ok := held[r.txnPID]; !ok {
			order = append(order, r.txnPID)
		}
		held[r.txnPID] = append(held[r.txnPID], r)
		return nil
	}
	marker = func(h batch.Header, b []byte) error {
		recs, ok := held[h.ProducerID]
		if !ok {
			return nil
		}
		delete(held, h.ProducerID)
		commit := false
		if rs, err := batch.Records(b, 1<<20); err == nil && len(rs) > 0 && len(rs[0].Key) >= 4 {
			commit = rs[0].Key[3] == 1 // control type 1: COMMIT
		}
		if !commit {
			return nil
		}
		for _, r := range recs {
			r.txn = false
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	}
	flush = func() error {
		for _, pid := range order {
			for _, r := range held[pid] {
				if err := fn(r); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return wrapped, marker, flush
}
