package protocol

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrFrame marks a malformed frame or request header: the connection that
// sent it is closed, and nothing else is disturbed.
var ErrFrame = errors.New("protocol: malformed frame")

// IsFrameError reports whether err is (or wraps) ErrFrame.
func IsFrameError(err error) bool { return errors.Is(err, ErrFrame) }

// frame is one request read from a connection, header parsed, body decoded.
type frame struct {
	req *Request
	h   handlerEntry
	// early, when set, is the response to write without calling a handler
	// (ApiVersions at an unsupported version, KIP-511).
	early kmsg.Response
	// headerV0 is set when the response header has no tagged fields even
	// though the request is flexible (ApiVersions).
	headerV0 bool
	// rawSASL marks a bare SASL token after a SaslHandshake v0: its
	// response is the bare token too (see readSecured).
	rawSASL bool
	// size is the frame's charge against the server's byte budget,
	// released once the request has been handled.
	size int64
	// buf, when set, is the pooled buffer holding a Produce frame's bytes
	// (see readBody), given back to the connection's kept buffers once the handler has
	// returned.
	buf *[]byte
}

// header is a parsed request header (v1 or v2).
type header struct {
	key, version  int16
	correlationID int32
	clientID      string
}

// parseHeader parses the fixed part of a request header from frame and
// returns the remaining bytes (the tagged-field section, if any, is not yet
// consumed: that depends on whether the key and version are flexible).
func parseHeader(b []byte) (header, []byte, error) {
	var h header
	if len(b) < 10 {
		return h, nil, fmt.Errorf("%w: %d-byte frame is shorter than a request header", ErrFrame, len(b))
	}
	h.key = int16(binary.BigEndian.Uint16(b[0:]))
	h.version = int16(binary.BigEndian.Uint16(b[2:]))
	h.correlationID = int32(binary.BigEndian.Uint32(b[4:]))
	n := int16(binary.BigEndian.Uint16(b[8:]))
	b = b[10:]
	switch {
	case n == -1:
	case n < 0 || int(n) > len(b):
		return h, nil, fmt.Errorf("%w: client id length %d with %d bytes left", ErrFrame, n, len(b))
	default:
		h.clientID = string(b[:n])
		b = b[n:]
	}
	return h, b, nil
}

// skipTags consumes a tagged-field section (KIP-482) and returns the rest.
// Every length is checked against the bytes that remain.
func skipTags(b []byte) ([]byte, error) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: bad tagged field count", ErrFrame)
	}
	b = b[w:]
	for i := uint64(0); i < n; i++ {
		_, w := binary.Uvarint(b) // tag
		if w <= 0 {
			return nil, fmt.Errorf("%w: bad tag", ErrFrame)
		}
		b = b[w:]
		size, w := binary.Uvarint(b)
		if w <= 0 || size > uint64(len(b)-w) {
			return nil, fmt.Errorf("%w: tagged field size beyond frame", ErrFrame)
		}
		b = b[w+int(size):]
	}
	return b, nil
}

// decodeFrame turns the bytes of one frame (without its size prefix) into a
// frame ready to dispatch. It never panics on any input (see the fuzz tests);
// an error means the connection must be closed.
func decodeFrame(b []byte) (*frame, error) {
	h, rest, err := parseHeader(b)
	if err != nil {
		return nil, err
	}
	r := &Request{Key: h.key, Version: h.version, CorrelationID: h.correlationID, ClientID: h.clientID}
	entry, ok := lookupHandler(h.key)
	if h.key == kmsg.ApiVersions.Int16() && (!ok || h.version < entry.minVersion || h.version > entry.maxVersion) {
		// KIP-511: answer in v0 with UNSUPPORTED_VERSION and, as Kafka
		// does, ApiVersions' own range only, so the client retries with a
		// version we speak. NB: with every range, franz-go takes the v0
		// answer as final and so never learns the finalized features
		// (transaction.version), which only v3+ carries.
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: kmsg.ApiVersions.Int16(), MinVersion: 0, MaxVersion: 4}}
		if ok {
			resp.ApiKeys[0].MinVersion, resp.ApiKeys[0].MaxVersion = entry.minVersion, entry.maxVersion
		}
		r.Version = 0
		return &frame{req: r, early: resp, headerV0: true}, nil
	}
	if !ok {
		return nil, fmt.Errorf("%w: unsupported API key %d", ErrFrame, h.key)
	}
	if h.version < entry.minVersion || h.version > entry.maxVersion {
		return nil, fmt.Errorf("%w: unsupported version %d of %s (we speak %d-%d)",
			ErrFrame, h.version, kmsg.NameForKey(h.key), entry.minVersion, entry.maxVersion)
	}
	body := kmsg.RequestForKey(h.key)
	body.SetVersion(h.version)
	if body.IsFlexible() {
		if rest, err = skipTags(rest); err != nil {
			return nil, err
		}
	}
	if h.key == kmsg.Produce.Int16() {
		if err := checkProduceShape(rest, h.version); err != nil {
			return nil, err
		}
	}
	r.Body = body
	f := &frame{req: r, h: entry, headerV0: h.key == kmsg.ApiVersions.Int16()}
	if err := body.ReadFrom(rest); err != nil {
		if h.key == kmsg.ApiVersions.Int16() {
			// Kafka answers an undecodable ApiVersions with INVALID_REQUEST
			// rather than dropping the client.
			resp := kmsg.NewPtrApiVersionsResponse()
			resp.ErrorCode = kerr.InvalidRequest.Code
			resp.ApiKeys = supportedKeys()
			f.early = resp
			return f, nil
		}
		return nil, fmt.Errorf("%w: %s v%d body: %v", ErrFrame, kmsg.NameForKey(h.key), h.version, err)
	}
	return f, nil
}

// encodeResponse appends the framed response (size, header, body) to dst.
// For a Fetch response, dst is grown once to a bound of the encoded size
// first: appending megabytes of record batches to a small buffer would
// otherwise copy them again at every doubling.
func encodeResponse(dst []byte, correlationID int32, resp kmsg.Response, headerV0 bool) []byte {
	if n := encodedSizeHint(resp); n > 0 {
		dst = slices.Grow(dst, n)
	}
	return appendResponse(dst, correlationID, resp, headerV0)
}

// appendResponse is encodeResponse without the size hint.
func appendResponse(dst []byte, correlationID int32, resp kmsg.Response, headerV0 bool) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	if resp.IsFlexible() && !headerV0 {
		dst = append(dst, 0) // empty tagged-field section of response header v1
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// Per-element bounds of a Fetch response's encoding beyond its variable
// parts (topic names, record batches), over every version: fixed-width
// fields, array and bytes length prefixes (at most 5 bytes as uvarints),
// and a little room for tagged fields.
const (
	fetchFrameOverhead     = 4 + 4 + 1 + 64 // size, correlation id, header tags, top-level fields
	fetchTopicOverhead     = 5 + 16 + 5 + 8 // name length, topic id, partition count, tags
	fetchPartitionOverhead = 4 + 2 + 8 + 8 + 8 + 5 + 4 + 5 + 64
	fetchAbortedOverhead   = 8 + 8 + 1
)

// encodedSizeHint returns an upper bound of resp's framed encoding when that
// is worth presizing for (a Fetch response), and 0 otherwise.
func encodedSizeHint(resp kmsg.Response) int {
	fr, ok := resp.(*kmsg.FetchResponse)
	if !ok {
		return 0
	}
	n := fetchFrameOverhead
	for i := range fr.Topics {
		t := &fr.Topics[i]
		n += fetchTopicOverhead + len(t.Topic)
		for j := range t.Partitions {
			p := &t.Partitions[j]
			n += fetchPartitionOverhead + len(p.AbortedTransactions)*fetchAbortedOverhead + len(p.RecordBatches)
		}
	}
	return n
}

// conn serves one client connection with three goroutines, all owned by
// serve: the reader decodes frames ahead of the handler loop; the handler
// loop calls handlers one request at a time, in order; the writer writes
// responses in that same order. A handler may return a Deferred response
// (Produce waiting for its fsync): the handler loop then goes on with the
// next request while the writer waits for the deferred one, so pipelined
// produce requests share fsyncs, yet responses still leave in request
// order.
//
// Request memory: the reader charges every frame after the first to the
// connection's share (mem) and then to the server's budget before it
// allocates: the frame's bytes as they arrive, in doubling steps from
// frameReadStep, so a peer that announces a large frame and stops holds
// little more than what it sent; then, for requests other than Produce, what decoding
// may allocate. The handler loop gives the charge back once the handler
// has returned.
type conn struct {
	s      *Server
	nc     net.Conn
	remote string
	log    *slog.Logger
	mem    *byteBudget   // this connection's share of the request memory
	bufs   frameBufs     // read buffers kept for the next frames (framebufs.go)
	leases []*fetchLease // the handled request's fetch leases; handler loop only
	// plainTCP: nc is a plain TCP connection (no TLS), which Fetch
	// responses can be sent to from files (sendfile.go).
	plainTCP bool
	sess     *Session // security state; set before serve

	// lastActive is when a frame was last read or a response written
	// (unix nanoseconds); outstanding counts requests read and not yet
	// answered. A connection is idle when outstanding is 0 and lastActive
	// is older than ConnectionsMaxIdle. NB: the writer updates lastActive
	// before it decrements outstanding, so a reader that sees 0 also sees
	// the last write's time.
	lastActive  atomic.Int64
	outstanding atomic.Int64

	dmu sync.Mutex
	// stopping is set (under dmu) when the connection shuts down: the
	// deadlines set then stand, and later calls to setReadDeadline and
	// setWriteDeadline do nothing.
	stopping bool
}

// newConn returns the connection state for nc.
func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{s: s, nc: nc, remote: nc.RemoteAddr().String(), log: s.Logger, mem: newByteBudget(s.cfg.MaxConnInflightBytes)}
	_, c.plainTCP = nc.(*net.TCPConn)
	c.touch()
	return c
}

// touch records activity now.
func (c *conn) touch() { c.lastActive.Store(time.Now().UnixNano()) }

// setReadDeadline sets nc's read deadline unless the connection is
// shutting down.
func (c *conn) setReadDeadline(t time.Time) {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if !c.stopping {
		_ = c.nc.SetReadDeadline(t)
	}
}

// setWriteDeadline sets nc's write deadline unless the connection is
// shutting down (then the shutdown grace deadline stands).
func (c *conn) setWriteDeadline(t time.Time) {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if !c.stopping {
		_ = c.nc.SetWriteDeadline(t)
	}
}

// closeError is a reason to close the connection that the server counts
// and logs (see closeReason).
type closeError struct {
	reason closeReason
	err    error
}

func (e *closeError) Error() string { return e.err.Error() }
func (e *closeError) Unwrap() error { return e.err }

// frameReadStep is the first allocation (and charge) for the bytes of a
// frame larger than three times that; it grows by doubling as the bytes
// arrive (see readBody).
const frameReadStep = 64 << 10

// Deferred is a response whose ordering-relevant work is done (a produce's
// appends) but that may be written only after Wait returns (the appends
// are durable). Wait may update the response (error codes) before
// returning; the dispatcher encodes it afterwards.
type Deferred struct {
	kmsg.Response
	Wait func()
}

// writeTimeout bounds one response write to a peer that stopped reading.
const writeTimeout = 2 * time.Minute

// maxPendingResponses bounds the responses a connection holds (waiting for
// durability or for the socket) before its handler loop stops taking
// requests.
const maxPendingResponses = 8

// pendingResponse is one response queued for the writer.
type pendingResponse struct {
	f    *frame
	resp kmsg.Response
	wait func()
	done func()
	// files are the file ranges standing in for batches of a Fetch
	// response (sendfile.go); done closes them.
	files []leasedRange
}

// serve runs the connection until the peer goes away, a malformed frame
// arrives, or ctx is cancelled (server shutdown). It closes nc.
func (c *conn) serve(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ctx = context.WithValue(ctx, connKey{}, c) // for the handlers (fetchbufs.go)
	frames := make(chan *frame, 1)
	readErr := make(chan error, 1)
	go func() {
		err := c.readLoop(ctx, frames)
		// Counted before the connection closes, so that whoever sees it
		// closed sees it counted.
		var ce *closeError
		if errors.As(err, &ce) {
			c.s.metrics.closed(ce.reason)
			level := slog.LevelWarn
			if ce.reason == reasonIdle {
				level = slog.LevelInfo // routine: clients leave connections open
			}
			c.s.logLimited(level, string(ce.reason), "closing connection",
				"remote", c.remote, "reason", string(ce.reason), "err", err)
		}
		// The peer is gone (or sent garbage): a parked fetch need not wait
		// out its MaxWait for nobody.
		cancel()
		readErr <- err
		close(frames)
	}()
	// Unblock the reader when we stop for any reason, and give the writer
	// a last grace period for the responses in hand, so that a peer that
	// stopped reading cannot hold up shutdown.
	stop := context.AfterFunc(ctx, func() {
		c.dmu.Lock()
		defer c.dmu.Unlock()
		c.stopping = true
		_ = c.nc.SetReadDeadline(time.Now())
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.ShutdownWriteGrace))
	})
	defer stop()

	out := make(chan pendingResponse, maxPendingResponses)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop(ctx, out, cancel)
	}()

	for f := range frames {
		resp := f.early
		if av, ok := resp.(*kmsg.ApiVersionsResponse); ok && c.s.cfg.Cluster != nil && av.ErrorCode != kerr.UnsupportedVersion.Code {
			av.ApiKeys = withClusterOnlyKeys(av.ApiKeys)
		}
		var err error
		if resp == nil {
			resp, err = c.call(ctx, f)
		}
		// Handlers keep nothing of the request bytes once they return
		// (logs copy what they append), so the frame's charge goes back,
		// and a Produce frame's buffer is reused, unless the handler
		// panicked (its partition appends may still be running).
		if err != nil {
			f.buf = nil
		}
		c.release(f)
		if err != nil {
			// Rate-limited: unauthenticated peers can cause these at will.
			c.s.logLimited(slog.LevelWarn, "handler-close", "closing connection", "remote", c.remote, "api", kmsg.NameForKey(f.req.Key), "err", err)
			break
		}
		done, files := c.takeLeases() // read buffers and file ranges resp refers to (fetchbufs.go)
		if resp == nil {
			if done != nil {
				done()
			}
			c.answered() // acks=0 produce: no response at all
			continue
		}
		p := pendingResponse{f: f, resp: resp, done: done, files: files}
		if d, ok := resp.(*Deferred); ok {
			p.resp, p.wait = d.Response, d.Wait
		}
		select {
		case out <- p:
		case <-writerDone:
		}
		if f.req.closeAfter {
			break
		}
	}
	close(out)
	<-writerDone
	cancel()
	_ = c.nc.Close()
	if done, _ := c.takeLeases(); done != nil {
		done() // a handler that failed left its lease: close its file ranges
	}
	for f := range frames { // let the reader finish
		c.release(f)
	}
	c.dropBufs()
	var ce *closeError
	if err := <-readErr; err != nil && !errors.As(err, &ce) && !errors.Is(err, io.EOF) && ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
		c.log.Info("connection closed", "remote", c.remote, "err", err)
	}
}

// release gives back f's charge to the connection's and the server's
// request memory, and its pooled buffer if it has one. Nothing may use
// the request's byte slices afterwards.
func (c *conn) release(f *frame) {
	if f.buf != nil {
		c.putBuf(f.buf)
		f.buf = nil
	}
	if f.size > 0 {
		c.s.budget.release(f.size)
		c.mem.release(f.size)
		f.size = 0
	}
}

// answered records that a request's response has been written (or that it
// needs none).
func (c *conn) answered() {
	c.touch()
	c.outstanding.Add(-1)
}

// writeLoop writes queued responses in order until out is closed. On a
// write error it cancels the connection and drains the queue (still
// waiting on deferred responses, so no handler work is left running).
func (c *conn) writeLoop(ctx context.Context, out <-chan pendingResponse, cancel context.CancelFunc) {
	w := bufio.NewWriterSize(c.nc, 64<<10)
	var buf []byte
	var pieces pieceWriter
	failed := false
	for p := range out {
		if p.wait != nil {
			p.wait()
		}
		c.s.metrics.responseSent(p.f.req.Key, p.resp)
		if failed {
			if p.done != nil {
				p.done()
			}
			c.answered()
			continue
		}
		p.resp.SetVersion(p.f.req.Version)
		var vecs net.Buffers
		var files []filePiece
		if fr, ok := p.resp.(*kmsg.FetchResponse); ok {
			vecs, files, buf = encodeFetchSplicedFiles(buf, p.f.req.CorrelationID, fr, p.f.headerV0, p.files)
			if vecs == nil && len(p.files) > 0 {
				materialize(p.files) // encoded whole below: read the ranges
			}
		}
		if p.f.rawSASL {
			buf = appendRawSASL(buf[:0], p.resp)
		} else if vecs == nil {
			buf = encodeResponse(buf[:0], p.f.req.CorrelationID, p.resp, p.f.headerV0)
		}
		c.setWriteDeadline(time.Now().Add(writeTimeout))
		var err error
		if vecs != nil {
			// Large record batches go from the log's read buffers to the
			// socket in one vectored write, after what is buffered.
			if err = w.Flush(); err == nil {
				err = pieces.write(c.nc, vecs, files, c.s.metrics.sentFileBytes)
			}
		} else {
			_, err = w.Write(buf)
			// Flush only when no further response is ready, so that
			// pipelined responses share a write.
			if err == nil && len(out) == 0 {
				err = w.Flush()
			}
		}
		if p.done != nil {
			p.done()
		}
		if err != nil {
			failed = true
			cancel()
		}
		c.answered()
		if cap(buf) > 1<<20 {
			buf = nil // do not pin a large fetch buffer on an idle conn
		}
	}
	if !failed {
		_ = w.Flush()
	}
}

// call runs the handler for f, turning a panic into a closed connection
// rather than a dead broker.
func (c *conn) call(ctx context.Context, f *frame) (resp kmsg.Response, err error) {
	c.s.inFlight.Add(1)
	defer c.s.inFlight.Add(-1)
	c.s.metrics.request(f.req.Key)
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("handler panic", "api", kmsg.NameForKey(f.req.Key), "version", f.req.Version, "panic", p)
			resp, err = nil, fmt.Errorf("protocol: handler panic: %v", p)
		}
	}()
	return c.s.dispatch(ctx, f)
}

// readLoop reads frames until an error; it sends decoded frames on out.
func (c *conn) readLoop(ctx context.Context, out chan<- *frame) error {
	r := bufio.NewReaderSize(c.nc, 32<<10)
	first := true
	for {
		if err := c.awaitFrame(ctx, r); err != nil {
			return err
		}
		f, err := c.readSecured(ctx, r, first) // readFrame, with the session's limits
		if err != nil {
			return err
		}
		first = false
		c.outstanding.Add(1)
		c.touch()
		select {
		case out <- f:
		case <-ctx.Done():
			c.release(f)
			return ctx.Err()
		}
	}
}

// awaitFrame waits for the first byte of the next frame. It returns a
// closeError once the connection has been idle for ConnectionsMaxIdle.
func (c *conn) awaitFrame(ctx context.Context, r *bufio.Reader) error {
	idle := c.s.cfg.ConnectionsMaxIdle
	for {
		if idle > 0 {
			c.setReadDeadline(time.Unix(0, c.lastActive.Load()).Add(idle))
		} else {
			c.setReadDeadline(time.Time{})
		}
		_, err := r.Peek(1)
		if err == nil {
			return nil
		}
		if idle <= 0 || !errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() != nil {
			return err
		}
		if c.outstanding.Load() > 0 {
			c.touch() // a request in hand (a long poll, a join) is activity
			continue
		}
		if since := time.Since(time.Unix(0, c.lastActive.Load())); since >= idle {
			return &closeError{reason: reasonIdle,
				err: fmt.Errorf("protocol: connection idle for %v (limit %v)", since.Round(time.Millisecond), idle)}
		}
	}
}

// frameClock is a frame's read deadline: FrameReadTimeout from its first
// byte, pushed back by the time spent waiting for the connection's own
// earlier requests. The zero deadline means none.
type frameClock struct {
	deadline time.Time
}

// frameTimeout turns a read error past the frame's deadline into a
// closeError, leaving other errors (and shutdown) alone.
func (c *conn) frameTimeout(ctx context.Context, err error, what string) error {
	if ctx.Err() != nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	return &closeError{reason: reasonFrameTimeout,
		err: fmt.Errorf("protocol: %s not received within %v of the frame's first byte", what, c.s.cfg.FrameReadTimeout)}
}

// readFrame reads and decodes one frame whose first byte is buffered in r.
// Unless first is set, the frame is charged to the request memory (see
// conn); first frames are capped at FirstFrameMaxBytes instead.
func (c *conn) readFrame(ctx context.Context, r *bufio.Reader, first bool) (*frame, error) {
	cfg := &c.s.cfg
	var fc frameClock
	if cfg.FrameReadTimeout > 0 {
		fc.deadline = time.Now().Add(cfg.FrameReadTimeout)
	}
	c.setReadDeadline(fc.deadline)
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, c.frameTimeout(ctx, err, "the size prefix")
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	limit := cfg.MaxFrameBytes
	if first {
		limit = cfg.FirstFrameMaxBytes
	}
	if n < 0 || n > limit {
		return nil, &closeError{reason: reasonFrameTooLarge,
			err: fmt.Errorf("%w: frame of %d bytes exceeds the limit of %d", ErrFrame, n, limit)}
	}
	// What the frame may cost: its bytes, and for anything but Produce
	// (whose entries are bounded separately, see checkProduceShape) what
	// decoding them may allocate.
	charge := int64(n)
	produce := false
	if n >= 2 {
		kb, err := r.Peek(2)
		if err != nil {
			return nil, c.frameTimeout(ctx, err, fmt.Sprintf("the header of a %d-byte frame", n))
		}
		produce = int16(binary.BigEndian.Uint16(kb)) == kmsg.Produce.Int16()
		if key := int16(binary.BigEndian.Uint16(kb)); !produce {
			if n > cfg.MaxControlFrameBytes {
				return nil, &closeError{reason: reasonFrameTooLarge,
					err: fmt.Errorf("%w: %d-byte %s request exceeds the limit of %d for requests other than Produce",
						ErrFrame, n, kmsg.NameForKey(key), cfg.MaxControlFrameBytes)}
			}
			charge = min(charge*decodeAmplification, c.mem.total)
		}
	}
	if first && charge > int64(n) && n > firstControlFrameMax(cfg) {
		return nil, &closeError{reason: reasonFrameTooLarge,
			err: fmt.Errorf("%w: first frame of %d bytes, not a Produce, exceeds the first-frame limit of %d for requests other than Produce",
				ErrFrame, n, firstControlFrameMax(cfg))}
	}
	// A Produce frame's buffer is pooled: the produce handler keeps none
	// of its bytes once it returns (the log writes them out).
	buf, pooled, held, err := c.readBody(ctx, r, n, !first, produce, &fc)
	if err != nil {
		return nil, err
	}
	if !first && charge > held {
		if err := c.reserve(ctx, charge-held, &fc, n); err != nil {
			c.s.budget.release(held)
			c.mem.release(held)
			return nil, err
		}
		held = charge
	}
	f, err := decodeFrame(buf)
	if err != nil {
		if pooled != nil {
			c.putBuf(pooled)
		}
		c.s.budget.release(held)
		c.mem.release(held)
		// Rate-limited: a peer sending garbage in a loop must not flood
		// the log.
		c.s.logLimited(slog.LevelWarn, "malformed", "closing connection", "remote", c.remote, "err", err)
		return nil, err
	}
	f.req.Remote = c.remote
	f.size = held
	f.buf = pooled
	return f, nil
}

// firstControlFrameMax caps a first frame other than Produce: what decoding
// it may allocate stays within FirstFrameMaxBytes, but the cap is at least
// 4 KiB, so that a client's first ApiVersions or Metadata request fits
// however small FirstFrameMaxBytes is.
func firstControlFrameMax(cfg *Config) int32 {
	return min(max(cfg.FirstFrameMaxBytes/decodeAmplification, 4<<10), cfg.FirstFrameMaxBytes)
}

// readBody reads an n-byte frame body into a buffer that grows, by
// doubling from frameReadStep, as the bytes arrive; when charged, every
// step is first reserved from the request memory. A peer that announces a
// large frame and stops thus holds little: at most 6x what it sent (12x
// for a pooled buffer, see below). It returns the bytes, the pooled buffer
// holding them if any, and what they hold of the request memory.
//
// The steps below the whole frame are borrowed from the connection's kept
// buffers (framebufs.go) and given back
// once copied into the next: nothing but this function ever sees them.
// When pool is set (a Produce frame, whose handler keeps none of its bytes
// once it returns) and the frame is at least frameReadStep, the whole
// frame's buffer is borrowed too, from the smallest class that holds it
// (at most twice its size, all of it charged; at most maxPooledFrame and
// the connection's share), and the caller gives it back once the request
// has been handled (conn.release). Otherwise the
// whole frame is allocated, since decoded requests may keep slices of it.
func (c *conn) readBody(ctx context.Context, r *bufio.Reader, n int32, charged, pool bool, fc *frameClock) (buf []byte, pooled *[]byte, held int64, err error) {
	var step *[]byte // the borrowed buffer buf is, if any
	fail := func(err error) ([]byte, *[]byte, int64, error) {
		if step != nil {
			c.putBuf(step)
		}
		c.s.budget.release(held)
		c.mem.release(held)
		return nil, nil, 0, err
	}
	got := 0
	for got < int(n) {
		// Double, from frameReadStep; once that would reach a third of
		// the frame, take it all: a frame holds at most 6x the bytes it
		// has sent (12x in a pooled buffer; or 3 x frameReadStep), and
		// its bytes are copied less than once on the way.
		next := max(2*len(buf), frameReadStep)
		if 3*next >= int(n) {
			next = int(n)
		}
		whole := next == int(n)
		size := next // bytes the new buffer holds
		if whole && pool && next >= frameReadStep {
			// NB: never past what the connection may hold at all (its
			// share may be MaxFrameBytes exactly): such a frame would
			// wait for room that cannot exist.
			if ps := stepSize(next); ps <= maxPooledFrame && int64(ps) <= c.mem.total {
				size = ps
			}
		}
		if charged {
			if err := c.reserve(ctx, int64(size)-held, fc, n); err != nil {
				return fail(err)
			}
			held = int64(size)
		}
		var nb []byte
		var nstep *[]byte
		if size > next || !whole {
			nstep = c.getBuf(size)
			nb = (*nstep)[:next]
		} else {
			nb = make([]byte, next)
		}
		copy(nb, buf[:got])
		if step != nil {
			c.putBuf(step)
		}
		buf, step = nb, nstep
		m, err := io.ReadFull(r, buf[got:])
		got += m
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fail(c.frameTimeout(ctx, err, fmt.Sprintf("%d of the %d bytes", int(n)-got, n)))
		}
	}
	if buf == nil {
		buf = []byte{}
	}
	return buf, step, held, nil
}

// reserve takes n bytes of request memory for a frame of size bytes, from
// the connection's share and then from the server's budget. A wait for the
// connection's share (its own earlier requests) pushes fc's deadline back;
// a wait for the server's budget is bounded by it. Every wait is counted
// and logged.
func (c *conn) reserve(ctx context.Context, n int64, fc *frameClock, size int32) error {
	if !c.mem.tryAcquire(n) {
		c.s.metrics.waited(budgetConn)
		c.s.logLimited(slog.LevelInfo, "wait-"+budgetConn, "connection waits for request memory",
			"remote", c.remote, "budget", budgetConn, "bytes", n, "frame_bytes", size,
			"held", c.mem.inUse(), "limit", c.mem.total)
		start := time.Now()
		if err := c.mem.acquire(ctx, n); err != nil {
			return err
		}
		if !fc.deadline.IsZero() {
			fc.deadline = fc.deadline.Add(time.Since(start))
			c.setReadDeadline(fc.deadline)
		}
	}
	if c.s.budget.tryAcquire(n) {
		return nil
	}
	c.s.metrics.waited(budgetServer)
	c.s.logLimited(slog.LevelWarn, "wait-"+budgetServer, "connection waits for request memory",
		"remote", c.remote, "budget", budgetServer, "bytes", n, "frame_bytes", size,
		"held", c.s.budget.inUse(), "limit", c.s.budget.total)
	wctx := ctx
	if !fc.deadline.IsZero() {
		var cancel context.CancelFunc
		wctx, cancel = context.WithDeadline(ctx, fc.deadline)
		defer cancel()
	}
	if err := c.s.budget.acquire(wctx, n); err != nil {
		c.mem.release(n)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &closeError{reason: reasonFrameTimeout,
			err: fmt.Errorf("protocol: no room in the request memory (%d of %d bytes held) for %d bytes of a %d-byte frame within %v",
				c.s.budget.inUse(), c.s.budget.total, n, size, c.s.cfg.FrameReadTimeout)}
	}
	return nil
}
