package protocol

import (
	"math/bits"
	"sync"
)

// A connection keeps the buffers its frames were read into (readBody's
// steps and Produce frames' whole buffers), and those its Fetch responses'
// batches were read into (fetchbufs.go), for its next requests, rather
// than in a process-wide sync.Pool: a pool is emptied by every second
// garbage collection, and a busy broker collects often, so pooled frame
// buffers were allocated again about as often as they were reused. Kept
// buffers are bounded per connection (count and bytes) and across the
// server (keptFrameBudget); past the bounds a buffer is left to the
// collector. A closed connection's buffers go back to the server's bound.

// keepFrameBufs and keepConnFrameBytes bound one connection's kept
// buffers: enough for the steps and whole buffers of the frames it has in
// hand at once (one being read, one queued, one being handled), and for a
// few Fetch responses' partitions.
const (
	keepFrameBufs      = 24
	keepConnFrameBytes = 2 * maxPooledFrame
)

// maxPooledFrame is the largest buffer a whole frame borrows (see
// readBody): larger frames are rare, and their buffers are not kept.
const maxPooledFrame = 16 << 20

// frameBufs is one connection's kept read buffers, each a class size
// (frameReadStep << k). The reader takes them and the handler loop gives
// them back, hence the mutex. The zero value is empty and ready.
type frameBufs struct {
	mu     sync.Mutex
	free   []*[]byte
	bytes  int64
	closed bool // the connection is closing: keep nothing more
}

// stepSize returns the smallest class size (frameReadStep << k) that holds
// n >= frameReadStep bytes.
func stepSize(n int) int {
	return frameReadStep << bits.Len(uint((n-1)/frameReadStep))
}

// getBuf returns a buffer of size bytes (a class size), one the connection
// kept when it has one. Its contents are whatever a previous frame left.
func (c *conn) getBuf(size int) *[]byte {
	k := &c.bufs
	k.mu.Lock()
	for i, p := range k.free {
		if cap(*p) == size {
			last := len(k.free) - 1
			k.free[i] = k.free[last]
			k.free[last] = nil
			k.free = k.free[:last]
			k.bytes -= int64(size)
			k.mu.Unlock()
			c.s.keptFrameBytes.Add(-int64(size))
			*p = (*p)[:size]
			return p
		}
	}
	k.mu.Unlock()
	b := make([]byte, size)
	return &b
}

// putBuf gives back a buffer from getBuf (however it was sliced): the
// connection keeps it if its and the server's bounds allow.
func (c *conn) putBuf(p *[]byte) {
	size := int64(cap(*p))
	if size > maxPooledFrame {
		return
	}
	k := &c.bufs
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed || len(k.free) >= keepFrameBufs || k.bytes+size > keepConnFrameBytes {
		return
	}
	if c.s.keptFrameBytes.Add(size) > c.s.keptFrameLimit() {
		c.s.keptFrameBytes.Add(-size)
		return
	}
	k.free = append(k.free, p)
	k.bytes += size
}

// dropBufs lets go of every kept buffer, for good: the connection is
// closing, and a buffer given back later is not kept.
func (c *conn) dropBufs() {
	k := &c.bufs
	k.mu.Lock()
	defer k.mu.Unlock()
	c.s.keptFrameBytes.Add(-k.bytes)
	clear(k.free)
	k.free, k.bytes, k.closed = nil, 0, true
}
