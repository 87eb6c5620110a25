package protocol

// ListOffsets, versions 0-7.
//
// Timestamp -2 asks for the log start offset, -1 for the high watermark (the
// end a consumer can read to; at read_committed the last stable offset), -3 (v7+) for the offset of the record with the largest timestamp;
// any other timestamp gets the first offset whose batch timestamp is at or
// after it, or offset -1 when none is. v0 answers in OldStyleOffsets (one
// offset; MaxNumOffsets is not honoured beyond that). Leader epochs are 0.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.ListOffsets, 0, 7, handleListOffsets) }

func handleListOffsets(_ context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	resp.Topics = make([]kmsg.ListOffsetsResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		ot := &resp.Topics[i]
		*ot = kmsg.NewListOffsetsResponseTopic()
		ot.Topic = rt.Topic
		t, ok := s.Topics.Get(rt.Topic)
		ot.Partitions = make([]kmsg.ListOffsetsResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			op := &ot.Partitions[j]
			*op = kmsg.NewListOffsetsResponseTopicPartition()
			op.Partition = rp.Partition
			op.Timestamp, op.Offset = -1, -1
			if !ok {
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			p, pok := t.Partition(rp.Partition)
			if !pok {
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			l := p.Log()
			op.LeaderEpoch = 0
			switch rp.Timestamp {
			case -2:
				op.Offset = int64(l.LogStartOffset())
			case -1:
				op.Offset = int64(l.HighWatermark())
				if req.IsolationLevel == 1 {
					op.Offset = int64(lastStable(l, l.HighWatermark()))
				}
			case -3:
				if r.Version < 7 {
					op.ErrorCode = kerr.UnsupportedVersion.Code
					continue
				}
				off, ts := l.MaxTimestamp()
				op.Offset, op.Timestamp = int64(off), ts
			default:
				if rp.Timestamp < 0 {
					op.ErrorCode = kerr.InvalidRequest.Code
					continue
				}
				if off, ts, found := l.OffsetForTimestamp(rp.Timestamp); found {
					op.Offset, op.Timestamp = int64(off), ts
				}
			}
			if r.Version == 0 {
				if op.Offset >= 0 && rp.MaxNumOffsets > 0 {
					op.OldStyleOffsets = []int64{op.Offset}
				} else {
					op.OldStyleOffsets = []int64{}
				}
			}
		}
	}
	return resp, nil
}
