package protocol

// Produce, versions 3-10 (RecordBatch v2 only: v0-2 carry the old message
// formats, which Weir does not store).
//
// Every partition of a request is appended concurrently, each to its own
// log; nothing serializes partitions. The batches are handed to the log as
// sent: the log validates them (CORRUPT_MESSAGE, MESSAGE_TOO_LARGE,
// INVALID_RECORD, INVALID_TIMESTAMP), runs the idempotent-producer checks
// (OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH, a duplicate answered
// with its original offsets) and returns once the data is durable under the
// broker's fsync policy. acks=0 gets no response at all; acks=1 and acks=-1
// are the same thing on a single broker. Unknown topics are auto-created when
// the broker allows it.
//
// Deviations: transactional produce is refused with
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED (no transactions yet); TimeoutMillis
// is not applied (there is no replication to wait for; an append is bounded
// by its fsync); ErrorRecords is never filled.

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/topics"
)

func init() { register(kmsg.Produce, 3, 10, handleProduce) }

func handleProduce(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)

	var failAll int16
	switch {
	case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
		failAll = kerr.InvalidRequiredAcks.Code
	case req.TransactionID != nil:
		failAll = kerr.TransactionalIDAuthorizationFailed.Code
	}

	type job struct {
		p   *topics.Partition
		out *kmsg.ProduceResponseTopicPartition
		in  []byte
	}
	var jobs []job
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		ot := &resp.Topics[i]
		*ot = kmsg.NewProduceResponseTopic()
		ot.Topic = rt.Topic
		ot.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		var t *topics.Topic
		var terr error
		if failAll == 0 {
			var ok bool
			if t, ok = s.Topics.Get(rt.Topic); !ok {
				if s.cfg.AutoCreateTopics {
					t, terr = s.autoCreate(ctx, rt.Topic)
				} else {
					terr = topics.ErrUnknownTopic
				}
			}
		}
		for j, rp := range rt.Partitions {
			op := &ot.Partitions[j]
			*op = kmsg.NewProduceResponseTopicPartition()
			op.Partition = rp.Partition
			op.BaseOffset = -1
			op.LogAppendTime = -1
			op.LogStartOffset = -1
			switch {
			case failAll != 0:
				op.ErrorCode = failAll
			case terr != nil:
				op.ErrorCode = errorCode(terr)
			default:
				p, ok := t.Partition(rp.Partition)
				if !ok {
					op.ErrorCode = kerr.UnknownTopicOrPartition.Code
					continue
				}
				if len(rp.Records) == 0 {
					op.ErrorCode = kerr.CorruptMessage.Code
					continue
				}
				jobs = append(jobs, job{p: p, out: op, in: rp.Records})
			}
		}
	}

	run := func(j job) {
		res, err := j.p.Log().Append(ctx, j.in, 0)
		if err != nil {
			j.out.ErrorCode = errorCode(err)
			if j.p.Topic().Deleted() {
				j.out.ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
			if r.Version >= 8 {
				j.out.ErrorMessage = errMessage(err)
			}
			return
		}
		j.out.BaseOffset = res.BaseOffset
		j.out.LogAppendTime = res.LogAppendTime
		j.out.LogStartOffset = res.LogStartOffset
	}
	switch len(jobs) {
	case 0:
	case 1:
		run(jobs[0])
	default:
		var wg sync.WaitGroup
		for _, j := range jobs[1:] {
			wg.Go(func() { run(j) })
		}
		run(jobs[0])
		wg.Wait()
	}
	if req.Acks == 0 {
		return nil, nil
	}
	return resp, nil
}
