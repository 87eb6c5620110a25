package protocol

// Fetch, versions 4-13.
//
// The fetch path copies stored batch bytes; it never decodes records.
// Long polling: when fewer than MinBytes are available the request waits on
// the partitions' Changed channels (woken as soon as any high watermark
// advances, not on a timer) until MaxWaitMillis passes or the server shuts
// down. MaxBytes bounds the response and PartitionMaxBytes each partition,
// except that the first partition with data always returns at least one
// whole batch, however large, so that a consumer can make progress.
// FetchOffset below the log start or past the log end gets
// OFFSET_OUT_OF_RANGE (between the high watermark and the log end the answer
// is just empty). read_committed reads only below the last stable offset,
// with the aborted transactions the data holds (txn_fetch.go).
//
// Deviations: incremental fetch sessions (KIP-227) are not kept: every
// response carries session id 0, which tells clients to keep sending full
// fetch requests; a request naming a session id gets
// FETCH_SESSION_ID_NOT_FOUND. Follower fetches (ReplicaID >= 0) are refused
// with NOT_LEADER_OR_FOLLOWER on a single node; in cluster mode
// replica_fetch.go serves them. v13 topics are resolved by id
// (UNKNOWN_TOPIC_ID when unknown).

import (
	"context"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/topics"
)

func init() { register(kmsg.Fetch, 4, 13, handleFetch) }

// fetchMaxWait bounds MaxWaitMillis so a client cannot park a request for
// hours.
const fetchMaxWait = 5 * time.Minute

// fetchPart is one requested partition: where to read and where the answer
// goes.
type fetchPart struct {
	p        *topics.Partition // nil when the partition is unknown
	offset   topics.Offset
	maxBytes int32
	out      *kmsg.FetchResponseTopicPartition
	// committed: read_committed, only below the last stable offset
	// (txn_fetch.go).
	committed bool
}

func handleFetch(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.FetchRequest)
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if req.SessionID != 0 {
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return resp, nil
	}
	if req.ReplicaID >= 0 {
		resp.ErrorCode = kerr.NotLeaderForPartition.Code
		return resp, nil
	}

	n := 0
	for i := range req.Topics {
		n += len(req.Topics[i].Partitions)
	}
	parts := make([]fetchPart, 0, n) // one allocation, however many partitions
	resp.Topics = make([]kmsg.FetchResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		ot := &resp.Topics[i]
		*ot = kmsg.NewFetchResponseTopic()
		ot.Topic, ot.TopicID = rt.Topic, rt.TopicID
		var t *topics.Topic
		var ok bool
		code := kerr.UnknownTopicOrPartition.Code
		if r.Version >= 13 {
			t, ok = s.Topics.GetByID(rt.TopicID)
			code = kerr.UnknownTopicID.Code
		} else {
			t, ok = s.Topics.Get(rt.Topic)
		}
		ot.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			op := &ot.Partitions[j]
			*op = kmsg.NewFetchResponseTopicPartition()
			op.Partition = rp.Partition
			op.HighWatermark, op.LastStableOffset, op.LogStartOffset = -1, -1, -1
			op.PreferredReadReplica = -1
			op.RecordBatches = []byte{} // never null (see readFetch)
			if !ok {
				op.ErrorCode = code
				continue
			}
			p, pok := t.Partition(rp.Partition)
			if !pok {
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			parts = append(parts, fetchPart{p: p, offset: topics.Offset(rp.FetchOffset), maxBytes: rp.PartitionMaxBytes, out: op, committed: req.IsolationLevel == 1})
		}
	}

	lease := newFetchLease(ctx)
	wait := min(time.Duration(max(req.MaxWaitMillis, 0))*time.Millisecond, fetchMaxWait)
	var timer *time.Timer
	maxBytes := int(req.MaxBytes)
	if maxBytes <= 0 {
		maxBytes = 1 // still return at least one batch
	}
	for {
		// Take the change channels before reading, so that an append landing
		// between the read and the wait still wakes us.
		var changed []<-chan struct{}
		if wait > 0 {
			changed = make([]<-chan struct{}, 0, len(parts))
			for _, fp := range parts {
				changed = append(changed, fp.p.Log().Changed())
			}
		}
		total, failed := readFetch(parts, maxBytes, lease)
		if failed || total >= int(req.MinBytes) || wait <= 0 || len(parts) == 0 || ctx.Err() != nil {
			return resp, nil
		}
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		if !waitAny(ctx, timer.C, changed) {
			// Timed out (or shutting down): answer with what there is now.
			readFetch(parts, maxBytes, lease)
			return resp, nil
		}
	}
}

// readFetch fills every partition's answer from its log and returns the
// bytes gathered and whether any partition failed. It reads into lease's
// buffers, giving back those of an earlier call first.
func readFetch(parts []fetchPart, maxBytes int, lease *fetchLease) (total int, failed bool) {
	lease.reset()
	for _, fp := range parts {
		op, l := fp.out, fp.p.Log()
		// NB: empty, not nil: kmsg encodes nil as a null byte array, which
		// librdkafka rejects ("invalid MessageSetSize -1").
		op.RecordBatches = []byte{}
		op.ErrorCode = 0
		lso, hw := l.LogStartOffset(), l.HighWatermark()
		op.LogStartOffset, op.HighWatermark = int64(lso), int64(hw)
		op.LastStableOffset = int64(lastStable(l, hw))
		if fp.p.Topic().Deleted() {
			op.ErrorCode = kerr.UnknownTopicOrPartition.Code
			failed = true
			continue
		}
		// Out of range is below the log start or past the log end; between
		// the high watermark and the log end (appended, not yet durable)
		// there is simply nothing to read yet.
		if fp.offset < lso || fp.offset > l.LogEndOffset() {
			op.ErrorCode = kerr.OffsetOutOfRange.Code
			failed = true
			continue
		}
		end := hw
		if fp.committed {
			end = topics.Offset(op.LastStableOffset)
		}
		if fp.offset >= end {
			continue
		}
		budget := min(int(max(fp.maxBytes, 0)), maxBytes-total)
		if total == 0 {
			budget = max(budget, 1) // first data: at least one whole batch
		}
		if budget <= 0 {
			continue
		}
		var b []byte
		var err error
		if fp.committed {
			b, err = lease.read(l, fp.offset, budget)
		} else {
			b, err = lease.readAny(l, op, fp.offset, budget)
		}
		if err != nil {
			op.ErrorCode = errorCode(err)
			failed = true
			continue
		}
		if fp.committed {
			b = readCommitted(l, op, fp.offset, end, b)
		}
		op.RecordBatches = b
		total += len(b)
	}
	return total, failed
}

// waitAny blocks until one of chans is closed (true), or timeout fires or
// ctx is done (false).
func waitAny(ctx context.Context, timeout <-chan time.Time, chans []<-chan struct{}) bool {
	switch len(chans) {
	case 1:
		select {
		case <-chans[0]:
			return true
		case <-timeout:
		case <-ctx.Done():
		}
		return false
	case 2:
		select {
		case <-chans[0]:
			return true
		case <-chans[1]:
			return true
		case <-timeout:
		case <-ctx.Done():
		}
		return false
	}
	cases := make([]reflect.SelectCase, 0, len(chans)+2)
	cases = append(cases,
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timeout)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())})
	for _, c := range chans {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c)})
	}
	i, _, _ := reflect.Select(cases)
	return i >= 2
}
