package protocol

import (
	"context"

	"github.com/weir-dev/weir/broker/internal/topics"
)

// Fetch responses carry record batches read from the logs. Where a log can
// read into a caller's buffer (topics.BufferReader), the batches are read
// into buffers the connection keeps (the kept read buffers of
// framebufs.go), and given back once the writer has written the response,
// rather than into a fresh, zeroed buffer per partition per fetch.
//
// The handler's result is the plain response: each handleFetch call
// registers its lease with the connection (conn.leases), and serve hands
// the leases of the request it just handled to the writer with the
// response. Code that calls handleFetch and edits its response (cluster
// mode) needs to know nothing of it.

// maxKeptFetchBuf is the largest buffer a read borrows; a partition's read
// past it gets a fresh buffer from the log.
const maxKeptFetchBuf = 4 << 20

// connKey is the context key under which serve passes the connection to
// its handlers.
type connKey struct{}

// fetchLease is the kept buffers one Fetch response's batches are in, and
// the file ranges it sends from (sendfile.go).
type fetchLease struct {
	c     *conn // nil: no connection to keep buffers for (reads allocate)
	bufs  []*[]byte
	files []leasedRange
}

// newFetchLease returns a lease for a Fetch handled on ctx's connection,
// registered with the connection's current request.
func newFetchLease(ctx context.Context) *fetchLease {
	c, _ := ctx.Value(connKey{}).(*conn)
	fl := &fetchLease{c: c}
	if c != nil {
		c.leases = append(c.leases, fl)
	}
	return fl
}

// takeLeases returns what gives back the buffers leased by the request
// just handled (nil if none), and forgets them. Only the handler loop,
// which runs the handlers, calls it.
//
// It also returns the file ranges the response's batches are to be sent
// from (sendfile.go), which the returned func closes.
func (c *conn) takeLeases() (func(), []leasedRange) {
	var ls []*fetchLease
	var files []leasedRange
	for _, fl := range c.leases {
		if len(fl.bufs) > 0 || len(fl.files) > 0 {
			ls = append(ls, fl)
			files = append(files, fl.files...)
		}
	}
	clear(c.leases)
	c.leases = c.leases[:0]
	if len(ls) == 0 {
		return nil, nil
	}
	return func() {
		for _, fl := range ls {
			fl.reset()
		}
	}, files
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
	for _, f := range fl.files {
		_ = f.r.Close()
	}
	clear(fl.files)
	fl.files = fl.files[:0]
}
