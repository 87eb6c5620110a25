package group

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// memLog is an in-memory Log.
type memLog struct {
	mu   sync.Mutex
	recs map[int32][]Record
	fail error
	// fsync, if set, is called by Append (not Write) once the records are
	// written, standing for the wait for their durability.
	fsync func()
	// stall makes Append wait for its context (a replica that never
	// catches up).
	stall bool
}

func (l *memLog) Append(ctx context.Context, p int32, recs []Record) error {
	if err := l.Write(ctx, p, recs); err != nil {
		return err
	}
	l.mu.Lock()
	fsync, stall := l.fsync, l.stall
	l.mu.Unlock()
	if fsync != nil {
		fsync()
	}
	if stall {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (l *memLog) Write(_ context.Context, p int32, recs []Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		return l.fail
	}
	if l.recs == nil {
		l.recs = map[int32][]Record{}
	}
	l.recs[p] = append(l.recs[p], recs...)
	return nil
}

func (l *memLog) Replay(_ context.Context, p int32, fn func(Record) error) error {
	l.mu.Lock()
	recs := append([]Record(nil), l.recs[p]...)
	l.mu.Unlock()
	for _, r := range recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func openTestDriver(t *testing.T, log *memLog) *Driver {
	t.Helper()
	d, err := OpenDriver(context.Background(), DriverOptions{
		Coordinator: Options{InitialRebalanceDelay: -1, MinSessionTimeout: 10 * time.Millisecond, OffsetsPartitions: 3},
		Log:         log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func joinReq(member string, session time.Duration) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = 3
	r.Group, r.MemberID, r.ProtocolType = "g", member, "consumer"
	r.SessionTimeoutMillis = int32(session.Milliseconds())
	r.RebalanceTimeoutMillis = 10000
	r.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte("m")}}
	return r
}

func syncReq(member string, gen int32, assign map[string]string) *kmsg.SyncGroupRequest {
	r := kmsg.NewPtrSyncGroupRequest()
	r.Version = 3
	r.Group, r.MemberID, r.Generation = "g", member, gen
	for m, a := range assign {
		r.GroupAssignment = append(r.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: m, MemberAssignment: []byte(a)})
	}
	return r
}

func mustHandle[T kmsg.Response](t *testing.T, d *Driver, req kmsg.Request) T {
	t.Helper()
	resp, err := d.Handle(context.Background(), "cli", "/127.0.0.1", req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.(T)
}

// A JoinGroup is answered only when the rebalance completes, without holding
// up other requests meanwhile.
func TestDriverJoinWaitsForRebalance(t *testing.T) {
	d := openTestDriver(t, &memLog{})
	a := mustHandle[*kmsg.JoinGroupResponse](t, d, joinReq("", time.Minute))
	if a.ErrorCode != 0 || a.Generation != 1 {
		t.Fatalf("first join: %+v", a)
	}
	mustHandle[*kmsg.SyncGroupResponse](t, d, syncReq(a.MemberID, 1, map[string]string{a.MemberID: "all"}))

	bDone := make(chan *kmsg.JoinGroupResponse, 1)
	go func() {
		resp, err := d.Handle(context.Background(), "cli", "/127.0.0.1", joinReq("", time.Minute))
		if err != nil {
			t.Error(err)
		}
		bDone <- resp.(*kmsg.JoinGroupResponse)
	}()
	// a learns of the rebalance from its heartbeat (polling, since b's join
	// runs concurrently), then rejoins; that completes b's join too.
	deadline := time.Now().Add(10 * time.Second)
	for {
		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Group, hb.MemberID, hb.Generation = "g", a.MemberID, 1
		if r := mustHandle[*kmsg.HeartbeatResponse](t, d, hb); r.ErrorCode == kerr.RebalanceInProgress.Code {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no rebalance started")
		}
		select {
		case r := <-bDone:
			t.Fatalf("b's join answered before the rebalance completed: %+v", r)
		default:
		}
	}
	a2 := mustHandle[*kmsg.JoinGroupResponse](t, d, joinReq(a.MemberID, time.Minute))
	b := <-bDone
	if diff := cmp.Diff([]int32{2, 2}, []int32{a2.Generation, b.Generation}); diff != "" {
		t.Fatalf("generations (-want +got):\n%s", diff)
	}
	if len(a2.Members) != 2 || b.LeaderID != a.MemberID {
		t.Fatalf("leader %q should see both members: %+v / %+v", a.MemberID, a2, b)
	}
}

// Commits are persisted before they are acknowledged and come back after a
// restart; a failed persist is reported as a retriable error.
func TestDriverPersistsOffsets(t *testing.T) {
	log := &memLog{}
	d := openTestDriver(t, log)
	commit := func(d *Driver, off int64) int16 {
		t.Helper()
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version, req.Group, req.Generation = 8, "simple", -1
		req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: off, LeaderEpoch: -1}}}}
		return mustHandle[*kmsg.OffsetCommitResponse](t, d, req).Topics[0].Partitions[0].ErrorCode
	}
	if code := commit(d, 42); code != 0 {
		t.Fatalf("commit: %v", kerr.ErrorForCode(code))
	}
	d.Close()

	d2 := openTestDriver(t, log)
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Version, fetch.Group = 5, "simple"
	fetch.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0}}}
	got := mustHandle[*kmsg.OffsetFetchResponse](t, d2, fetch).Topics[0].Partitions[0].Offset
	if got != 42 {
		t.Fatalf("offset after restart = %d, want 42", got)
	}

	log.mu.Lock()
	log.fail = errors.New("disk full")
	log.mu.Unlock()
	if code := commit(d2, 43); code != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("commit on a failing log: %v, want COORDINATOR_NOT_AVAILABLE", kerr.ErrorForCode(code))
	}
	// The failed commit was taken back.
	if got := mustHandle[*kmsg.OffsetFetchResponse](t, d2, fetch).Topics[0].Partitions[0].Offset; got != 42 {
		t.Fatalf("offset after a failed commit = %d, want 42", got)
	}
}

// A commit whose records are not stored within CommitTimeout is answered
// COORDINATOR_NOT_AVAILABLE and taken back; the partition's next request
// is not held up by it.
func TestDriverCommitTimesOut(t *testing.T) {
	log := &memLog{}
	d, err := OpenDriver(context.Background(), DriverOptions{
		Coordinator:   Options{InitialRebalanceDelay: -1, MinSessionTimeout: 10 * time.Millisecond, OffsetsPartitions: 3},
		Log:           log,
		CommitTimeout: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	commit := func(off int64) int16 {
		t.Helper()
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version, req.Group, req.Generation = 8, "simple", -1
		req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: off, LeaderEpoch: -1}}}}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := d.Handle(ctx, "cli", "/127.0.0.1", req)
		if err != nil {
			t.Fatalf("commit %d: no answer: %v", off, err)
		}
		return resp.(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
	}
	if code := commit(42); code != 0 {
		t.Fatalf("commit: %v", kerr.ErrorForCode(code))
	}
	log.mu.Lock()
	log.stall = true
	log.mu.Unlock()
	for _, off := range []int64{43, 44} {
		if code := commit(off); code != kerr.CoordinatorNotAvailable.Code {
			t.Fatalf("commit %d on a stalled log: %v, want COORDINATOR_NOT_AVAILABLE", off, kerr.ErrorForCode(code))
		}
	}
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Version, fetch.Group = 5, "simple"
	fetch.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0}}}
	if got := mustHandle[*kmsg.OffsetFetchResponse](t, d, fetch).Topics[0].Partitions[0].Offset; got != 42 {
		t.Fatalf("offset after timed-out commits = %d, want 42", got)
	}
}

// The leader's SyncGroup is answered once the group metadata record is
// written, without waiting for its fsync (a slow disk would otherwise hold
// up the generation's start, and with it every member's next heartbeat); a
// commit still waits for durability.
func TestDriverSyncDoesNotWaitForFsync(t *testing.T) {
	log := &memLog{}
	d := openTestDriver(t, log)
	fsyncing, release := make(chan struct{}, 1), make(chan struct{})
	log.mu.Lock()
	log.fsync = func() {
		fsyncing <- struct{}{}
		<-release
	}
	log.mu.Unlock()
	defer close(release) // on failure, free whatever waits in the fsync

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := mustHandle[*kmsg.JoinGroupResponse](t, d, joinReq("", time.Minute))
	syncDone := make(chan *kmsg.SyncGroupResponse, 1)
	go func() {
		resp, err := d.Handle(ctx, "cli", "/127.0.0.1", syncReq(a.MemberID, 1, map[string]string{a.MemberID: "all"}))
		if err != nil {
			t.Error(err)
			close(syncDone)
			return
		}
		syncDone <- resp.(*kmsg.SyncGroupResponse)
	}()
	select {
	case s := <-syncDone:
		if s == nil || s.ErrorCode != 0 || string(s.MemberAssignment) != "all" {
			t.Fatalf("sync: %+v", s)
		}
	case <-fsyncing:
		t.Fatal("the leader's sync waits for the fsync of the group's metadata")
	case <-ctx.Done():
		t.Fatal("no answer to the leader's sync")
	}
	log.mu.Lock()
	stored := 0
	for _, recs := range log.recs {
		stored += len(recs)
	}
	log.mu.Unlock()
	if stored != 1 {
		t.Fatalf("%d records written before the sync's answer, want the group's metadata", stored)
	}

	commitDone := make(chan *kmsg.OffsetCommitResponse, 1)
	go func() {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version, req.Group, req.Generation, req.MemberID = 8, "g", 1, a.MemberID
		req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 7, LeaderEpoch: -1}}}}
		resp, err := d.Handle(ctx, "cli", "/127.0.0.1", req)
		if err != nil {
			t.Error(err)
			close(commitDone)
			return
		}
		commitDone <- resp.(*kmsg.OffsetCommitResponse)
	}()
	select {
	case <-fsyncing:
	case <-ctx.Done():
		t.Fatal("the commit never waited for durability")
	}
	select {
	case r := <-commitDone:
		t.Fatalf("commit answered while its fsync is pending: %+v", r)
	default:
	}
	release <- struct{}{}
	if r := <-commitDone; r == nil || r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit after its fsync: %+v", r)
	}
}

// The driver's own goroutine fires session timeouts.
func TestDriverSessionTimeout(t *testing.T) {
	d := openTestDriver(t, &memLog{})
	a := mustHandle[*kmsg.JoinGroupResponse](t, d, joinReq("", 50*time.Millisecond))
	mustHandle[*kmsg.SyncGroupResponse](t, d, syncReq(a.MemberID, 1, nil))
	deadline := time.Now().Add(10 * time.Second)
	for {
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups = []string{"g"}
		st := mustHandle[*kmsg.DescribeGroupsResponse](t, d, req).Groups[0].State
		if st == "Empty" || st == "Dead" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("member never expired; state %s", st)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}

// A waiting request whose context ends returns; the driver carries on.
func TestDriverHandleCancel(t *testing.T) {
	d := openTestDriver(t, &memLog{})
	a := mustHandle[*kmsg.JoinGroupResponse](t, d, joinReq("", time.Minute))
	mustHandle[*kmsg.SyncGroupResponse](t, d, syncReq(a.MemberID, 1, nil))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := d.Handle(ctx, "cli", "h", joinReq("", time.Minute))
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		// The join may have been answered before the cancel was seen only if
		// the rebalance completed, which cannot happen while a is silent.
		t.Fatalf("Handle after cancel: %v", err)
	}
	d.Close()
	if _, err := d.Handle(context.Background(), "cli", "h", joinReq("", time.Minute)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Handle after Close: %v, want ErrClosed", err)
	}
}

// A driver opened Unowned serves no group until Own gives it the group's
// partition, which it then loads from its Log; Own without it unloads the
// group again, answering a JoinGroup still waiting NOT_COORDINATOR.
func TestDriverOwn(t *testing.T) {
	log := &memLog{}
	first := openTestDriver(t, log)
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group, commit.Generation = "g", -1
	commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 42, LeaderEpoch: -1}}}}
	if r := mustHandle[*kmsg.OffsetCommitResponse](t, first, commit); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit: %v", kerr.ErrorForCode(r.Topics[0].Partitions[0].ErrorCode))
	}
	first.Close()

	d, err := OpenDriver(context.Background(), DriverOptions{
		Coordinator: Options{InitialRebalanceDelay: -1, MinSessionTimeout: 10 * time.Millisecond, OffsetsPartitions: 3},
		Log:         log, Unowned: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	fetch := func() (int16, int64) {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version, req.Group = 7, "g"
		req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0}}}
		r := mustHandle[*kmsg.OffsetFetchResponse](t, d, req)
		return r.ErrorCode, r.Topics[0].Partitions[0].Offset
	}
	type got struct {
		Code   int16
		Offset int64
	}
	p := Partition("g", 3)
	check := func(when string, want got) {
		t.Helper()
		code, off := fetch()
		if diff := cmp.Diff(want, got{code, off}); diff != "" {
			t.Fatalf("%s: offset fetch (-want +got):\n%s", when, diff)
		}
	}
	check("unowned", got{kerr.NotCoordinator.Code, -1})
	if err := d.Own(context.Background(), []int32{(p + 1) % 3}); err != nil {
		t.Fatal(err)
	}
	check("owning another partition", got{kerr.NotCoordinator.Code, -1})
	if err := d.Own(context.Background(), []int32{p}); err != nil {
		t.Fatal(err)
	}
	check("loaded", got{0, 42})

	// Two members: the second one's join waits for the first to rejoin.
	a := mustHandle[*kmsg.JoinGroupResponse](t, d, joinReq("", time.Minute))
	mustHandle[*kmsg.SyncGroupResponse](t, d, syncReq(a.MemberID, a.Generation, map[string]string{a.MemberID: "all"}))
	waiting := make(chan *kmsg.JoinGroupResponse, 1)
	go func() {
		resp, err := d.Handle(context.Background(), "cli", "/127.0.0.1", joinReq("", time.Minute))
		if err != nil {
			t.Error(err)
		}
		jr, _ := resp.(*kmsg.JoinGroupResponse)
		waiting <- jr
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		d.mu.Lock()
		g := d.c.groups["g"]
		preparing := g != nil && g.state == StatePreparingRebalance
		d.mu.Unlock()
		if preparing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second join did not start a rebalance")
		}
		time.Sleep(time.Millisecond) // polling interval, not synchronization
	}
	if err := d.Own(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case jr := <-waiting:
		if jr == nil || jr.ErrorCode != kerr.NotCoordinator.Code {
			t.Fatalf("waiting join after unload: %+v", jr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting join was not answered at unload")
	}
	check("unloaded", got{kerr.NotCoordinator.Code, -1})
	d.Close()
	if err := d.Own(context.Background(), []int32{p}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Own after Close: %v, want ErrClosed", err)
	}
}
