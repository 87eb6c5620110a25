package app

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/weir-dev/weir/runtime/internal/assign"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
)

// Interactive queries: the instance implements state.Querier over the
// stores of its active tasks (read under App.mu, so a read never runs
// beside the task's processing and never sees a store being restored,
// closed or handed over), reads standby copies under standbys.mu, and
// says where a key lives from the host map of the last assignment
// (assign.HostMap: each instance's query address with its active and
// standby tasks, sent by the group leader to every member).

var _ state.Querier = (*App)(nil)

// queryLockWait bounds how long a read waits for the instance's lock when
// its context has no earlier deadline.
const queryLockWait = 2 * time.Second

// lockCtx takes mu, waiting at most until ctx ends or queryLockWait.
func lockCtx(ctx context.Context, mu interface{ TryLock() bool }) bool {
	deadline := time.Now().Add(queryLockWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	for !mu.TryLock() {
		if ctx.Err() != nil || time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond) // polling a lock held for a step, a commit or a rebalance
	}
	return true
}

// storeSub returns the sub-topology owning store name, and whether the
// store is global.
func (a *App) storeSub(name string) (streams.SubtopologyID, bool, error) {
	spec, ok := a.topo.Store(name)
	if !ok {
		return 0, false, fmt.Errorf("%w: %q (the topology's stores: %s)", state.ErrUnknownStore, name, storeNames(a.topo))
	}
	if spec.Global {
		return 0, true, nil
	}
	for _, st := range a.topo.Subtopologies() {
		if slices.Contains(st.Stores, name) {
			return st.ID, false, nil
		}
	}
	return 0, false, fmt.Errorf("%w: %q is used by no sub-topology", state.ErrUnknownStore, name)
}

func storeNames(t *streams.Topology) string {
	var names []string
	for _, s := range t.Stores() {
		names = append(names, s.Name)
	}
	sort.Strings(names)
	return fmt.Sprintf("%q", names)
}

// clientReady reports whether setup has finished: plan and balancer are
// set (and read-only from then on).
func (a *App) clientReady() bool {
	select {
	case <-a.clReady:
		return true
	default:
		return false
	}
}

// subPartitions returns the partition count of sub-topology st: that of
// its widest input topic, 0 before Run has planned the topics.
func (a *App) subPartitions(st streams.SubtopologyID) int {
	if !a.clientReady() {
		return 0
	}
	n := int32(0)
	for tp, s := range a.plan.Sources {
		if s == st {
			n = max(n, a.plan.Partitions[tp])
		}
	}
	return int(n)
}

// PartitionOf implements state.Querier: the partition Kafka's default
// partitioner (the runtime's, for keyed records) sends key to.
func (a *App) PartitionOf(name string, key []byte) (int32, error) {
	st, global, err := a.storeSub(name)
	if err != nil || global {
		return 0, err
	}
	n := a.subPartitions(st)
	if n == 0 {
		return 0, fmt.Errorf("%w: store %q: the application has not started", state.ErrNotReady, name)
	}
	return int32(streams.KeyPartition(key, n)), nil
}

// LocalPartitions implements state.Querier.
func (a *App) LocalPartitions(name string) ([]int32, error) {
	st, global, err := a.storeSub(name)
	if err != nil {
		return nil, err
	}
	if global {
		return []int32{0}, nil
	}
	if !lockCtx(context.Background(), &a.mu) {
		return nil, fmt.Errorf("%w: store %q: the instance stayed busy", state.ErrNotReady, name)
	}
	defer a.mu.Unlock()
	var out []int32
	for id := range a.tasks {
		if id.Subtopology == st {
			out = append(out, int32(id.Partition))
		}
	}
	slices.Sort(out)
	return out, nil
}

// ReadStore implements state.Querier.
func (a *App) ReadStore(ctx context.Context, name string, partition int32, fn func(state.Store) error) error {
	st, global, err := a.storeSub(name)
	if err != nil {
		return err
	}
	if global {
		s, err := a.globalStore(name)
		if err != nil {
			return fmt.Errorf("%w: %v", state.ErrNotReady, err)
		}
		return fn(s)
	}
	id := streams.TaskID{Subtopology: st, Partition: streams.Partition(partition)}
	if !lockCtx(ctx, &a.mu) {
		return fmt.Errorf("%w: store %q partition %d: the instance stayed busy (a rebalance, a commit or a long step)", state.ErrNotReady, name, partition)
	}
	defer a.mu.Unlock()
	if t, ok := a.tasks[id]; ok {
		for _, s := range t.stores {
			if s.Name() == name {
				return fn(s)
			}
		}
		return fmt.Errorf("runtime: task %s has no store %q open", id, name)
	}
	if a.assignedHere(id) {
		return fmt.Errorf("%w: store %q partition %d: task %s is restoring", state.ErrNotReady, name, partition, id)
	}
	return fmt.Errorf("%w: store %q partition %d (task %s)", state.ErrNotLocal, name, partition, id)
}

// assignedHere reports whether the last assignment made id active here.
func (a *App) assignedHere(id streams.TaskID) bool {
	if !a.clientReady() {
		return false
	}
	_, ok := slices.BinarySearchFunc(a.balancer.Active(), toAssign(id), assign.TaskID.Compare)
	return ok
}

func toAssign(id streams.TaskID) assign.TaskID {
	return assign.TaskID{Subtopology: int(id.Subtopology), Partition: int32(id.Partition)}
}

// ReadStandby calls fn with this instance's standby copy of partition of
// store name and how far it is behind its changelog (records of the
// changelog's high watermark, as last fetched, not yet in the copy; -1
// when not yet known). It fails with ErrNotLocal when no standby of the
// partition is kept here.
func (a *App) ReadStandby(ctx context.Context, name string, partition int32, fn func(s state.Store, lag int64) error) error {
	st, global, err := a.storeSub(name)
	if err != nil {
		return err
	}
	if global || a.standby == nil {
		return fmt.Errorf("%w: no standby of store %q partition %d here", state.ErrNotLocal, name, partition)
	}
	s := a.standby
	if !lockCtx(ctx, &s.mu) {
		return fmt.Errorf("%w: store %q partition %d: the standby stayed busy", state.ErrNotReady, name, partition)
	}
	defer s.mu.Unlock()
	t, ok := s.tasks[streams.TaskID{Subtopology: st, Partition: streams.Partition(partition)}]
	if !ok {
		return fmt.Errorf("%w: no standby of store %q partition %d here", state.ErrNotLocal, name, partition)
	}
	for _, ss := range t.stores {
		if ss.name != name {
			continue
		}
		if ss.s == nil {
			return fmt.Errorf("%w: store %q is in memory: its standby keeps a changelog copy, not a readable store", state.ErrNotLocal, name)
		}
		lag := int64(-1)
		if ss.hw >= 0 {
			lag = max(0, ss.hw-int64(ss.next))
		}
		return fn(ss.s, lag)
	}
	return fmt.Errorf("%w: the standby of task %s keeps no store %q", state.ErrNotLocal, t.label, name)
}

// Location is where the partition of a store holding a key lives.
type Location struct {
	Store     string
	Partition int32
	Task      streams.TaskID
	// Active is the query address of the instance running the task; ""
	// when none does (the task is moving) or its instance advertises no
	// address.
	Active string
	// Standbys are the query addresses of the instances keeping standby
	// copies, sorted.
	Standbys []string
	// Local is true when the task is active here.
	Local bool
}

// KeyLocation says where the partition of store name holding the encoded
// key lives, from the last assignment.
func (a *App) KeyLocation(name string, key []byte) (Location, error) {
	st, global, err := a.storeSub(name)
	if err != nil {
		return Location{}, err
	}
	if global {
		return Location{Store: name, Active: a.QueryAddr(), Local: true}, nil
	}
	p, err := a.PartitionOf(name, key)
	if err != nil {
		return Location{}, err
	}
	return a.partitionLocation(name, st, p), nil
}

func (a *App) partitionLocation(name string, st streams.SubtopologyID, p int32) Location {
	id := streams.TaskID{Subtopology: st, Partition: streams.Partition(p)}
	loc := Location{Store: name, Partition: p, Task: id, Local: a.assignedHere(id)}
	if a.clientReady() {
		if h := a.balancer.Hosts(); h != nil {
			loc.Active, loc.Standbys, _ = h.Locate(toAssign(id))
		}
	}
	if loc.Local && loc.Active == "" {
		loc.Active = a.QueryAddr()
	}
	return loc
}

// QueryAddr returns the query address this instance advertises, "" when
// the query endpoint is off.
func (a *App) QueryAddr() string { return a.queryAdvertised }

// advertisedAddr is the address to advertise for a listener bound at
// addr: an unspecified host becomes the machine's host name.
func advertisedAddr(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return net.JoinHostPort(host, port)
}
