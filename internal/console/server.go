package console

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

//go:embed assets
var assets embed.FS

// Options configure a Server.
type Options struct {
	// Brokers are the cluster's seed brokers. Required.
	Brokers []string
	// Apps are the base URLs (http://host:port) of stream applications'
	// metrics endpoints (the runtime's MetricsAddr option). Default none.
	Apps []string
	// ClientOpts are added to the franz-go client's options.
	ClientOpts []kgo.Opt
	// RequestTimeout bounds each API call's requests to the cluster and
	// to the applications. Default 10 s.
	RequestTimeout time.Duration
	// Logger receives errors of API calls. Default slog.Default().
	Logger *slog.Logger
}

// EnsureDefaults fills the zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Validate reports every problem with the options at once.
func (o *Options) Validate() error {
	var errs []error
	if len(o.Brokers) == 0 {
		errs = append(errs, errors.New("console: no brokers given"))
	}
	for _, u := range o.Apps {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			errs = append(errs, fmt.Errorf("console: application URL %q: want http://host:port (the runtime's MetricsAddr)", u))
		}
	}
	return errors.Join(errs...)
}

// Server serves the console's API and UI. Make one with New; Close it.
type Server struct {
	opts Options
	cl   *kgo.Client
	adm  *kadm.Client
	http *http.Client
	mux  *http.ServeMux
}

// New returns a server for the cluster at opts.Brokers. Nothing connects
// until a request needs the cluster.
func New(opts Options) (*Server, error) {
	opts.Brokers = append([]string(nil), opts.Brokers...)
	opts.Apps = append([]string(nil), opts.Apps...)
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	for i, u := range opts.Apps {
		opts.Apps[i] = strings.TrimRight(u, "/")
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(opts.Brokers...), kgo.ClientID("weir-console")}, opts.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	s := &Server{opts: opts, cl: cl, adm: kadm.NewClient(cl), http: &http.Client{Timeout: opts.RequestTimeout}}
	s.routes()
	return s, nil
}

// Close closes the server's cluster client.
func (s *Server) Close() { s.cl.Close() }

// Handler returns the handler serving the API under /api/ and the UI.
func (s *Server) Handler() http.Handler { return s.mux }

func (s *Server) routes() {
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree always has assets/
	}
	m := http.NewServeMux()
	m.Handle("GET /", noCache(http.FileServerFS(static)))
	m.HandleFunc("GET /api/cluster", s.api(s.cluster))
	m.HandleFunc("GET /api/topics", s.api(s.topics))
	m.HandleFunc("GET /api/topics/{topic}", s.api(s.topic))
	m.HandleFunc("GET /api/topics/{topic}/messages", s.api(s.messages))
	m.HandleFunc("GET /api/groups", s.api(s.groups))
	m.HandleFunc("GET /api/groups/{group}", s.api(s.group))
	m.HandleFunc("POST /api/groups/{group}/reset", s.api(s.reset))
	m.HandleFunc("GET /api/apps", s.api(s.apps))
	m.HandleFunc("GET /api/apps/{i}/lookup", s.api(s.lookup))
	m.HandleFunc("GET /api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("console: no API route %s %s", r.Method, r.URL.Path))
	})
	s.mux = m
}

// noCache makes the browser revalidate the assets, so that a newer weir
// binary's UI is seen at once.
func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// httpError is an error with the HTTP status it answers with.
type httpError struct {
	status int
	err    error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

// badRequest is a 400 answer naming what was wrong.
func badRequest(format string, args ...any) error {
	return &httpError{status: http.StatusBadRequest, err: fmt.Errorf("console: "+format, args...)}
}

// notFound is a 404 answer.
func notFound(format string, args ...any) error {
	return &httpError{status: http.StatusNotFound, err: fmt.Errorf("console: "+format, args...)}
}

// api adapts fn to a handler: its value is written as JSON, its error as
// {"error": ...} with the error's status (502 when the cluster failed).
func (s *Server) api(fn func(ctx context.Context, r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.RequestTimeout)
		defer cancel()
		v, err := fn(ctx, r)
		if err != nil {
			status := http.StatusBadGateway
			var he *httpError
			if errors.As(err, &he) {
				status = he.status
			}
			if status >= 500 {
				s.opts.Logger.Warn("console: API call failed", "path", r.URL.Path, "err", err)
			}
			writeError(w, status, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(v)
	}
}

// sameOrigin refuses a request that changes something unless it comes
// from the console's own page: its body must be JSON (a cross-site form
// or a "simple" cross-origin fetch cannot send that without a CORS
// preflight, which the console does not answer), and an Origin header,
// when the browser sends one, must name the console's own host.
func sameOrigin(r *http.Request) error {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return &httpError{status: http.StatusUnsupportedMediaType, err: fmt.Errorf("console: %s %s wants a JSON body (Content-Type: application/json), not %q", r.Method, r.URL.Path, ct)}
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return &httpError{status: http.StatusForbidden, err: fmt.Errorf("console: %s %s from origin %q refused: only the console's own pages (%s) may change offsets", r.Method, r.URL.Path, o, r.Host)}
		}
	}
	return nil
}

func writeError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}
