package ownership

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Coordinator is a coordinator whose partitions a Follower moves.
type Coordinator interface {
	// Load starts serving partition p from what this broker's replica
	// holds below the high watermark. An error leaves p unserved; the
	// Follower retries it at a later look.
	Load(ctx context.Context, p int32) error
	// Unload stops serving the partitions: their state is forgotten
	// (the log keeps it) and their requests are answered NOT_COORDINATOR.
	Unload(ps []int32)
}

// Source returns the current observations of the internal topic's
// partitions (index = partition; nil while the topic does not exist).
type Source func() []Observation

// FollowerOptions configure a Follower.
type FollowerOptions struct {
	// Name names the coordinator in logs ("group", "txn").
	Name string
	// Source observes the partitions. Required.
	Source Source
	// Coordinator is moved. Required.
	Coordinator Coordinator
	// Changed returns a channel closed at the next change of the metadata
	// view; nil: only the tick drives the Follower.
	Changed func() <-chan struct{}
	// Interval is how often the Follower looks without a change (a new
	// leader's high watermark reaches its epoch's start without one).
	// Default 50ms.
	Interval time.Duration
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// Follower keeps a Coordinator serving exactly the partitions its Tracker
// says, from a goroutine of its own until Close.
type Follower struct {
	opts FollowerOptions

	// mu serialises looks: a Tracker is not safe for concurrent use, and
	// an older observation must never be applied after a newer one.
	mu sync.Mutex
	t  *Tracker // guarded by mu

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// StartFollower starts a Follower.
func StartFollower(opts FollowerOptions) *Follower {
	if opts.Interval <= 0 {
		opts.Interval = 50 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	f := &Follower{opts: opts, t: NewTracker()}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.wg.Add(1)
	go f.run()
	return f
}

func (f *Follower) run() {
	defer f.wg.Done()
	tick := time.NewTicker(f.opts.Interval)
	defer tick.Stop()
	for {
		var changed <-chan struct{}
		if f.opts.Changed != nil {
			changed = f.opts.Changed() // before looking: no change is missed
		}
		f.Sync(f.ctx)
		select {
		case <-f.ctx.Done():
			return
		case <-changed:
		case <-tick.C:
		}
	}
}

// Sync looks once: it observes the partitions, unloads and loads what the
// Tracker decides, and waits for those loads.
func (f *Follower) Sync(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncLocked(ctx)
}

// TrySync is Sync unless a look is under way, in which case it returns at
// once (a request path calls it so that a move the view already shows is
// applied before the request, without queueing behind a load).
func (f *Follower) TrySync(ctx context.Context) {
	if !f.mu.TryLock() {
		return
	}
	defer f.mu.Unlock()
	f.syncLocked(ctx)
}

func (f *Follower) syncLocked(ctx context.Context) {
	obs := f.opts.Source()
	unload, load := f.t.Step(obs)
	if len(unload) > 0 {
		f.opts.Coordinator.Unload(unload)
		f.opts.Logger.Info("ownership: unloaded partitions", "coordinator", f.opts.Name, "partitions", unload)
	}
	for _, p := range load {
		if err := f.opts.Coordinator.Load(ctx, p); err != nil {
			f.t.Failed(p)
			if ctx.Err() == nil {
				f.opts.Logger.Warn("ownership: load a partition", "coordinator", f.opts.Name, "partition", p, "epoch", obs[p].Epoch, "err", err)
			}
			continue
		}
		f.t.Loaded(p)
		f.opts.Logger.Info("ownership: loaded a partition", "coordinator", f.opts.Name, "partition", p, "epoch", obs[p].Epoch)
	}
}

// Serving returns the partitions served and the epochs they were loaded
// at, in increasing partition order.
func (f *Follower) Serving() (parts, epochs []int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t.Serving()
}

// Close stops the Follower and waits for it. The coordinator keeps serving
// what it serves.
func (f *Follower) Close() {
	f.cancel()
	f.wg.Wait()
}
