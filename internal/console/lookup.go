package console

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// Key lookup: the console reads a store of a stream application through
// the instance's query endpoint (the runtime's QueryAddr option), which
// forwards the read to the instance holding the key. The console only
// talks to query addresses that the --apps instances themselves report
// in their /application answer, never to an address from the request.

// Lookup is /api/apps/{i}/lookup's answer: the query endpoint's status
// and its JSON answer, passed through.
type Lookup struct {
	// Endpoint is the query URL the console asked.
	Endpoint string `json:"endpoint"`
	// Status is the query endpoint's HTTP status: 200 found, 404 absent,
	// 503 restoring or moving (retry), 4xx a bad request.
	Status int             `json:"status"`
	Answer json.RawMessage `json:"answer"`
}

// maxLookupAnswer bounds a query endpoint's answer.
const maxLookupAnswer = 4 << 20

// lookup reads key of store through the query endpoint of --apps
// instance i: /key for a key-value store, /windows for a window store,
// /sessions for a session store.
func (s *Server) lookup(ctx context.Context, r *http.Request) (any, error) {
	i, err := strconv.Atoi(r.PathValue("i"))
	if err != nil || i < 0 || i >= len(s.opts.Apps) {
		return nil, notFound("no application instance %q: the console has %d (--apps)", r.PathValue("i"), len(s.opts.Apps))
	}
	q := r.URL.Query()
	store, key := q.Get("store"), q.Get("key")
	if store == "" || !q.Has("key") {
		return nil, badRequest("a lookup needs store and key parameters")
	}
	a := s.app(ctx, s.opts.Apps[i])
	if !a.Up {
		return nil, &httpError{status: http.StatusBadGateway, err: fmt.Errorf("console: application instance %s: %s", s.opts.Apps[i], a.Error)}
	}
	var d struct {
		QueryAddr string `json:"query_addr"`
		Topology  struct {
			Stores []struct {
				Name string `json:"name"`
				Kind string `json:"kind"`
			} `json:"stores"`
		} `json:"topology"`
	}
	if err := json.Unmarshal(a.Application, &d); err != nil {
		return nil, &httpError{status: http.StatusBadGateway, err: fmt.Errorf("console: %s/application: %v", s.opts.Apps[i], err)}
	}
	if d.QueryAddr == "" {
		return nil, badRequest("application instance %s has no query endpoint: start it with the runtime's QueryAddr option", s.opts.Apps[i])
	}
	kind := ""
	for _, st := range d.Topology.Stores {
		if st.Name == store {
			kind = st.Kind
		}
	}
	path := map[string]string{"key-value": "key", "window": "windows", "session": "sessions"}[kind]
	if path == "" {
		return nil, notFound("application instance %s has no store %q", s.opts.Apps[i], store)
	}
	u := url.URL{Scheme: "http", Host: d.QueryAddr, Path: "/stores/" + store + "/" + path, RawQuery: url.Values{"key": {key}}.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, &httpError{status: http.StatusBadGateway, err: fmt.Errorf("console: query endpoint %s of %s is down: %v", d.QueryAddr, s.opts.Apps[i], err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxLookupAnswer+1))
	switch {
	case err != nil:
		return nil, &httpError{status: http.StatusBadGateway, err: fmt.Errorf("console: query endpoint %s: %v", d.QueryAddr, err)}
	case len(body) > maxLookupAnswer:
		return nil, &httpError{status: http.StatusBadGateway, err: fmt.Errorf("console: query endpoint %s answered more than %d bytes", d.QueryAddr, maxLookupAnswer)}
	case !json.Valid(body):
		return nil, &httpError{status: http.StatusBadGateway, err: fmt.Errorf("console: query endpoint %s answered %s, not JSON", d.QueryAddr, resp.Status)}
	}
	return Lookup{Endpoint: u.String(), Status: resp.StatusCode, Answer: body}, nil
}
