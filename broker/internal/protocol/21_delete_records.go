package protocol

// DeleteRecords, versions 0-2.
//
// Advances a partition's log start offset to Offset (-1 means the last
// stable offset: the high watermark unless a transaction is open); records
// below it are no longer readable and whole segments below it are removed
// by the log. An offset past the high watermark gets OFFSET_OUT_OF_RANGE,
// and so does one past the first offset of an open transaction (Kafka
// limits it by the high watermark only): a transaction's records stay until
// it ends. Answers with the new low watermark (log start offset).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/topics"
)

func init() { register(kmsg.DeleteRecords, 0, 2, handleDeleteRecords) }

func handleDeleteRecords(_ context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		ot := kmsg.NewDeleteRecordsResponseTopic()
		ot.Topic = rt.Topic
		t, ok := s.Topics.Get(rt.Topic)
		for _, rp := range rt.Partitions {
			op := kmsg.NewDeleteRecordsResponseTopicPartition()
			op.Partition = rp.Partition
			op.LowWatermark = -1
			if !ok {
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
				ot.Partitions = append(ot.Partitions, op)
				continue
			}
			p, pok := t.Partition(rp.Partition)
			if !pok {
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
				ot.Partitions = append(ot.Partitions, op)
				continue
			}
			l := p.Log()
			off := topics.Offset(rp.Offset)
			hw := l.HighWatermark()
			stable := lastStable(l, hw)
			if off == -1 {
				off = stable
			}
			if off < 0 || off > stable {
				op.ErrorCode = kerr.OffsetOutOfRange.Code
				ot.Partitions = append(ot.Partitions, op)
				continue
			}
			lso, err := l.DeleteRecordsBefore(off)
			op.ErrorCode = errorCode(err)
			if err == nil {
				op.LowWatermark = int64(lso)
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}
