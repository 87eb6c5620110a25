package protocol

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/topics"
)

// Fetch responses carry record batches read from the logs. Where a log can
// read into a caller's buffer (topics.BufferReader), the batches are read
// into buffers the connection keeps (the kept read buffers of
// framebufs.go), and given back once the writer has written the response,
// rather than into a fresh, zeroed buffer per partition per fetch.

// maxKeptFetchBuf is the largest buffer a read borrows; a partition's read
// past it gets a fresh buffer from the log.
const maxKeptFetchBuf = 4 << 20

// connKey is the context key under which serve passes the connection to
// its handlers.
type connKey struct{}

// fetchLease is the kept buffers one Fetch response's batches are in.
type fetchLease struct {
	c    *conn // nil: no connection to keep buffers for (reads allocate)
	bufs []*[]byte
}

// newFetchLease returns the lease of a Fetch handled on ctx's connection.
func newFetchLease(ctx context.Context) *fetchLease {
	c, _ := ctx.Value(connKey{}).(*conn)
	return &fetchLease{c: c}
}

// read is l.Read, into a kept buffer when l can read into one.
func (fl *fetchLease) read(l topics.Log, from topics.Offset, maxBytes int) ([]byte, error) {
	br, ok := l.(topics.BufferReader)
	if !ok || fl.c == nil {
		return l.Read(from, maxBytes)
	}
	p := fl.c.getBuf(stepSize(min(max(maxBytes, frameReadStep), maxKeptFetchBuf)))
	b, err := br.ReadInto(*p, from, maxBytes)
	if err != nil || len(b) == 0 || &b[0] != &(*p)[0] {
		fl.c.putBuf(p) // not used: nothing read, or more than it holds
		return b, err
	}
	fl.bufs = append(fl.bufs, p)
	return b, nil
}

// reset gives back every buffer leased so far: the caller no longer refers
// to what was read into them.
func (fl *fetchLease) reset() {
	for _, p := range fl.bufs {
		fl.c.putBuf(p)
	}
	clear(fl.bufs)
	fl.bufs = fl.bufs[:0]
}

// response returns resp, wrapped so that the writer gives the leased
// buffers back once it has written it.
func (fl *fetchLease) response(resp *kmsg.FetchResponse) kmsg.Response {
	if len(fl.bufs) == 0 {
		return resp
	}
	return &Deferred{Response: resp, Done: fl.reset}
}
