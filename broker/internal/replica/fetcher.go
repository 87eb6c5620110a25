package replica

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/base"
)

// fetchVersion is the Fetch version followers send: topic names, the
// replica id in ReplicaID, LastFetchedEpoch and DivergingEpoch (v12).
const fetchVersion = 12

// fetcher is the follower side towards one leader broker: one goroutine
// fetching, in one request, every partition this broker follows there. It
// appends what it gets, truncates a divergent tail, waits for the fsync of
// what it appended (so that its next fetch offset, which the leader counts
// towards the high watermark, is durable), and fetches again.
type fetcher struct {
	m   *Manager
	src int32

	mu    sync.Mutex
	parts map[key]*partition
	wake  chan struct{} // cap 1

	// synced holds the partitions whose appends the last round made
	// durable: their page cache is dropped once the next fetch is sent.
	// Only the run goroutine uses it.
	synced []*partition

	stop chan struct{}
	done chan struct{}
}

func newFetcher(m *Manager, src int32) *fetcher {
	f := &fetcher{m: m, src: src, parts: map[key]*partition{}, wake: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	go f.run()
	return f
}

func (f *fetcher) add(ps *partition) {
	f.mu.Lock()
	f.parts[ps.key] = ps
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fetcher) remove(k key) {
	f.mu.Lock()
	delete(f.parts, k)
	f.mu.Unlock()
}

func (f *fetcher) close() {
	close(f.stop)
	<-f.done
}

// sleep waits d or until the fetcher stops (false).
func (f *fetcher) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-f.stop:
		return false
	case <-t.C:
		return true
	}
}

// fetchPart is one partition of a fetch in flight: the role it was sent
// for.
type fetchPart struct {
	ps        *partition
	epoch     int32
	offset    base.Offset
	throttled bool // a reassignment's catch-up (throttle.go)
}

// partitionMaxBytes is the most a follower fetches of one partition at a
// time. NB: 4 MiB (a follower behind by several 1 MiB producer batches
// catching up in one append and one fsync) cost the brokers as much CPU
// per record in the replication benchmark, the follower's socket reads
// twice as much (bench/README.md); 8 MiB was no better either.
const partitionMaxBytes = 1 << 20

func (f *fetcher) run() {
	defer close(f.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-f.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	var c *conn
	defer func() {
		if c != nil {
			c.close()
		}
	}()
	backoff := 50 * time.Millisecond
	for {
		select {
		case <-f.stop:
			return
		default:
		}
		// NB: partition.mu is taken after fetcher.mu is released: the
		// manager holds a partition's mu while it adds or removes it here.
		f.mu.Lock()
		all := make([]*partition, 0, len(f.parts))
		for _, ps := range f.parts {
			all = append(all, ps)
		}
		f.mu.Unlock()
		var parts []fetchPart
		var unsynced []*partition
		for _, ps := range all {
			ps.mu.Lock()
			if ps.role == roleFollower && ps.leaderID == f.src {
				end := ps.log.LogEndOffset()
				if ps.log.DurableEnd() < end {
					// NB: an earlier round's fsync did not finish in
					// time (handle): the fetch offset is what the
					// leader counts, so none until it has.
					unsynced = append(unsynced, ps)
				} else {
					parts = append(parts, fetchPart{ps: ps, epoch: ps.epoch, offset: end, throttled: ps.throttled})
				}
			}
			ps.mu.Unlock()
		}
		if len(unsynced) > 0 && f.awaitDurable(ctx, unsynced) > 0 {
			continue // fetch them too
		}
		if len(parts) == 0 && len(unsynced) > 0 {
			if !f.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		if len(parts) == 0 {
			select {
			case <-f.stop:
				return
			case <-f.wake:
			}
			continue
		}
		parts, throttledMax, wait := f.m.throttleParts(parts)
		if len(parts) == 0 {
			// NB: look again at least every 250ms: the rate may be
			// raised or lifted meanwhile.
			if !f.sleep(min(wait, 250*time.Millisecond)) {
				return
			}
			continue
		}
		if c == nil {
			addr, ok := f.m.addr(f.src)
			if !ok {
				if !f.sleep(backoff) {
					return
				}
				continue
			}
			dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
			var err error
			c, err = dialConn(dctx, f.m.opts.Dial, addr)
			dcancel()
			if err != nil {
				f.m.log.Debug("replica: dialing leader", "leader", f.src, "addr", addr, "err", err)
				c = nil
				if !f.sleep(backoff) {
					return
				}
				backoff = min(2*backoff, time.Second)
				continue
			}
		}
		req := f.request(parts, throttledMax)
		c.respHint = respBound(req)
		rctx, rcancel := context.WithTimeout(ctx, f.m.opts.FetchMaxWait+10*time.Second)
		// NB: the page-cache drop of the last round's appends waits until
		// this fetch, which reports their fsync, is on its way: it is off
		// the path from the follower's fsync to the leader's high
		// watermark.
		out, err := c.requestThen(rctx, req, f.dropCaches)
		rcancel()
		f.dropCaches()
		if err != nil {
			f.m.log.Debug("replica: fetch from leader failed", "leader", f.src, "err", err)
			c.close()
			c = nil
			if !f.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		resp := out.(*kmsg.FetchResponse)
		f.m.throttleTake(parts, resp)
		if resp.ErrorCode != 0 {
			f.m.log.Debug("replica: fetch refused", "leader", f.src, "err", kerr.ErrorForCode(resp.ErrorCode))
			if !f.sleep(100 * time.Millisecond) {
				return
			}
			continue
		}
		if !f.handle(ctx, parts, resp) {
			// Every partition was refused (the leader's view differs from
			// ours for now): do not spin.
			if !f.sleep(100 * time.Millisecond) {
				return
			}
		}
	}
}

// request builds the fetch of parts; throttled ones fetch at most
// throttledMax bytes each.
func (f *fetcher) request(parts []fetchPart, throttledMax int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = fetchVersion
	req.ReplicaID = f.m.opts.Self
	req.MaxWaitMillis = int32(f.m.opts.FetchMaxWait / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = 16 << 20
	idx := map[string]int{}
	for _, fp := range parts {
		i, ok := idx[fp.ps.name]
		if !ok {
			t := kmsg.NewFetchRequestTopic()
			t.Topic, t.TopicID = fp.ps.name, fp.ps.key.id
			req.Topics = append(req.Topics, t)
			i = len(req.Topics) - 1
			idx[fp.ps.name] = i
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = fp.ps.key.p
		rp.CurrentLeaderEpoch = fp.epoch
		rp.FetchOffset = int64(fp.offset)
		rp.LastFetchedEpoch = int32(fp.ps.log.LatestEpoch())
		rp.LogStartOffset = int64(fp.ps.log.LogStartOffset())
		rp.PartitionMaxBytes = partitionMaxBytes
		if fp.throttled {
			rp.PartitionMaxBytes = throttledMax
		}
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	return req
}

// respBound is about the largest response req can get (a partition
// returns at least one whole batch, which may exceed its share): what the
// conn's response buffer grows to at once.
func respBound(req *kmsg.FetchRequest) int {
	n := 1 << 10
	for i := range req.Topics {
		n += 64 + len(req.Topics[i].Topic)
		for j := range req.Topics[i].Partitions {
			n += 128 + int(req.Topics[i].Partitions[j].PartitionMaxBytes)
		}
	}
	return min(n, int(req.MaxBytes)+64<<10)
}

// handle applies a fetch response. It reports whether any partition was
// served.
func (f *fetcher) handle(ctx context.Context, parts []fetchPart, resp *kmsg.FetchResponse) bool {
	byKey := map[string]map[int32]*kmsg.FetchResponseTopicPartition{}
	for i := range resp.Topics {
		t := &resp.Topics[i]
		m := map[int32]*kmsg.FetchResponseTopicPartition{}
		for j := range t.Partitions {
			m[t.Partitions[j].Partition] = &t.Partitions[j]
		}
		byKey[t.Topic] = m
	}
	served := false
	var wrote []*partition
	for _, fp := range parts {
		rp := byKey[fp.ps.name][fp.ps.key.p]
		if rp == nil {
			continue
		}
		ps := fp.ps
		ps.mu.Lock()
		if ps.role != roleFollower || ps.epoch != fp.epoch || ps.leaderID != f.src {
			ps.mu.Unlock()
			continue // the role changed while the fetch was out
		}
		l := ps.log
		switch {
		case rp.ErrorCode == kerr.OffsetOutOfRange.Code:
			served = true
			target := base.Offset(rp.HighWatermark)
			if fp.offset < base.Offset(rp.LogStartOffset) {
				target = base.Offset(rp.LogStartOffset)
			}
			f.m.log.Info("replica: fetch offset out of range at the leader; truncating", "topic", ps.name, "partition", ps.key.p,
				"offset", fp.offset, "leader_log_start", rp.LogStartOffset, "to", target)
			if _, err := l.TruncateTo(target); err != nil {
				f.m.log.Warn("replica: truncation failed", "topic", ps.name, "partition", ps.key.p, "err", err)
			}
		case rp.ErrorCode != 0:
			f.m.log.Debug("replica: partition fetch refused", "topic", ps.name, "partition", ps.key.p, "err", kerr.ErrorForCode(rp.ErrorCode))
		case rp.DivergingEpoch.EndOffset >= 0:
			served = true
			target := base.Offset(rp.DivergingEpoch.EndOffset)
			if rp.DivergingEpoch.Epoch >= 0 {
				if e, end, ok := l.EndOffsetForEpoch(base.Epoch(rp.DivergingEpoch.Epoch)); ok && e == base.Epoch(rp.DivergingEpoch.Epoch) {
					target = min(target, end)
				} else if ok {
					// We do not have the leader's epoch: keep what is
					// below the end of our largest epoch before it.
					target = min(target, end)
				} else {
					target = min(target, l.LogStartOffset())
				}
			}
			newEnd, err := l.TruncateTo(target)
			if err != nil {
				f.m.log.Warn("replica: truncation failed", "topic", ps.name, "partition", ps.key.p, "err", err)
			} else {
				f.m.log.Info("replica: truncated a divergent tail", "topic", ps.name, "partition", ps.key.p,
					"from", fp.offset, "to", newEnd, "leader_epoch", rp.DivergingEpoch.Epoch, "leader_epoch_end", rp.DivergingEpoch.EndOffset)
			}
		default:
			served = true
			if len(rp.RecordBatches) > 0 {
				if err := l.AppendReplica(rp.RecordBatches); err != nil {
					f.m.log.Warn("replica: appending the leader's batches", "topic", ps.name, "partition", ps.key.p, "offset", fp.offset, "err", err)
				} else {
					wrote = append(wrote, ps)
				}
			}
			l.SetFollowerHighWatermark(base.Offset(rp.HighWatermark))
			// DeleteRecords on the leader moves the log start of every
			// replica (never past what this one holds).
			if start := min(base.Offset(rp.LogStartOffset), l.LogEndOffset()); start > l.LogStartOffset() {
				if _, err := l.DeleteRecordsBefore(start); err != nil {
					f.m.log.Warn("replica: moving the log start to the leader's", "topic", ps.name, "partition", ps.key.p, "to", start, "err", err)
				}
			}
		}
		ps.mu.Unlock()
	}
	// The next fetch offset is what the leader counts: make it durable.
	f.awaitDurable(ctx, wrote)
	return served
}

// awaitDurable waits up to DurableWait for each partition's appends to be
// fsynced, queues those that are for the page-cache drop, and returns how
// many are.
func (f *fetcher) awaitDurable(ctx context.Context, parts []*partition) int {
	n := 0
	for _, ps := range parts {
		wctx, cancel := context.WithTimeout(ctx, f.m.opts.DurableWait)
		err := ps.log.WaitDurable(wctx, ps.log.LogEndOffset())
		cancel()
		if err != nil {
			f.m.log.Warn("replica: fsync of replicated batches", "topic", ps.name, "partition", ps.key.p, "err", err)
			continue
		}
		f.synced = append(f.synced, ps)
		n++
	}
	return n
}

// dropCaches drops from the page cache what the last round appended and
// fsynced (Log.DropSyncedCache: nobody reads a follower's log).
func (f *fetcher) dropCaches() {
	for i, ps := range f.synced {
		ps.log.DropSyncedCache()
		f.synced[i] = nil
	}
	f.synced = f.synced[:0]
}
