package protocol

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// serverMetrics are the counters a Server keeps whether or not anyone
// scrapes them. Everything on the request path is a pre-resolved
// client_golang counter (one atomic add); label lookups happen only for
// error codes, which are rare.
type serverMetrics struct {
	requestsVec *prometheus.CounterVec
	// requests[key] is requestsVec's child for that API key; nil for keys
	// without a handler.
	requests []prometheus.Counter
	errors   *prometheus.CounterVec // labels api, error

	producedBytes   prometheus.Counter
	producedRecords prometheus.Counter
	fetchedBytes    prometheus.Counter
	sentFileBytes   prometheus.Counter // of fetchedBytes, sent from files (sendfile.go)

	// The connection defences: closes and refusals by reason, waits for
	// request memory by budget, retried accept errors.
	closedVec    *prometheus.CounterVec // labels reason
	closedBy     map[closeReason]prometheus.Counter
	waitsVec     *prometheus.CounterVec // labels budget
	waitServer   prometheus.Counter
	waitConn     prometheus.Counter
	acceptErrors prometheus.Counter
}

// closeReason says why the server closed or refused a connection on its
// own account (the label of weir_connections_closed_total).
type closeReason string

const (
	// reasonIdle: nothing read or written for ConnectionsMaxIdle.
	reasonIdle closeReason = "idle"
	// reasonFrameTimeout: a frame did not arrive, or find room in the
	// request memory, within FrameReadTimeout of its first byte.
	reasonFrameTimeout closeReason = "frame_timeout"
	// reasonFrameTooLarge: a frame's announced size is over its cap.
	reasonFrameTooLarge closeReason = "frame_too_large"
	// reasonMaxConnections: accepted beyond MaxConnections.
	reasonMaxConnections closeReason = "max_connections"
	// reasonMaxConnectionsPerIP: accepted beyond MaxConnectionsPerIP.
	reasonMaxConnectionsPerIP closeReason = "max_connections_per_ip"
)

var closeReasons = []closeReason{reasonIdle, reasonFrameTimeout, reasonFrameTooLarge, reasonMaxConnections, reasonMaxConnectionsPerIP}

// Budgets a reader may wait for (the label of
// weir_request_memory_waits_total).
const (
	budgetServer = "server"
	budgetConn   = "connection"
)

func newServerMetrics() *serverMetrics {
	m := &serverMetrics{
		requestsVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_requests_total",
			Help: "Kafka protocol requests handled, by API.",
		}, []string{"api"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_response_errors_total",
			Help: "Error codes sent in responses (top-level and per topic or partition), by API and Kafka error name.",
		}, []string{"api", "error"}),
		producedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weir_produced_bytes_total",
			Help: "Record batch bytes appended by Produce requests.",
		}),
		producedRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weir_produced_records_total",
			Help: "Records appended by Produce requests (a retried duplicate counts again).",
		}),
		fetchedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weir_fetched_bytes_total",
			Help: "Record batch bytes returned by Fetch requests.",
		}),
		sentFileBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weir_fetched_sendfile_bytes_total",
			Help: "Of weir_fetched_bytes_total, the bytes sent from segment files by sendfile, never copied through the broker's memory.",
		}),
	}
	m.closedVec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weir_connections_closed_total",
		Help: "Connections the broker closed or refused on its own account, by reason: idle, frame_timeout (a frame not received within the frame read timeout), frame_too_large, max_connections, max_connections_per_ip.",
	}, []string{"reason"})
	m.closedBy = map[closeReason]prometheus.Counter{}
	for _, r := range closeReasons {
		m.closedBy[r] = m.closedVec.WithLabelValues(string(r))
	}
	m.waitsVec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weir_request_memory_waits_total",
		Help: "Times a connection had to wait for request memory before reading on, by budget: server (shared by all connections) or connection (its own share).",
	}, []string{"budget"})
	m.waitServer = m.waitsVec.WithLabelValues(budgetServer)
	m.waitConn = m.waitsVec.WithLabelValues(budgetConn)
	m.acceptErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "weir_accept_errors_total",
		Help: "Temporary accept errors (out of file descriptors, aborted handshakes), each retried after a pause.",
	})
	var maxKey int16
	for k := range handlers {
		maxKey = max(maxKey, k)
	}
	m.requests = make([]prometheus.Counter, int(maxKey)+1)
	for k := range handlers {
		m.requests[k] = m.requestsVec.WithLabelValues(kmsg.NameForKey(k))
	}
	return m
}

// closed counts one connection closed or refused for reason.
func (m *serverMetrics) closed(reason closeReason) { m.closedBy[reason].Inc() }

// waited counts one wait for request memory.
func (m *serverMetrics) waited(budget string) {
	if budget == budgetConn {
		m.waitConn.Inc()
	} else {
		m.waitServer.Inc()
	}
}

// request counts one handled request.
func (m *serverMetrics) request(key int16) {
	if key >= 0 && int(key) < len(m.requests) && m.requests[key] != nil {
		m.requests[key].Inc()
	}
}

// responseSent counts the error codes of a response about to be written
// (after any Deferred wait, so late errors count) and the bytes a fetch
// returns. It walks the response's topics and partitions without
// allocating.
func (m *serverMetrics) responseSent(key int16, resp kmsg.Response) {
	code := func(c int16) {
		if c != 0 {
			m.errorCode(key, c)
		}
	}
	switch r := resp.(type) {
	case *kmsg.ProduceResponse:
		for i := range r.Topics {
			for j := range r.Topics[i].Partitions {
				code(r.Topics[i].Partitions[j].ErrorCode)
			}
		}
	case *kmsg.FetchResponse:
		code(r.ErrorCode)
		var n int
		for i := range r.Topics {
			for j := range r.Topics[i].Partitions {
				p := &r.Topics[i].Partitions[j]
				code(p.ErrorCode)
				n += len(p.RecordBatches)
			}
		}
		if n > 0 {
			m.fetchedBytes.Add(float64(n))
		}
	case *kmsg.ListOffsetsResponse:
		for i := range r.Topics {
			for j := range r.Topics[i].Partitions {
				code(r.Topics[i].Partitions[j].ErrorCode)
			}
		}
	case *kmsg.MetadataResponse:
		for i := range r.Topics {
			code(r.Topics[i].ErrorCode)
		}
	case *kmsg.CreateTopicsResponse:
		for i := range r.Topics {
			code(r.Topics[i].ErrorCode)
		}
	case *kmsg.DeleteTopicsResponse:
		for i := range r.Topics {
			code(r.Topics[i].ErrorCode)
		}
	case *kmsg.OffsetCommitResponse:
		for i := range r.Topics {
			for j := range r.Topics[i].Partitions {
				code(r.Topics[i].Partitions[j].ErrorCode)
			}
		}
	case *kmsg.OffsetFetchResponse:
		code(r.ErrorCode)
		for i := range r.Groups {
			code(r.Groups[i].ErrorCode)
		}
	case *kmsg.JoinGroupResponse:
		code(r.ErrorCode)
	case *kmsg.SyncGroupResponse:
		code(r.ErrorCode)
	case *kmsg.HeartbeatResponse:
		code(r.ErrorCode)
	case *kmsg.LeaveGroupResponse:
		code(r.ErrorCode)
	case *kmsg.InitProducerIDResponse:
		code(r.ErrorCode)
	case *kmsg.ApiVersionsResponse:
		code(r.ErrorCode)
	}
}

func (m *serverMetrics) errorCode(key, c int16) {
	name := strconv.Itoa(int(c))
	if e := kerr.TypedErrorForCode(c); e != nil && e.Code == c {
		name = e.Message
	}
	m.errors.WithLabelValues(kmsg.NameForKey(key), name).Inc()
}

// produced counts one successful append.
func (m *serverMetrics) produced(bytes int, records int64) {
	m.producedBytes.Add(float64(bytes))
	m.producedRecords.Add(float64(records))
}

// RegisterMetrics registers the server's metrics on r: requests by API,
// response error codes by API, produced and fetched bytes, produced
// records, open connections, requests in flight, connections closed or
// refused by reason, waits for request memory, request memory held,
// retried accept errors, and (when the group
// coordinator runs) every group's committed offset, log end and lag per
// partition.
func (s *Server) RegisterMetrics(r prometheus.Registerer) error {
	cs := []prometheus.Collector{
		s.metrics.requestsVec, s.metrics.errors,
		s.metrics.producedBytes, s.metrics.producedRecords, s.metrics.fetchedBytes, s.metrics.sentFileBytes,
		s.metrics.closedVec, s.metrics.waitsVec, s.metrics.acceptErrors,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "weir_request_memory_bytes",
			Help: "Request memory held by all connections right now (frames being read, read ahead or being handled).",
		}, func() float64 { return float64(s.budget.inUse()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "weir_connections",
			Help: "Client connections open.",
		}, func() float64 {
			s.mu.Lock()
			defer s.mu.Unlock()
			return float64(len(s.conns))
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "weir_requests_in_flight",
			Help: "Requests inside a handler right now.",
		}, func() float64 { return float64(s.inFlight.Load()) }),
	}
	cs = append(cs, s.sec.collectors()...)
	if lag := GroupLag(s); lag != nil {
		cs = append(cs, lag)
	}
	if tc := txnCollector(s); tc != nil {
		cs = append(cs, tc)
	}
	var errs []error
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(append([]error{errors.New("protocol: registering metrics")}, errs...)...)
	}
	return nil
}

// logLimiter lets through at most burst lines per key in each interval and
// counts the rest, so that a flood (an attacker's connections, accept
// failing in a loop) cannot flood the log. The next line let through
// reports how many were suppressed.
type logLimiter struct {
	interval time.Duration
	burst    int

	mu   sync.Mutex
	keys map[string]*limitWindow // guarded by mu
}

// limitWindow is one key's current interval.
type limitWindow struct {
	start      time.Time
	n          int // lines let through since start
	suppressed int // lines dropped since the last one let through
}

func newLogLimiter(interval time.Duration, burst int) *logLimiter {
	return &logLimiter{interval: interval, burst: burst, keys: map[string]*limitWindow{}}
}

// allow reports whether a line for key may be logged at now, and how many
// were suppressed before it.
func (l *logLimiter) allow(key string, now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.keys[key]
	if w == nil {
		w = &limitWindow{start: now}
		l.keys[key] = w
	}
	if now.Sub(w.start) >= l.interval {
		w.start, w.n = now, 0
	}
	if w.n >= l.burst {
		w.suppressed++
		return false, 0
	}
	w.n++
	suppressed, w.suppressed = w.suppressed, 0
	return true, suppressed
}

// logLimited logs msg at level through the server's limiter under key.
func (s *Server) logLimited(level slog.Level, key, msg string, args ...any) {
	ok, suppressed := s.logLimit.allow(key, time.Now())
	if !ok {
		return
	}
	if suppressed > 0 {
		args = append(args, "suppressed_since_last", suppressed)
	}
	s.Logger.Log(context.Background(), level, msg, args...)
}
