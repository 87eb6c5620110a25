package replica

import (
	"context"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/base"
	"github.com/weir-dev/weir/broker/internal/topics"
)

// maxFetchWait bounds a follower's MaxWaitMillis.
const maxFetchWait = 30 * time.Second

// ReadFunc reads a partition's batches into a fetch response: l is read
// as a topics.Log (with its BufferReader and RangeReader when it has
// them), and op is the partition's answer, which a reader that hands out
// a file range instead of bytes (sendfile) notes the range against. The
// protocol layer passes one that reads into buffers it keeps, or gives
// file ranges, until the response is written.
type ReadFunc = func(l topics.Log, op *kmsg.FetchResponseTopicPartition, from base.Offset, maxBytes int) ([]byte, error)

// pastHW is a leader's log as its followers read it: Read, ReadInto and
// ReadRange go up to the log end offset, past the high watermark.
type pastHW struct{ Log }

func (v pastHW) Read(from base.Offset, maxBytes int) ([]byte, error) {
	return v.ReadReplica(from, maxBytes)
}

func (v pastHW) ReadInto(dst []byte, from base.Offset, maxBytes int) ([]byte, error) {
	return v.ReadReplicaInto(dst, from, maxBytes)
}

func (v pastHW) ReadRange(from base.Offset, maxBytes, minBytes int) (topics.FileRange, bool, error) {
	return v.ReadReplicaRange(from, maxBytes, minBytes)
}

var (
	_ topics.BufferReader = pastHW{}
	_ topics.RangeReader  = pastHW{}
)

// readCopy is the ReadFunc that copies into a fresh buffer.
func readCopy(l topics.Log, _ *kmsg.FetchResponseTopicPartition, from base.Offset, maxBytes int) ([]byte, error) {
	return l.Read(from, maxBytes)
}

// servePart is one partition of a follower's fetch.
type servePart struct {
	ps     *partition
	in     *kmsg.FetchRequestTopicPartition
	out    *kmsg.FetchResponseTopicPartition
	reader bool // served from the log (no error, no divergence)
}

// ServeFetch answers a Fetch from follower replica (ReplicaID, or
// ReplicaState on v15+). For each partition this broker leads in the
// epoch the follower names, it records the follower's fetch offset (its
// durable end) in the leader's state, which may raise the high watermark;
// checks the follower's last fetched epoch against its own log (a
// DivergingEpoch answer tells the follower where to truncate, KIP-320); and
// returns batches up to the log end offset, past the high watermark. With
// no data for any partition it waits up to MaxWaitMillis for an append.
// read reads the batches (nil: into fresh buffers).
func (m *Manager) ServeFetch(ctx context.Context, req *kmsg.FetchRequest, version int16, read ReadFunc) *kmsg.FetchResponse {
	if read == nil {
		read = readCopy
	}
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	replica := req.ReplicaID
	if version >= 15 {
		replica = req.ReplicaState.ID
	}
	now := m.opts.Now()
	var parts []servePart
	resp.Topics = make([]kmsg.FetchResponseTopic, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		ot := &resp.Topics[i]
		*ot = kmsg.NewFetchResponseTopic()
		ot.Topic, ot.TopicID = rt.Topic, rt.TopicID
		ot.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			op := &ot.Partitions[j]
			*op = kmsg.NewFetchResponseTopicPartition()
			op.Partition = rp.Partition
			op.HighWatermark, op.LastStableOffset, op.LogStartOffset = -1, -1, -1
			op.PreferredReadReplica = -1
			op.RecordBatches = []byte{}
			name := rt.Topic
			if version >= 13 {
				name = ""
			}
			ps := m.lookupName(name, rt.TopicID, rp.Partition)
			if ps == nil {
				op.ErrorCode = kerr.NotLeaderForPartition.Code
				continue
			}
			op.ErrorCode = m.beginServe(ps, replica, rp, op, now)
			parts = append(parts, servePart{ps: ps, in: rp, out: op, reader: op.ErrorCode == 0 && op.DivergingEpoch.EndOffset < 0})
		}
	}
	wait := min(time.Duration(max(req.MaxWaitMillis, 0))*time.Millisecond, maxFetchWait)
	var timer *time.Timer
	for {
		var chans []<-chan struct{}
		if wait > 0 {
			for _, sp := range parts {
				if sp.reader {
					chans = append(chans, sp.ps.log.Appended(), sp.ps.log.Changed())
				}
			}
		}
		total, answered := 0, false
		budget := int(req.MaxBytes)
		if budget <= 0 {
			budget = 1
		}
		for _, sp := range parts {
			if !sp.reader {
				answered = true
				continue
			}
			l := sp.ps.log
			sp.out.HighWatermark = int64(l.HighWatermark())
			sp.out.LastStableOffset = sp.out.HighWatermark
			sp.out.LogStartOffset = int64(l.LogStartOffset())
			b := min(int(max(sp.in.PartitionMaxBytes, 0)), budget-total)
			if total == 0 {
				b = max(b, 1)
			}
			if b <= 0 {
				continue
			}
			data, err := read(pastHW{l}, sp.out, base.Offset(sp.in.FetchOffset), b)
			if err != nil {
				sp.out.ErrorCode = kerr.OffsetOutOfRange.Code
				answered = true
				continue
			}
			sp.out.RecordBatches = data
			total += len(data)
		}
		if total > 0 || answered || wait <= 0 || len(chans) == 0 || ctx.Err() != nil {
			return resp
		}
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		if !waitAny(ctx, timer.C, chans) {
			return resp
		}
	}
}

// beginServe checks one partition of a follower's fetch and records the
// follower's offset. It returns the partition's error code; a divergence
// is set in op.
func (m *Manager) beginServe(ps *partition, replica int32, rp *kmsg.FetchRequestTopicPartition, op *kmsg.FetchResponseTopicPartition, now time.Time) int16 {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	// The epoch first, as Kafka's Partition.getLocalLog: a follower
	// fenced on a broker that has moved on learns so whether or not that
	// broker leads.
	if code := checkEpoch(ps.epoch, rp.CurrentLeaderEpoch); code != 0 {
		return code
	}
	if ps.role != roleLeader {
		return kerr.NotLeaderForPartition.Code
	}
	l := ps.log
	op.LogStartOffset, op.HighWatermark = int64(l.LogStartOffset()), int64(l.HighWatermark())
	op.LastStableOffset = op.HighWatermark
	off := base.Offset(rp.FetchOffset)
	if rp.LastFetchedEpoch >= 0 {
		e, end, ok := l.EndOffsetForEpoch(base.Epoch(rp.LastFetchedEpoch))
		switch {
		case !ok:
			// The follower's data is all of epochs this log never had.
			op.DivergingEpoch.Epoch, op.DivergingEpoch.EndOffset = -1, int64(l.LogStartOffset())
			return 0
		case e < base.Epoch(rp.LastFetchedEpoch) || end < off:
			op.DivergingEpoch.Epoch, op.DivergingEpoch.EndOffset = int32(e), int64(end)
			return 0
		}
	}
	if off < l.LogStartOffset() || off > l.LogEndOffset() {
		return kerr.OffsetOutOfRange.Code
	}
	ps.leader.Appended(l.LogEndOffset(), l.DurableEnd())
	if ps.leader.Fetched(now, replica, off, l.LogEndOffset()) {
		m.applyLimitLocked(ps)
		op.HighWatermark = int64(l.HighWatermark())
		op.LastStableOffset = op.HighWatermark
	} else {
		return kerr.NotLeaderForPartition.Code // not a replica of this partition
	}
	return 0
}

// waitAny blocks until one of chans is closed (true), or timeout fires or
// ctx is done (false).
func waitAny(ctx context.Context, timeout <-chan time.Time, chans []<-chan struct{}) bool {
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
