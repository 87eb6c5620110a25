package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestQueryForwardedTooLarge: a forwarded answer longer than the bound is
// refused whole (so the caller answers 502), not cut into invalid JSON; one
// exactly at the bound is relayed as it is.
func TestQueryForwardedTooLarge(t *testing.T) {
	const limit = 16
	at := strings.Repeat("x", limit)
	body, err := readForwarded(strings.NewReader(at), limit)
	if err != nil || string(body) != at {
		t.Fatalf("answer of %d bytes (the bound): %q, %v; want it whole", limit, body, err)
	}
	body, err = readForwarded(strings.NewReader(at+"y"), limit)
	if err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("answer of %d bytes (one past the bound): %q, %v; want a too-large error", limit+1, body, err)
	}
}

// TestQueryRequestDeadline: every request handled gets one deadline, at
// most requestTimeout from its arrival, which its reads and forwards
// derive from; it ends when the handler returns.
func TestQueryRequestDeadline(t *testing.T) {
	var ctx context.Context
	var dl time.Time
	var ok bool
	h := withRequestDeadline(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		ctx = r.Context()
		dl, ok = ctx.Deadline()
	}))
	start := time.Now()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/stores", nil))
	end := time.Now()
	if !ok {
		t.Fatal("the request's context has no deadline")
	}
	if dl.Before(start) || dl.After(end.Add(requestTimeout)) {
		t.Fatalf("deadline %v after arrival, want at most %v", dl.Sub(start), requestTimeout)
	}
	if ctx.Err() == nil {
		t.Fatal("the request's context is still live after the handler returned")
	}
}
