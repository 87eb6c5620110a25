package app

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// pollLoop is the one shape of the instance's three poll loops: the group
// consumer's (active tasks, app.go), the standby consumer's (standby.go)
// and the global consumer's (global.go). Each iteration: optionally
// prepare under the lock (and wait for wake instead of polling when there
// is nothing to read), poll for at most every, log the fetch errors (or
// end on a fatal one), step what was fetched under the lock, then run
// after without it. It ends when ctx ends, stop closes, the client closes,
// a fetch error is fatal or a step fails.
type pollLoop struct {
	// kind qualifies log lines: "" for the group consumer, "standby ",
	// "global ".
	kind  string
	cl    *kgo.Client
	every time.Duration
	log   *slog.Logger
	// mu is held while prepareLocked and stepLocked run.
	mu *sync.Mutex
	// stop, if set, ends the loop when it closes, as ctx ending does.
	stop <-chan struct{}
	// prepareLocked, if set, runs before each poll; when it reports idle,
	// the loop waits for wake (or its end) instead of polling.
	prepareLocked func() (idle bool)
	wake          <-chan struct{}
	// fatal, if set, returns the error that ends the loop for a fetch
	// error, or nil for one to log and go on.
	fatal func(error) error
	// stepLocked is handed each poll's fetches and how long the poll
	// waited for them; an error ends the loop.
	stepLocked func(fs kgo.Fetches, waited time.Duration) error
	// after, if set, runs after each step, without mu.
	after func()
	// early, if set, is called before each poll with the func that ends
	// the poll's wait: it may arrange for that to be called before every
	// has passed (the poll then returns what it has, possibly nothing),
	// and returns the func that withdraws the arrangement, called once the
	// poll returned.
	early func(end context.CancelFunc) (withdraw func())
}

// fetchErrors logs the fetch errors of fs, but for the end of a poll's
// context; the first that fatal (if set) turns into an error is returned
// instead. kind qualifies the log lines.
func fetchErrors(fs kgo.Fetches, kind string, log *slog.Logger, fatal func(error) error) error {
	for _, fe := range fs.Errors() {
		if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
			continue
		}
		if fatal != nil {
			if err := fatal(fe.Err); err != nil {
				return err
			}
		}
		log.Warn(kind+"fetch error", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
	}
	return nil
}

// run runs the loop; it returns nil when ctx ends, stop closes or the
// client closes, and the error of a fatal fetch error or failed step.
func (p *pollLoop) run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.stop:
			return nil
		default:
		}
		if p.prepareLocked != nil {
			p.mu.Lock()
			idle := p.prepareLocked()
			p.mu.Unlock()
			if idle {
				select {
				case <-ctx.Done():
					return nil
				case <-p.stop:
					return nil
				case <-p.wake:
				}
				continue
			}
		}
		pctx, cancel := context.WithTimeout(ctx, p.every)
		withdraw := func() {}
		if p.early != nil {
			withdraw = p.early(cancel)
		}
		polled := time.Now()
		fs := p.cl.PollFetches(pctx)
		waited := time.Since(polled)
		withdraw()
		cancel()
		if fs.IsClientClosed() || ctx.Err() != nil {
			return nil
		}
		if err := fetchErrors(fs, p.kind, p.log, p.fatal); err != nil {
			return err
		}
		p.mu.Lock()
		err := p.stepLocked(fs, waited)
		p.mu.Unlock()
		if err != nil {
			return err
		}
		if p.after != nil {
			p.after()
		}
	}
}
