package app

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
)

// The query endpoint (Options.QueryAddr): HTTP/JSON reads of the stores,
// for people, scripts and `weir console`. Every answer is JSON; errors are
// {"error": "..."} with a status that says what kind:
//
//	GET /stores                                   the stores, their kinds, whether the endpoint renders them
//	GET /stores/{store}/key?key=K[&standby=true]  one key's value (404 when absent)
//	GET /stores/{store}/range?[from=K][&to=K][&limit=N][&cursor=C]
//	GET /stores/{store}/windows?key=K[&from=T][&to=T][&limit=N][&cursor=C][&standby=true]
//	GET /stores/{store}/sessions?key=K
//	GET /location?store=S&key=K                    where the key's task runs
//
// A key is given as text and parsed by the store's QueryCodec (a string as
// it is, other types as JSON). Times are RFC 3339 or milliseconds since
// the epoch. A key whose task runs on another instance is forwarded there
// (once: a forwarded request is never forwarded again), and the answer
// says which instance answered. With standby=true a standby copy may
// answer, saying so and how many changelog records it is behind. A task
// that is restoring, or a partition moving between instances, is a 503
// with Retry-After: never an old or missing value passed off as current.
// A range walks the store's partitions in order, each in key order, at
// most limit (default 100, at most maxQueryLimit) entries per answer, with
// a cursor for the next page.

// QueryCodec renders a store's keys and values as JSON and parses keys
// from the text of a request, for the query endpoint.
type QueryCodec interface {
	// ParseKey encodes the key the text of a request names.
	ParseKey(store, text string) ([]byte, error)
	// KeyJSON and ValueJSON render an encoded key and value as JSON.
	KeyJSON(store string, key []byte) (json.RawMessage, error)
	ValueJSON(store string, value []byte) (json.RawMessage, error)
}

const (
	// defaultQueryLimit is a range's or window fetch's page size when the
	// request gives none; maxQueryLimit the largest it may ask.
	defaultQueryLimit = 100
	maxQueryLimit     = 1000
	// forwardTimeout bounds a read forwarded to another instance.
	forwardTimeout = 5 * time.Second
	// queryReadTimeout bounds a local read (mostly the wait for the
	// instance's lock).
	queryReadTimeout = 2 * time.Second
	// forwardedHeader marks a request forwarded by another instance.
	forwardedHeader = "X-Weir-Forwarded"
	// retryAfterSeconds is the Retry-After of a 503.
	retryAfterSeconds = "1"
)

// bindQuery binds the query listener (New calls it).
func (a *App) bindQuery() error {
	if a.opts.QueryAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", a.opts.QueryAddr)
	if err != nil {
		return fmt.Errorf("runtime: query address: %w", err)
	}
	a.queryLn = ln
	a.queryAdvertised = advertisedAddr(ln.Addr())
	return nil
}

// serveQuery serves the query endpoint on the listener New bound until
// the returned function is called (it waits for the server to stop).
func (a *App) serveQuery() (stop func()) {
	if a.queryLn == nil {
		return func() {}
	}
	srv := &http.Server{Handler: a.QueryHandler(), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(a.queryLn)
	}()
	a.log.Info("serving queries", "addr", a.queryLn.Addr().String(), "advertised", a.queryAdvertised)
	return func() {
		_ = srv.Close()
		<-done
	}
}

// QueryHandler returns the query endpoint's handler.
func (a *App) QueryHandler() http.Handler {
	q := &queryServer{a: a, client: &http.Client{Timeout: forwardTimeout}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stores", q.stores)
	mux.HandleFunc("GET /stores/{store}/key", q.key)
	mux.HandleFunc("GET /stores/{store}/range", q.rangeRead)
	mux.HandleFunc("GET /stores/{store}/windows", q.windows)
	mux.HandleFunc("GET /stores/{store}/sessions", q.sessions)
	mux.HandleFunc("GET /location", q.location)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, fmt.Errorf("runtime: no query endpoint %s %s (see GET /stores)", r.Method, r.URL.Path))
	})
	return mux
}

type queryServer struct {
	a      *App
	client *http.Client
}

// httpError is an error with the status it answers with.
type httpError struct {
	status int
	err    error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

func statusErr(status int, format string, args ...any) error {
	return &httpError{status: status, err: fmt.Errorf(format, args...)}
}

// statusOf maps an error to its HTTP status.
func statusOf(err error) int {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.status
	case errors.Is(err, state.ErrUnknownStore):
		return http.StatusNotFound
	case errors.Is(err, state.ErrNotReady), errors.Is(err, state.ErrNotLocal):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// writeErr answers {"error": ...}; a 503 also says why in "reason":
// "not_ready" (the task is here but restoring, or the instance stayed
// busy) or "moving" (no instance runs the task right now).
func writeErr(w http.ResponseWriter, status int, err error) {
	body := map[string]string{"error": err.Error()}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfterSeconds)
		body["reason"] = "moving"
		if errors.Is(err, state.ErrNotReady) {
			body["reason"] = "not_ready"
		}
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (q *queryServer) fail(w http.ResponseWriter, err error) { writeErr(w, statusOf(err), err) }

// StoreInfo is one store in GET /stores.
type StoreInfo struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Global bool   `json:"global"`
	// Queryable says whether the endpoint has a codec for the store.
	Queryable bool `json:"queryable"`
}

func (q *queryServer) stores(w http.ResponseWriter, _ *http.Request) {
	out := []StoreInfo{}
	for _, s := range q.a.topo.Stores() {
		_, ok := q.a.opts.QueryStores[s.Name]
		out = append(out, StoreInfo{Name: s.Name, Kind: s.Kind.String(), Global: s.Global, Queryable: ok})
	}
	writeJSON(w, http.StatusOK, map[string]any{"instance": q.a.queryAdvertised, "stores": out})
}

// codec returns the store's codec after checking the store exists.
func (q *queryServer) codec(store string) (QueryCodec, error) {
	if _, _, err := q.a.storeSub(store); err != nil {
		return nil, err
	}
	c, ok := q.a.opts.QueryStores[store]
	if !ok {
		return nil, statusErr(http.StatusBadRequest,
			"runtime: store %q has no query codec: register its serdes with runtime.QueryStore so that its keys and values can be rendered as JSON", store)
	}
	return c, nil
}

// parseKey reads and encodes the key parameter.
func (q *queryServer) parseKey(c QueryCodec, store string, r *http.Request, param string) ([]byte, error) {
	v := r.URL.Query()
	if !v.Has(param) {
		return nil, statusErr(http.StatusBadRequest, "runtime: store %q: missing parameter %q", store, param)
	}
	kb, err := c.ParseKey(store, v.Get(param))
	if err != nil {
		return nil, statusErr(http.StatusBadRequest, "runtime: store %q: %s %q does not decode as the store's key: %v", store, param, cut(v.Get(param)), err)
	}
	return kb, nil
}

func cut(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// Answer fields every read carries.
type answerMeta struct {
	Store     string `json:"store"`
	Partition int32  `json:"partition"`
	// Instance is the query address of the instance that answered.
	Instance string `json:"instance"`
	// Standby is true when a standby copy answered; Lag is then how many
	// changelog records it is behind (-1: not known yet).
	Standby bool  `json:"standby"`
	Lag     int64 `json:"lag"`
	// Forwarded is true when the instance asked forwarded the request.
	Forwarded bool `json:"forwarded,omitempty"`
}

// KeyAnswer is GET /stores/{store}/key's answer.
type KeyAnswer struct {
	answerMeta
	Key   json.RawMessage `json:"key"`
	Found bool            `json:"found"`
	Value json.RawMessage `json:"value,omitempty"`
}

func wantStandby(r *http.Request) bool {
	b, _ := strconv.ParseBool(r.URL.Query().Get("standby"))
	return b
}

func readCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), queryReadTimeout)
}

// readLocal runs read against the active task of partition here, or (with
// standby) against a standby copy here. It returns the meta to answer with
// or an error: state.ErrNotLocal when neither is here.
func (q *queryServer) readLocal(r *http.Request, store string, part int32, standby bool, read func(state.Store) error) (answerMeta, error) {
	ctx, cancel := readCtx(r)
	defer cancel()
	meta := answerMeta{Store: store, Partition: part, Instance: q.a.queryAdvertised}
	err := q.a.ReadStore(ctx, store, part, read)
	if err == nil || !standby || !state.IsNotLocal(err) && !state.IsNotReady(err) {
		return meta, err
	}
	serr := q.a.ReadStandby(ctx, store, part, func(s state.Store, lag int64) error {
		meta.Standby, meta.Lag = true, lag
		return read(s)
	})
	if serr == nil {
		return meta, nil
	}
	if state.IsNotLocal(serr) {
		return meta, err // the active's answer says more
	}
	return meta, serr
}

// forward sends r to the instance holding partition of store; it writes
// the answer (or the error) and reports whether it handled the request.
// It does not forward a forwarded request, nor to this instance.
func (q *queryServer) forward(w http.ResponseWriter, r *http.Request, store string, part int32, standby bool, cause error, extra url.Values) {
	loc := q.a.partitionLocation(store, mustSub(q.a, store), part)
	target := loc.Active
	if target == "" && standby && len(loc.Standbys) > 0 {
		target = loc.Standbys[0]
	}
	switch {
	case r.Header.Get(forwardedHeader) != "":
		writeErr(w, http.StatusServiceUnavailable, fmt.Errorf("runtime: store %q partition %d is not here any more (forwarded by another instance; it is moving): %w", store, part, cause))
		return
	case target == "":
		writeErr(w, http.StatusServiceUnavailable, fmt.Errorf("runtime: store %q partition %d: no instance runs task %s now (it is moving, or its instance advertises no query address): %w", store, part, loc.Task, cause))
		return
	case target == q.a.queryAdvertised:
		writeErr(w, http.StatusServiceUnavailable, fmt.Errorf("runtime: store %q partition %d: %w", store, part, cause))
		return
	}
	u := url.URL{Scheme: "http", Host: target, Path: r.URL.Path}
	v := r.URL.Query()
	for k, vs := range extra {
		v[k] = vs
	}
	u.RawQuery = v.Encode()
	ctx, cancel := context.WithTimeout(r.Context(), forwardTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		q.fail(w, err)
		return
	}
	req.Header.Set(forwardedHeader, q.a.queryAdvertised)
	resp, err := q.client.Do(req)
	if err != nil {
		status := http.StatusBadGateway
		if ctx.Err() != nil {
			status = http.StatusGatewayTimeout
		}
		writeErr(w, status, fmt.Errorf("runtime: instance %s, which holds store %q partition %d, did not answer: %v", target, store, part, err))
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		writeErr(w, http.StatusBadGateway, fmt.Errorf("runtime: instance %s, which holds store %q partition %d, broke off its answer: %v", target, store, part, err))
		return
	}
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNotFound {
		body = markForwarded(body)
	}
	for _, h := range []string{"Content-Type", "Retry-After"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

// markForwarded sets "forwarded": true in a JSON object answer.
func markForwarded(body []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return body
	}
	m["forwarded"] = json.RawMessage("true")
	out, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return append(out, '\n')
}

func mustSub(a *App, store string) streams.SubtopologyID {
	s, _, _ := a.storeSub(store)
	return s
}

func (q *queryServer) key(w http.ResponseWriter, r *http.Request) {
	store := r.PathValue("store")
	c, err := q.codec(store)
	if err != nil {
		q.fail(w, err)
		return
	}
	kb, err := q.parseKey(c, store, r, "key")
	if err != nil {
		q.fail(w, err)
		return
	}
	part, err := q.a.PartitionOf(store, kb)
	if err != nil {
		q.fail(w, err)
		return
	}
	standby := wantStandby(r)
	var vb []byte
	meta, err := q.readLocal(r, store, part, standby, func(s state.Store) error {
		kv, ok := s.(state.KeyValueStore)
		if !ok {
			return statusErr(http.StatusBadRequest, "runtime: store %q is a %s store: read it with /windows or /sessions", store, kindOf(s))
		}
		b, err := kv.Get(kb)
		vb = append([]byte(nil), b...)
		if b == nil {
			vb = nil
		}
		return err
	})
	if state.IsNotLocal(err) {
		q.forward(w, r, store, part, standby, err, nil)
		return
	}
	if err != nil {
		q.fail(w, err)
		return
	}
	ans := KeyAnswer{answerMeta: meta, Found: vb != nil}
	if ans.Key, err = c.KeyJSON(store, kb); err != nil {
		q.fail(w, fmt.Errorf("runtime: store %q: render key: %w", store, err))
		return
	}
	status := http.StatusNotFound
	if vb != nil {
		status = http.StatusOK
		if ans.Value, err = c.ValueJSON(store, vb); err != nil {
			q.fail(w, fmt.Errorf("runtime: store %q: render the value of key %s: %w", store, ans.Key, err))
			return
		}
	}
	writeJSON(w, status, ans)
}

func kindOf(s state.Store) string {
	switch s.(type) {
	case state.KeyValueStore:
		return "key-value"
	case state.WindowStore:
		return "window"
	case state.SessionStore:
		return "session"
	}
	return "unknown"
}

// Pair is one entry of a range answer.
type Pair struct {
	Key       json.RawMessage `json:"key"`
	Value     json.RawMessage `json:"value"`
	Partition int32           `json:"partition"`
}

// RangeAnswer is GET /stores/{store}/range's answer. Cursor, when not
// empty, asks for the next page.
type RangeAnswer struct {
	Store   string `json:"store"`
	Entries []Pair `json:"entries"`
	Cursor  string `json:"cursor,omitempty"`
	// Instances are the query addresses that answered, in order.
	Instances []string `json:"instances"`
}

func parseLimit(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return defaultQueryLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, statusErr(http.StatusBadRequest, "runtime: limit %q is not a positive number", cut(s))
	}
	if n > maxQueryLimit {
		return 0, statusErr(http.StatusBadRequest, "runtime: limit %d is more than a read returns at once (%d): ask for pages with limit and cursor", n, maxQueryLimit)
	}
	return n, nil
}

// parseCursor reads "partition:hexkey".
func parseCursor(s string) (int32, []byte, error) {
	p, k, ok := strings.Cut(s, ":")
	n, err := strconv.ParseInt(p, 10, 32)
	if !ok || err != nil || n < 0 {
		return 0, nil, statusErr(http.StatusBadRequest, "runtime: cursor %q is not one a range answer gave", cut(s))
	}
	kb, err := hex.DecodeString(k)
	if err != nil {
		return 0, nil, statusErr(http.StatusBadRequest, "runtime: cursor %q is not one a range answer gave", cut(s))
	}
	return int32(n), kb, nil
}

func (q *queryServer) rangeRead(w http.ResponseWriter, r *http.Request) {
	store := r.PathValue("store")
	c, err := q.codec(store)
	if err != nil {
		q.fail(w, err)
		return
	}
	limit, err := parseLimit(r)
	if err != nil {
		q.fail(w, err)
		return
	}
	v := r.URL.Query()
	var from, to []byte
	if v.Has("from") {
		if from, err = q.parseKey(c, store, r, "from"); err != nil {
			q.fail(w, err)
			return
		}
	}
	if v.Has("to") {
		if to, err = q.parseKey(c, store, r, "to"); err != nil {
			q.fail(w, err)
			return
		}
	}
	st, global, _ := q.a.storeSub(store)
	n := 1
	if !global {
		n = q.a.subPartitions(st)
	}
	if n == 0 {
		q.fail(w, fmt.Errorf("%w: store %q: the application has not started", state.ErrNotReady, store))
		return
	}
	part := int32(0)
	if cs := v.Get("cursor"); cs != "" {
		if part, from, err = parseCursor(cs); err != nil {
			q.fail(w, err)
			return
		}
		if int(part) >= n {
			q.fail(w, statusErr(http.StatusBadRequest, "runtime: cursor %q names partition %d of %d", cut(cs), part, n))
			return
		}
	}
	// only is set on a request forwarded for one partition.
	only := v.Has("partition")
	ans := RangeAnswer{Store: store, Entries: []Pair{}, Instances: []string{}}
	for ; int(part) < n && len(ans.Entries) < limit; part, from = part+1, nil {
		var (
			pairs []state.RawPair
			more  bool
		)
		meta, err := q.readLocal(r, store, part, false, func(s state.Store) error {
			ctx, cancel := readCtx(r)
			defer cancel()
			var err error
			pairs, more, err = state.ReadRange(ctx, singleStore{s}, store, part, from, to, limit-len(ans.Entries))
			return err
		})
		if state.IsNotLocal(err) && !only {
			sub, cursor, err := q.forwardRange(r, store, part, from, to, limit-len(ans.Entries))
			if err != nil {
				q.fail(w, err)
				return
			}
			ans.Entries = append(ans.Entries, sub.Entries...)
			ans.Instances = appendNew(ans.Instances, sub.Instances...)
			if cursor != "" {
				ans.Cursor = cursor
				break
			}
			continue
		}
		if err != nil {
			q.fail(w, err)
			return
		}
		ans.Instances = appendNew(ans.Instances, meta.Instance)
		for _, p := range pairs {
			e := Pair{Partition: part}
			if e.Key, err = c.KeyJSON(store, p.Key); err == nil {
				e.Value, err = c.ValueJSON(store, p.Value)
			}
			if err != nil {
				q.fail(w, fmt.Errorf("runtime: store %q partition %d: render key %x: %w", store, part, p.Key, err))
				return
			}
			ans.Entries = append(ans.Entries, e)
		}
		if more {
			ans.Cursor = strconv.Itoa(int(part)) + ":" + hex.EncodeToString(append(pairs[len(pairs)-1].Key, 0))
			break
		}
		if only {
			break
		}
	}
	if ans.Cursor == "" && !only && int(part) < n && len(ans.Entries) == limit {
		ans.Cursor = strconv.Itoa(int(part)) + ":"
	}
	writeJSON(w, http.StatusOK, ans)
}

func appendNew(s []string, vs ...string) []string {
	for _, v := range vs {
		if len(s) == 0 || s[len(s)-1] != v {
			s = append(s, v)
		}
	}
	return s
}

// singleStore is a Querier over one store already read-locked, so that
// ReadRange and the like can run inside readLocal.
type singleStore struct{ s state.Store }

func (singleStore) PartitionOf(string, []byte) (int32, error) { return 0, nil }
func (singleStore) LocalPartitions(string) ([]int32, error)   { return []int32{0}, nil }
func (o singleStore) ReadStore(_ context.Context, _ string, _ int32, fn func(state.Store) error) error {
	return fn(o.s)
}

// forwardRange asks the instance holding partition for one partition's
// page; it returns the entries and the cursor to continue with.
func (q *queryServer) forwardRange(r *http.Request, store string, part int32, from, to []byte, limit int) (RangeAnswer, string, error) {
	rec := &bufferedResponse{header: http.Header{}}
	extra := url.Values{
		"partition": {strconv.Itoa(int(part))},
		"cursor":    {strconv.Itoa(int(part)) + ":" + hex.EncodeToString(from)},
		"limit":     {strconv.Itoa(limit)},
	}
	r2 := r.Clone(r.Context())
	qv := r2.URL.Query()
	qv.Del("from") // the cursor carries where to start
	r2.URL.RawQuery = qv.Encode()
	q.forward(rec, r2, store, part, false, fmt.Errorf("%w: store %q partition %d", state.ErrNotLocal, store, part), extra)
	if rec.status != http.StatusOK {
		var e struct{ Error string }
		_ = json.Unmarshal(rec.body, &e)
		status := rec.status
		return RangeAnswer{}, "", &httpError{status: status, err: errors.New(e.Error)}
	}
	var sub RangeAnswer
	if err := json.Unmarshal(rec.body, &sub); err != nil {
		return RangeAnswer{}, "", statusErr(http.StatusBadGateway, "runtime: store %q partition %d: the holding instance answered something else than a range: %v", store, part, err)
	}
	return sub, sub.Cursor, nil
}

// bufferedResponse is an http.ResponseWriter keeping what was written.
type bufferedResponse struct {
	header http.Header
	status int
	body   []byte
}

func (b *bufferedResponse) Header() http.Header { return b.header }
func (b *bufferedResponse) WriteHeader(s int)   { b.status = s }
func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	b.body = append(b.body, p...)
	return len(p), nil
}

// parseTime reads an RFC 3339 time or milliseconds since the epoch.
func parseTime(r *http.Request, param string, def int64) (int64, error) {
	s := r.URL.Query().Get(param)
	if s == "" {
		return def, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ms, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, statusErr(http.StatusBadRequest, "runtime: %s %q is neither RFC 3339 nor milliseconds since the epoch", param, cut(s))
	}
	return t.UnixMilli(), nil
}

// Window is one window of a window answer.
type Window struct {
	Start time.Time       `json:"start"`
	Value json.RawMessage `json:"value"`
}

// WindowsAnswer is GET /stores/{store}/windows's answer. Cursor, when not
// empty, asks for the next page.
type WindowsAnswer struct {
	answerMeta
	Key     json.RawMessage `json:"key"`
	Windows []Window        `json:"windows"`
	Cursor  string          `json:"cursor,omitempty"`
}

func (q *queryServer) windows(w http.ResponseWriter, r *http.Request) {
	store := r.PathValue("store")
	c, err := q.codec(store)
	if err != nil {
		q.fail(w, err)
		return
	}
	kb, err := q.parseKey(c, store, r, "key")
	if err != nil {
		q.fail(w, err)
		return
	}
	limit, err := parseLimit(r)
	if err != nil {
		q.fail(w, err)
		return
	}
	from, err := parseTime(r, "from", 0)
	if err == nil && r.URL.Query().Get("cursor") != "" {
		from, err = parseTime(r, "cursor", 0)
	}
	if err != nil {
		q.fail(w, err)
		return
	}
	to, err := parseTime(r, "to", math.MaxInt64)
	if err != nil {
		q.fail(w, err)
		return
	}
	if to < from {
		q.fail(w, statusErr(http.StatusBadRequest, "runtime: store %q: to (%d ms) is before from (%d ms)", store, to, from))
		return
	}
	part, err := q.a.PartitionOf(store, kb)
	if err != nil {
		q.fail(w, err)
		return
	}
	standby := wantStandby(r)
	var (
		ws   []state.RawWindow
		more bool
	)
	meta, err := q.readLocal(r, store, part, standby, func(s state.Store) error {
		if _, ok := s.(state.WindowStore); !ok {
			return statusErr(http.StatusBadRequest, "runtime: store %q is a %s store, not a window store", store, kindOf(s))
		}
		ctx, cancel := readCtx(r)
		defer cancel()
		var err error
		ws, more, err = state.ReadWindows(ctx, singleStore{s}, store, part, kb, from, to, limit)
		return err
	})
	if state.IsNotLocal(err) {
		q.forward(w, r, store, part, standby, err, nil)
		return
	}
	if err != nil {
		q.fail(w, err)
		return
	}
	ans := WindowsAnswer{answerMeta: meta, Windows: []Window{}}
	if ans.Key, err = c.KeyJSON(store, kb); err != nil {
		q.fail(w, err)
		return
	}
	for _, x := range ws {
		v, err := c.ValueJSON(store, x.Value)
		if err != nil {
			q.fail(w, fmt.Errorf("runtime: store %q: render the window at %d of key %s: %w", store, x.Start, ans.Key, err))
			return
		}
		ans.Windows = append(ans.Windows, Window{Start: time.UnixMilli(x.Start).UTC(), Value: v})
	}
	if more {
		ans.Cursor = strconv.FormatInt(ws[len(ws)-1].Start+1, 10)
	}
	writeJSON(w, http.StatusOK, ans)
}

// Session is one session of a sessions answer.
type Session struct {
	Start time.Time       `json:"start"`
	End   time.Time       `json:"end"`
	Value json.RawMessage `json:"value"`
}

// SessionsAnswer is GET /stores/{store}/sessions's answer.
type SessionsAnswer struct {
	answerMeta
	Key      json.RawMessage `json:"key"`
	Sessions []Session       `json:"sessions"`
}

func (q *queryServer) sessions(w http.ResponseWriter, r *http.Request) {
	store := r.PathValue("store")
	c, err := q.codec(store)
	if err != nil {
		q.fail(w, err)
		return
	}
	kb, err := q.parseKey(c, store, r, "key")
	if err != nil {
		q.fail(w, err)
		return
	}
	part, err := q.a.PartitionOf(store, kb)
	if err != nil {
		q.fail(w, err)
		return
	}
	standby := wantStandby(r)
	var ss []state.RawSession
	meta, err := q.readLocal(r, store, part, standby, func(s state.Store) error {
		if _, ok := s.(state.SessionStore); !ok {
			return statusErr(http.StatusBadRequest, "runtime: store %q is a %s store, not a session store", store, kindOf(s))
		}
		ctx, cancel := readCtx(r)
		defer cancel()
		var err error
		ss, err = state.ReadSessions(ctx, singleStore{s}, store, part, kb)
		if err == nil && len(ss) > maxQueryLimit {
			return statusErr(http.StatusBadRequest, "runtime: store %q: key has %d sessions, more than a read returns (%d)", store, len(ss), maxQueryLimit)
		}
		return err
	})
	if state.IsNotLocal(err) {
		q.forward(w, r, store, part, standby, err, nil)
		return
	}
	if err != nil {
		q.fail(w, err)
		return
	}
	ans := SessionsAnswer{answerMeta: meta, Sessions: []Session{}}
	if ans.Key, err = c.KeyJSON(store, kb); err != nil {
		q.fail(w, err)
		return
	}
	for _, x := range ss {
		v, err := c.ValueJSON(store, x.Value)
		if err != nil {
			q.fail(w, err)
			return
		}
		ans.Sessions = append(ans.Sessions, Session{Start: time.UnixMilli(x.Start).UTC(), End: time.UnixMilli(x.End).UTC(), Value: v})
	}
	writeJSON(w, http.StatusOK, ans)
}

// LocationAnswer is GET /location's answer.
type LocationAnswer struct {
	Store     string   `json:"store"`
	Partition int32    `json:"partition"`
	Task      string   `json:"task"`
	Active    string   `json:"active"`
	Standbys  []string `json:"standbys"`
}

func (q *queryServer) location(w http.ResponseWriter, r *http.Request) {
	store := r.URL.Query().Get("store")
	c, err := q.codec(store)
	if err != nil {
		q.fail(w, err)
		return
	}
	kb, err := q.parseKey(c, store, r, "key")
	if err != nil {
		q.fail(w, err)
		return
	}
	loc, err := q.a.KeyLocation(store, kb)
	if err != nil {
		q.fail(w, err)
		return
	}
	if loc.Standbys == nil {
		loc.Standbys = []string{}
	}
	writeJSON(w, http.StatusOK, LocationAnswer{Store: store, Partition: loc.Partition, Task: loc.Task.String(), Active: loc.Active, Standbys: loc.Standbys})
}
