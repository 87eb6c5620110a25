package protocol

// Produce, versions 3-12 (RecordBatch v2 only: v0-2 carry the old message
// formats, which Weir does not store). v11 and v12 read and answer as v10;
// v12 tells a transactional produce from a transaction.version 2 client,
// whose partitions are added to its transaction here (txn_produce.go).
// v13 (topic ids) is not served.
//
// NB: ApiVersions advertises 0-12 all the same, and v0-2 requests are
// answered UNSUPPORTED_VERSION on every partition (with acks=0, which has no
// answer, the connection is closed instead). librdkafka 2.x compresses with
// gzip, snappy and lz4 only when the broker's Produce range includes v0, and
// otherwise sends its batches uncompressed without a word; clients pick the
// highest version both sides speak, so none sends v0-2 to us in practice.
//
// Every partition of a request is appended concurrently, each to its own
// log; nothing serializes partitions. The batches are handed to the log as
// sent: the log validates them (CORRUPT_MESSAGE, MESSAGE_TOO_LARGE,
// INVALID_RECORD, INVALID_TIMESTAMP), runs the idempotent-producer checks
// (OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH, a duplicate answered
// with its original offsets). acks=-1 (all) is answered once the data is
// durable under the broker's fsync policy; the wait does not hold up the
// connection's next request (see Deferred), so pipelined produce requests
// share fsyncs while their answers still leave in order. acks=1 is answered
// once the data is written to the log, before its fsync, as Kafka's leader
// acknowledges without waiting for its followers. acks=0 gets no response at
// all. Unknown topics are auto-created when the broker allows it.
//
// A transactional produce (txn_produce.go) is checked with the transaction
// coordinator first: every partition must be in the producer's open
// transaction (KIP-890 part 1's verification), or, from v12 on, is added to
// it (KIP-890 part 2).
//
// Deviations: TimeoutMillis
// (at least 1s) bounds only the wait for durability, which fails with
// REQUEST_TIMED_OUT if an fsync never completes; ErrorRecords is never
// filled.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/base"
	"github.com/weir-dev/weir/broker/internal/topics"
)

func init() { register(kmsg.Produce, 0, 12, handleProduce) }

// minProduceVersion is the oldest Produce version served; older ones are
// advertised (see above) and refused.
const minProduceVersion = 3

// produceWorkers bounds the goroutines one produce request uses to append
// to its partitions concurrently.
const produceWorkers = 64

func handleProduce(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)

	var failAll int16
	var txnCodes map[txnPart]int16 // partitions not in the transaction
	var open *inTxn                // partitions appended only into the open transaction
	switch {
	case r.Version < minProduceVersion:
		if req.Acks == 0 {
			return nil, fmt.Errorf("protocol: produce v%d with acks=0 from %s: versions below %d are not supported", r.Version, r.Remote, minProduceVersion)
		}
		failAll = kerr.UnsupportedVersion.Code
	case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
		failAll = kerr.InvalidRequiredAcks.Code
	case req.TransactionID != nil:
		failAll, txnCodes, open = verifyTxnProduce(ctx, s, req)
	case hasTransactionalBatch(req):
		failAll = kerr.InvalidRecord.Code // no transaction to end them
	}

	type job struct {
		p   *topics.Partition
		out *kmsg.ProduceResponseTopicPartition
		in  []byte
		end topics.Offset // offset after the appended batches; -1 if the append failed
		// epoch is the leader epoch the batches were appended with.
		epoch base.Epoch
		// inTxn: append only into the producer's open transaction.
		inTxn bool
	}
	n := 0
	for i := range req.Topics {
		n += len(req.Topics[i].Partitions)
	}
	jobs := make([]job, 0, n) // one allocation, however many partitions
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
			case txnCodes[txnPart{rt.Topic, rp.Partition}] != 0:
				op.ErrorCode = txnCodes[txnPart{rt.Topic, rp.Partition}]
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
				jobs = append(jobs, job{p: p, out: op, in: rp.Records, end: -1,
					inTxn: open != nil && open.parts[txnPart{rt.Topic, rp.Partition}]})
			}
		}
	}

	run := func(j *job) {
		j.epoch = s.appendEpoch(j.p)
		var res topics.AppendResult
		var err error
		var tl topics.TxnLog
		if j.inTxn {
			tl, _ = j.p.Log().(topics.TxnLog)
		}
		if tl != nil {
			res, err = tl.AppendNoWaitInTxn(j.in, j.epoch, open.pid, open.epoch)
		} else {
			res, err = j.p.Log().AppendNoWait(j.in, j.epoch)
		}
		if err != nil {
			setProduceError(j.out, j.p, err, r.Version)
			return
		}
		j.out.BaseOffset = int64(res.BaseOffset)
		j.out.LogAppendTime = res.LogAppendTime
		j.out.LogStartOffset = int64(res.LogStartOffset)
		j.end = res.LastOffset + 1
		s.metrics.produced(len(j.in), int64(res.LastOffset-res.BaseOffset+1))
	}
	runJobs(len(jobs), produceWorkers, goSpawn, func(i int) { run(&jobs[i]) })
	if req.Acks == -1 && len(jobs) > 0 {
		// The appends are in the logs, in request order; acknowledge once
		// they are durable. The connection goes on with its next request
		// meanwhile, so pipelined produces share fsyncs.
		timeout := time.Duration(max(req.TimeoutMillis, 1000)) * time.Millisecond
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		return &Deferred{Response: resp, Wait: func() {
			defer cancel()
			for i := range jobs {
				j := &jobs[i]
				if j.end < 0 {
					continue
				}
				if err := s.waitAcked(wctx, j.p, j.end, j.epoch); err != nil {
					setProduceError(j.out, j.p, err, r.Version)
				}
			}
		}}, nil
	}
	if req.Acks == 0 {
		return nil, nil
	}
	return resp, nil
}

// runJobs calls run(i) for every i in [0, n), on the calling goroutine and
// on up to workers-1 others started by spawn, and returns once every call
// has returned. The calls run concurrently as far as the started
// goroutines get a P.
//
// NB: it waits for the jobs, not for the goroutines: one that starts
// after the last job was taken finds nothing to do and exits. Waiting
// for it to have run would put its wait for a P on every request (0.8 ms
// a request on average in the 100 B produce benchmark on 2 cores), while
// the caller has long done the work itself.
func runJobs(n, workers int, spawn func(func()), run func(i int)) {
	switch n {
	case 0:
		return
	case 1:
		run(0)
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	wg.Add(n)
	work := func() {
		for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
			run(int(i))
			wg.Done()
		}
	}
	// One goroutine per job, up to workers: a request naming a million
	// partitions must not start a million goroutines.
	for range min(n, workers) - 1 {
		spawn(work)
	}
	work()
	wg.Wait()
}

// goSpawn starts f on a goroutine of its own.
func goSpawn(f func()) { go f() }

// setProduceError records a failed append (or durability wait) in a
// partition's answer.
func setProduceError(out *kmsg.ProduceResponseTopicPartition, p *topics.Partition, err error, version int16) {
	out.ErrorCode = errorCode(err)
	if p.Topic().Deleted() {
		out.ErrorCode = kerr.UnknownTopicOrPartition.Code
	}
	out.BaseOffset = -1
	if version >= 8 {
		out.ErrorMessage = errMessage(err)
	}
}
