package txn

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/group"
)

// The error codes the coordinator answers with, from kerr.
var (
	none                      = int16(0)
	invalidRequest            = kerr.InvalidRequest.Code
	notCoordinator            = kerr.NotCoordinator.Code
	coordinatorLoadInProgress = kerr.CoordinatorLoadInProgress.Code
	coordinatorNotAvailable   = kerr.CoordinatorNotAvailable.Code
	invalidTimeout            = kerr.InvalidTransactionTimeout.Code
	concurrentTransactions    = kerr.ConcurrentTransactions.Code
	invalidMapping            = kerr.InvalidProducerIDMapping.Code
	invalidTxnState           = kerr.InvalidTxnState.Code
	unknownPartition          = kerr.UnknownTopicOrPartition.Code
	notAttempted              = kerr.OperationNotAttempted.Code
)

// fenced is the code for a request from a fenced producer: PRODUCER_FENCED
// (KIP-588) from request version since on, INVALID_PRODUCER_EPOCH before,
// which older clients understand the same way.
func fenced(version, since int16) int16 {
	if version >= since {
		return kerr.ProducerFenced.Code
	}
	return kerr.InvalidProducerEpoch.Code
}

// OffsetsTopic is the topic AddOffsetsToTxn adds a partition of.
const OffsetsTopic = "__consumer_offsets"

// initProducerID answers InitProducerId (v0-v5). A request without a
// transactional id is an idempotent producer's: it gets a fresh id at epoch
// 0 and leaves no state here.
func (c *Coordinator) initProducerID(now time.Time, tok Token, m *kmsg.InitProducerIDRequest) {
	resp := m.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	answer := func(code int16) {
		resp.ErrorCode = code
		c.respond(tok, resp)
	}
	if m.TransactionalID == nil {
		pid, err := c.opts.ProducerIDs.NextProducerID()
		if err != nil {
			answer(coordinatorNotAvailable)
			return
		}
		resp.ProducerID, resp.ProducerEpoch = pid, 0
		answer(none)
		return
	}
	id := TransactionalID(*m.TransactionalID)
	if id == "" {
		answer(invalidRequest)
		return
	}
	if code := c.serving(id); code != 0 {
		answer(code)
		return
	}
	timeout := time.Duration(m.TransactionTimeoutMillis) * time.Millisecond
	if timeout <= 0 || timeout > c.opts.MaxTransactionTimeout {
		answer(invalidTimeout)
		return
	}
	// KIP-360: a producer that names its current id and epoch asks to
	// continue after an error rather than to start over; both or neither.
	var expect *producer
	if m.Version >= 3 && (m.ProducerID != -1 || m.ProducerEpoch != -1) {
		if m.ProducerID < 0 || m.ProducerEpoch < 0 {
			answer(invalidRequest)
			return
		}
		expect = &producer{ProducerID(m.ProducerID), Epoch(m.ProducerEpoch)}
	}
	isFenced := fenced(m.Version, 4)

	t := c.txns[id]
	if t == nil {
		if len(c.txns) >= c.opts.MaxTransactionalIDs {
			answer(coordinatorNotAvailable)
			return
		}
		pid, err := c.opts.ProducerIDs.NextProducerID()
		if err != nil {
			answer(coordinatorNotAvailable)
			return
		}
		t = &txn{
			persisted: persisted{
				ID: id, ProducerID: ProducerID(pid), Epoch: 0,
				PrevProducerID: NoProducerID, NextProducerID: NoProducerID,
				Timeout: timeout, State: StateEmpty, LastUpdate: now,
			},
			partition: Partition(id, c.opts.StatePartitions),
			lastEpoch: NoEpoch,
		}
		c.txns[id] = t
		c.persist(t)
		resp.ProducerID, resp.ProducerEpoch = pid, 0
		answer(none)
		c.settle(t)
		return
	}
	// A named producer must be the current one, or the one before a
	// rotation retrying the call that rotated it.
	if expect != nil && expect.id != t.ProducerID && (expect.id != t.PrevProducerID || expect.epoch < exhaustedEpoch) {
		answer(isFenced)
		return
	}
	switch {
	case t.State.preparing():
		answer(concurrentTransactions)
		return
	case t.State == StateOngoing:
		// A new producer session fences the old one: abort its transaction
		// under a bumped epoch, and have the caller retry (it gets yet
		// another epoch once the abort completes).
		if !c.abort(now, t) {
			answer(coordinatorNotAvailable)
			return
		}
		answer(concurrentTransactions)
		c.settle(t)
		return
	}
	switch {
	case t.Epoch >= exhaustedEpoch && (expect == nil || expect.epoch == t.Epoch):
		pid, err := c.opts.ProducerIDs.NextProducerID()
		if err != nil {
			answer(coordinatorNotAvailable)
			return
		}
		t.lastEpoch = NoEpoch
		if expect != nil {
			t.lastEpoch = t.Epoch
		}
		t.PrevProducerID, t.ProducerID, t.Epoch = t.ProducerID, ProducerID(pid), 0
	case expect == nil:
		t.Epoch++
		t.lastEpoch = NoEpoch
	case expect.epoch == t.Epoch:
		t.lastEpoch = t.Epoch
		t.Epoch++
	case expect.epoch == t.lastEpoch:
		// A retry of a call that already bumped: same answer.
	default:
		answer(isFenced)
		return
	}
	t.Timeout, t.State, t.Partitions, t.Start, t.LastUpdate = timeout, StateEmpty, nil, time.Time{}, now
	t.groups = nil
	c.persist(t)
	resp.ProducerID, resp.ProducerEpoch = int64(t.ProducerID), int16(t.Epoch)
	answer(none)
	c.settle(t)
}

type producer struct {
	id    ProducerID
	epoch Epoch
}

// addPartitions answers AddPartitionsToTxn: v0-v3 from a client for one
// transaction; v4+ (KIP-890 part 1) a batch of transactions, each either
// adding its partitions or, with VerifyOnly, asking whether they are in the
// transaction (a partition leader checking a transactional produce). v5
// marks the adding client as a KIP-890 part 2 one.
func (c *Coordinator) addPartitions(now time.Time, tok Token, m *kmsg.AddPartitionsToTxnRequest) {
	resp := m.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if m.Version < 4 {
		parts := make([]TopicPartition, 0)
		for _, t := range m.Topics {
			for _, p := range t.Partitions {
				parts = append(parts, TopicPartition{t.Topic, p})
			}
		}
		codes := c.add(now, m.Version, TransactionalID(m.TransactionalID), ProducerID(m.ProducerID), Epoch(m.ProducerEpoch), parts, false, true)
		for _, t := range m.Topics {
			rt := kmsg.AddPartitionsToTxnResponseTopic{Topic: t.Topic}
			for _, p := range t.Partitions {
				rt.Partitions = append(rt.Partitions, kmsg.AddPartitionsToTxnResponseTopicPartition{Partition: p, ErrorCode: codes[TopicPartition{t.Topic, p}]})
			}
			resp.Topics = append(resp.Topics, rt)
		}
		c.respond(tok, resp)
		return
	}
	for _, x := range m.Transactions {
		parts := make([]TopicPartition, 0)
		for _, t := range x.Topics {
			for _, p := range t.Partitions {
				parts = append(parts, TopicPartition{t.Topic, p})
			}
		}
		codes := c.add(now, m.Version, TransactionalID(x.TransactionalID), ProducerID(x.ProducerID), Epoch(x.ProducerEpoch), parts, x.VerifyOnly, true)
		rx := kmsg.AddPartitionsToTxnResponseTransaction{TransactionalID: x.TransactionalID}
		for _, t := range x.Topics {
			rt := kmsg.AddPartitionsToTxnResponseTransactionTopic{Topic: t.Topic}
			for _, p := range t.Partitions {
				rt.Partitions = append(rt.Partitions, kmsg.AddPartitionsToTxnResponseTransactionTopicPartition{Partition: p, ErrorCode: codes[TopicPartition{t.Topic, p}]})
			}
			rx.Topics = append(rx.Topics, rt)
		}
		resp.Transactions = append(resp.Transactions, rx)
	}
	c.respond(tok, resp)
}

// addOffsets answers AddOffsetsToTxn (v0-v4): the group's partition of
// __consumer_offsets joins the transaction, so that the markers reach the
// group coordinator, which then makes the transaction's offset commits
// visible or drops them.
func (c *Coordinator) addOffsets(now time.Time, tok Token, m *kmsg.AddOffsetsToTxnRequest) {
	resp := m.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	if m.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		c.respond(tok, resp)
		return
	}
	tp := TopicPartition{OffsetsTopic, c.offsetsPartition(m.Group)}
	id := TransactionalID(m.TransactionalID)
	codes := c.add(now, m.Version, id, ProducerID(m.ProducerID), Epoch(m.ProducerEpoch), []TopicPartition{tp}, false, false)
	resp.ErrorCode = codes[tp]
	if resp.ErrorCode == none {
		if t := c.txns[id]; !slices.Contains(t.groups, m.Group) {
			t.groups = append(t.groups, m.Group)
		}
	}
	c.respond(tok, resp)
}

// offsetsPartition is the __consumer_offsets partition of group g: the
// group coordinator's choice, so that the markers reach the partition
// holding the group's transactional offsets.
func (c *Coordinator) offsetsPartition(g string) int32 {
	return group.Partition(group.GroupID(g), c.opts.OffsetsPartitions)
}

// add adds parts to id's transaction (or, with verify, checks that they are
// in it) and returns each partition's error code. The fencing code depends on
// the request version; checkTopics asks Options.Topics whether the
// partitions exist.
func (c *Coordinator) add(now time.Time, version int16, id TransactionalID, pid ProducerID, epoch Epoch, parts []TopicPartition, verify, checkTopics bool) map[TopicPartition]int16 {
	codes := make(map[TopicPartition]int16, len(parts))
	all := func(code int16) map[TopicPartition]int16 {
		for _, tp := range parts {
			codes[tp] = code
		}
		return codes
	}
	if id == "" {
		return all(invalidRequest)
	}
	if !verify {
		// Unknown partitions fail and the others are not attempted, as in
		// Kafka, before the transaction is looked at.
		unknown := false
		for _, tp := range parts {
			if tp.Topic == "" || tp.Partition < 0 {
				unknown = true
			} else if checkTopics && c.opts.Topics != nil {
				n, ok := c.opts.Topics.Partitions(tp.Topic)
				unknown = unknown || !ok || tp.Partition >= n
			}
		}
		if unknown {
			for _, tp := range parts {
				codes[tp] = notAttempted
				if tp.Topic == "" || tp.Partition < 0 {
					codes[tp] = unknownPartition
				} else if checkTopics && c.opts.Topics != nil {
					if n, ok := c.opts.Topics.Partitions(tp.Topic); !ok || tp.Partition >= n {
						codes[tp] = unknownPartition
					}
				}
			}
			return codes
		}
	}
	if code := c.serving(id); code != 0 {
		return all(code)
	}
	t := c.txns[id]
	switch {
	case t == nil || t.ProducerID != pid:
		return all(invalidMapping)
	case t.Epoch != epoch:
		return all(fenced(version, 2))
	case t.State.preparing():
		return all(concurrentTransactions)
	}
	if verify {
		for _, tp := range parts {
			codes[tp] = invalidTxnState
			if t.State == StateOngoing && slices.ContainsFunc(t.Partitions, func(x TopicPartition) bool { return x == tp }) {
				codes[tp] = none
			}
		}
		return codes
	}
	added := slices.Clone(t.Partitions)
	for _, tp := range parts {
		if _, found := slices.BinarySearchFunc(added, tp, cmpTP); !found {
			added = append(added, tp)
			slices.SortFunc(added, cmpTP)
		}
	}
	if len(added) > c.opts.MaxPartitionsPerTransaction {
		return all(invalidRequest)
	}
	if len(parts) == 0 || (t.State == StateOngoing && len(added) == len(t.Partitions)) {
		return all(none) // nothing new: nothing to record
	}
	if t.State != StateOngoing {
		t.Start = now
		t.groups = nil
	}
	// The transaction's version is its client's: a client without KIP-890
	// part 2 may take over an id a client with it used before, and its
	// markers must then carry the rule of version 0 (not older), not 2
	// (strictly newer), or its own marker would be refused as a late one.
	if version >= 5 {
		t.Version = TV2
	} else if t.State != StateOngoing {
		t.Version = 0
	}
	t.State, t.Partitions, t.LastUpdate = StateOngoing, added, now
	c.persist(t)
	c.settle(t)
	return all(none)
}

// endTxn answers EndTxn (v0-v5). From v5 on (KIP-890 part 2) the client's
// every transaction ends with an epoch bump: the markers carry the new
// epoch, so that a request still in flight from the ended transaction is
// fenced, and the answer hands the new epoch (or, when the epoch ran out, a
// new producer id) to the client. A retry of an EndTxn that already bumped
// carries the epoch before the bump and gets the same answer.
func (c *Coordinator) endTxn(now time.Time, tok Token, m *kmsg.EndTxnRequest) {
	resp := m.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	answer := func(code int16, t *txn) {
		resp.ErrorCode = code
		if code == none && t != nil {
			resp.ProducerID, resp.ProducerEpoch = int64(t.ProducerID), int16(t.Epoch)
			if t.NextProducerID != NoProducerID {
				resp.ProducerID, resp.ProducerEpoch = int64(t.NextProducerID), 0
			}
		}
		c.respond(tok, resp)
	}
	id, pid, epoch := TransactionalID(m.TransactionalID), ProducerID(m.ProducerID), Epoch(m.ProducerEpoch)
	if id == "" {
		answer(invalidRequest, nil)
		return
	}
	if code := c.serving(id); code != 0 {
		answer(code, nil)
		return
	}
	t := c.txns[id]
	if t == nil {
		answer(invalidMapping, nil)
		return
	}
	// From v5 on the client expects every EndTxn to bump the epoch, and a
	// retry of one that did names the epoch before the bump, or (the epoch
	// ran out) the previous producer id at the last usable epoch.
	v2 := m.Version >= 5
	retryBump := v2 && t.ProducerID == pid && epoch != maxEpoch && t.Epoch == epoch+1
	retryRotate := v2 && t.PrevProducerID == pid && epoch == exhaustedEpoch && t.Epoch == 0 && t.ProducerID != pid
	if t.ProducerID != pid && !retryRotate {
		answer(invalidMapping, nil)
		return
	}
	valid := epoch == t.Epoch
	if v2 {
		switch {
		case t.State.preparing():
			// The epoch is already the bumped one: only a retry may come.
			valid = retryBump
		case t.State == StateCompleteCommit || t.State == StateCompleteAbort:
			// A retry of the EndTxn that completed, or the current epoch's
			// end of an empty transaction.
			valid = valid || retryBump || retryRotate
		}
	}
	if !valid {
		answer(fenced(m.Version, 2), nil)
		return
	}
	retry := !v2 || retryBump || retryRotate
	if v2 && m.Commit && (retryBump || retryRotate) && (t.State == StatePrepareAbort || t.State == StateCompleteAbort) {
		// A commit at the epoch before an abort's bump: a client retrying its
		// own EndTxn repeats its own result, so this abort was the
		// coordinator's (a timeout, a new session) and the commit was in
		// flight. Fenced, which clients recover from, rather than the fatal
		// INVALID_TXN_STATE (as Kafka answers since KAFKA-20785).
		answer(fenced(m.Version, 2), nil)
		return
	}
	switch t.State {
	case StateOngoing:
		if v2 {
			t.Version = TV2
			if !c.bump(t) {
				answer(coordinatorNotAvailable, nil)
				return
			}
		} else {
			t.Version = 0 // the ending client's version (see add)
		}
		c.prepare(now, t, m.Commit)
		answer(none, t)
	case StateCompleteCommit, StateCompleteAbort:
		done := t.State == StateCompleteCommit
		switch {
		case m.Commit == done && retry:
			answer(none, t)
		case !m.Commit && v2 && !retry:
			c.abortEmpty(now, t, answer)
		default:
			answer(invalidTxnState, nil)
		}
	case StateEmpty:
		if !m.Commit && v2 {
			c.abortEmpty(now, t, answer)
		} else {
			answer(invalidTxnState, nil)
		}
	case StatePrepareCommit, StatePrepareAbort:
		if m.Commit == (t.State == StatePrepareCommit) {
			answer(concurrentTransactions, nil)
		} else {
			answer(invalidTxnState, nil)
		}
	}
	c.settle(t)
}

// abortEmpty aborts a KIP-890 part 2 transaction to which nothing was added
// (the client cannot know whether its produce reached a partition leader
// that added the partition): the epoch is bumped as for any other end, and
// the transaction completes at once, with no marker to write.
func (c *Coordinator) abortEmpty(now time.Time, t *txn, answer func(int16, *txn)) {
	t.Version = TV2
	if !c.bump(t) {
		answer(coordinatorNotAvailable, nil)
		return
	}
	t.Partitions, t.groups = nil, nil
	c.prepare(now, t, false)
	answer(none, t)
}

// bump raises t's epoch for a fence or a KIP-890 part 2 end of
// transaction. When the epoch reaches its maximum, the producer id rotates
// once the transaction completes: the next id is drawn now, recorded with
// the prepare record and handed to the client. It reports false if no id
// could be drawn; t is then unchanged.
func (c *Coordinator) bump(t *txn) bool {
	e := t.Epoch
	if e < maxEpoch {
		e++
	}
	if e == maxEpoch && t.NextProducerID == NoProducerID {
		pid, err := c.opts.ProducerIDs.NextProducerID()
		if err != nil {
			return false
		}
		t.NextProducerID = ProducerID(pid)
	}
	t.Epoch = e
	return true
}

// abort aborts t's open transaction under a bumped epoch, fencing the
// producer that opened it: a newer producer session or the timeout. It
// reports false if the epoch could not be bumped.
func (c *Coordinator) abort(now time.Time, t *txn) bool {
	if !c.bump(t) {
		return false
	}
	t.lastEpoch = NoEpoch
	c.prepare(now, t, false)
	return true
}

// prepare records PrepareCommit or PrepareAbort for t and asks for its
// markers; with no partition to mark it completes at once.
func (c *Coordinator) prepare(now time.Time, t *txn, commit bool) {
	t.State = StatePrepareAbort
	if commit {
		t.State = StatePrepareCommit
	}
	t.LastUpdate = now
	t.pending = make(map[TopicPartition]bool, len(t.Partitions))
	for _, tp := range t.Partitions {
		t.pending[tp] = true
	}
	c.persist(t)
	if len(t.pending) == 0 {
		c.complete(now, t)
		return
	}
	c.markers = append(c.markers, c.marker(t))
}

// complete records CompleteCommit or CompleteAbort for t once every marker
// is written, moving to the next producer id if the epoch ran out.
func (c *Coordinator) complete(now time.Time, t *txn) {
	if t.State == StatePrepareCommit {
		t.State = StateCompleteCommit
	} else {
		t.State = StateCompleteAbort
	}
	t.pending = nil
	if t.NextProducerID != NoProducerID {
		t.PrevProducerID, t.ProducerID, t.Epoch, t.NextProducerID = t.ProducerID, t.NextProducerID, 0, NoProducerID
	}
	t.Partitions, t.groups, t.Start, t.LastUpdate = nil, nil, time.Time{}, now
	c.persist(t)
}
