package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weir-dev/weir/broker"
	"github.com/weir-dev/weir/internal/dirlock"
	"github.com/weir-dev/weir/runtime/internal/app"
	"github.com/weir-dev/weir/runtime/internal/client"
	"github.com/weir-dev/weir/streams"
)

// ErrClosed is returned by Run on an application that was closed, or that
// already ran.
var ErrClosed = app.ErrClosed

// IsTopicSetup reports whether err says the application's topics are not
// set up right: an input topic is missing, topics that must be
// co-partitioned are not, or an internal topic has the wrong partition
// count. The error text says what to do.
func IsTopicSetup(err error) bool { return client.IsTopicSetup(err) }

// Application is one instance of a stream-processing application. Start as
// many instances (in one process or many) as you like with the same
// application id: they share the work.
type Application struct {
	a        *app.App
	broker   *broker.Broker
	addrs    []string
	stateDir string
	// lock is the state directory's lock, taken before anything there
	// (the embedded broker's data included) is read or written, released
	// last in Close.
	lock *dirlock.Lock

	closeOnce sync.Once
	closeErr  error
}

// New returns an application instance running topology. With no Brokers
// option it starts an embedded Weir broker (data under StateDir/broker)
// right away; nothing else connects until Run. It reports every problem
// with the options at once, before it starts or touches anything.
//
// A state directory serves one instance at a time: New locks it first, and
// fails at once, naming the directory and the pid holding it, when another
// instance (in this process or another) has it (IsStateDirLocked). The
// embedded broker locks its own data directory under it too.
func New(topology *streams.Topology, opts ...Option) (*Application, error) {
	var c config
	for _, o := range opts {
		o.apply(&c)
	}
	errs := c.errs
	if c.security && len(c.app.Brokers) == 0 {
		errs = append(errs, errors.New("runtime: TLS and SASL need Brokers: the embedded broker listens in plaintext on loopback"))
	}
	if c.app.StateDir == "" {
		dir, err := defaultStateDir(c.app.ApplicationID)
		if err != nil {
			errs = append(errs, err)
		}
		c.app.StateDir = dir
	}
	// NB: the embedded broker's address is known only once it runs; a
	// placeholder lets the options be checked before it starts.
	check := c.app
	if len(check.Brokers) == 0 {
		check.Brokers = []string{"embedded"}
	}
	check.EnsureDefaults()
	if err := check.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	out := &Application{stateDir: c.app.StateDir}
	lock, err := dirlock.Acquire(c.app.StateDir)
	if err != nil {
		return nil, fmt.Errorf("runtime: state directory (one application instance per directory): %w", err)
	}
	if err := lock.PIDError(); err != nil && c.app.Logger != nil {
		c.app.Logger.Warn("runtime: state directory locked, but the lock file does not name this process", "dir", c.app.StateDir, "err", err)
	}
	out.lock = lock
	a, err := out.start(topology, c)
	if err != nil {
		_ = out.lock.Release()
		return nil, err
	}
	out.a = a
	return out, nil
}

// IsStateDirLocked reports whether err (from New) says that another
// instance holds the state directory, or that another broker holds the
// embedded broker's data directory under it.
func IsStateDirLocked(err error) bool { return dirlock.IsLocked(err) }

// start is New once the options are checked and the state directory is
// locked: it starts the embedded broker if there is one and builds the app.
func (out *Application) start(topology *streams.Topology, c config) (*app.App, error) {
	if len(c.app.Brokers) == 0 {
		listen := c.brokerListen
		if listen == "" {
			listen = "127.0.0.1:0"
		}
		// NB: an embedded broker serves this one instance, so its group
		// has nobody to wait for before the first rebalance.
		bopts := broker.Options{Listen: listen, DataDir: filepath.Join(c.app.StateDir, "broker"), Logger: c.app.Logger,
			GroupInitialRebalanceDelay: -1}
		b, err := broker.Open(bopts)
		if err != nil {
			return nil, fmt.Errorf("runtime: embedded broker: %w", err)
		}
		out.broker = b
		c.app.Brokers = []string{b.Addr()}
	}
	out.addrs = c.app.Brokers
	a, err := app.New(topology, c.app)
	if err != nil {
		if out.broker != nil {
			_ = out.broker.Close()
		}
		return nil, err
	}
	return a, nil
}

// Brokers returns the seed brokers the application uses: those given, or
// the embedded broker's address.
func (a *Application) Brokers() []string { return append([]string(nil), a.addrs...) }

// StateDir returns the directory holding the instance's stores (and the
// embedded broker's data, under StateDir/broker): the StateDir option's, or
// its default.
func (a *Application) StateDir() string { return a.stateDir }

// DefaultStateDir is the state directory of an application that gives no
// StateDir option: os.TempDir()/weir-streams/<application id>. It is ""
// when the id cannot name a directory there (it is empty, ".", "..", or
// holds a path separator); New then asks for a StateDir.
func DefaultStateDir(applicationID string) string {
	dir, _ := defaultStateDir(applicationID)
	return dir
}

func defaultStateDir(id string) (string, error) {
	if id == "" {
		// Validate reports the missing id.
		return "", nil
	}
	if id == "." || id == ".." || strings.ContainsAny(id, `/\`) || !filepath.IsLocal(id) {
		return "", fmt.Errorf("runtime: application id %q cannot name a directory under %s: give a StateDir",
			id, filepath.Join(os.TempDir(), "weir-streams"))
	}
	return filepath.Join(os.TempDir(), "weir-streams", id), nil
}

// Run runs the instance until ctx ends, Close is called or a fatal error
// happens, and returns nil on a clean stop. Before processing it creates
// missing internal topics (and refuses to start, with an error saying what
// to do, when topics are not set up right; see IsTopicSetup). On the way
// out it commits and leaves the group.
func (a *Application) Run(ctx context.Context) error { return a.a.Run(ctx) }

// Close stops the instance gracefully: it commits (flush stores and their
// changelogs, flush the producer, commit offsets), leaves the group so that
// its tasks move at once, stops the embedded broker if it started one, and
// releases the state directory. It waits for Run to return. Close is
// idempotent.
func (a *Application) Close() error {
	a.closeOnce.Do(func() {
		a.closeErr = a.a.Close()
		if a.broker != nil {
			a.closeErr = errors.Join(a.closeErr, a.broker.Close())
		}
		a.closeErr = errors.Join(a.closeErr, a.lock.Release())
	})
	return a.closeErr
}

// MetricsAddr returns the address the MetricsAddr option's endpoint listens
// on, with the port chosen when the option asked for port 0, or "" without
// the option. It is known from New on; Run serves it.
func (a *Application) MetricsAddr() string { return a.a.MetricsAddr() }

// Metrics returns the instance's Prometheus metrics, to serve on a handler
// of your own or to read in tests (MetricsAddr serves the same).
func (a *Application) Metrics() prometheus.Gatherer { return a.a.Gatherer() }

// Tasks returns the tasks this instance runs now, sorted.
func (a *Application) Tasks() []streams.TaskID { return a.a.Tasks() }
