package protocol

import (
	"errors"
	"strconv"

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
}

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
	}
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
// records, open connections, requests in flight, and (when the group
// coordinator runs) every group's committed offset, log end and lag per
// partition.
func (s *Server) RegisterMetrics(r prometheus.Registerer) error {
	cs := []prometheus.Collector{
		s.metrics.requestsVec, s.metrics.errors,
		s.metrics.producedBytes, s.metrics.producedRecords, s.metrics.fetchedBytes,
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
	if lag := GroupLag(s); lag != nil {
		cs = append(cs, lag)
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
