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
	"slices"
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
	// size is the frame's charge against the server's byte budget,
	// released once the request has been handled.
	size int64
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
		// KIP-511: answer in v0 with UNSUPPORTED_VERSION and our ranges,
		// so the client can retry with a version we speak.
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		resp.ApiKeys = supportedKeys()
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
type conn struct {
	s      *Server
	nc     net.Conn
	remote string
	log    *slog.Logger
}

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
}

// serve runs the connection until the peer goes away, a malformed frame
// arrives, or ctx is cancelled (server shutdown). It closes nc.
func (c *conn) serve(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	frames := make(chan *frame, 1)
	readErr := make(chan error, 1)
	go func() {
		err := c.readLoop(ctx, frames)
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
		var err error
		if resp == nil {
			resp, err = c.call(ctx, f)
		}
		// Handlers keep nothing of the request bytes once they return
		// (logs copy what they append), so the frame's budget goes back.
		c.s.budget.release(f.size)
		f.size = 0
		if err != nil {
			c.log.Warn("closing connection", "remote", c.remote, "api", kmsg.NameForKey(f.req.Key), "err", err)
			break
		}
		if resp == nil {
			continue // acks=0 produce: no response at all
		}
		p := pendingResponse{f: f, resp: resp}
		if d, ok := resp.(*Deferred); ok {
			p.resp, p.wait = d.Response, d.Wait
		}
		select {
		case out <- p:
		case <-writerDone:
		}
	}
	close(out)
	<-writerDone
	cancel()
	_ = c.nc.Close()
	for f := range frames { // let the reader finish
		c.s.budget.release(f.size)
	}
	if err := <-readErr; err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
		c.log.Info("connection closed", "remote", c.remote, "err", err)
	}
}

// writeLoop writes queued responses in order until out is closed. On a
// write error it cancels the connection and drains the queue (still
// waiting on deferred responses, so no handler work is left running).
func (c *conn) writeLoop(ctx context.Context, out <-chan pendingResponse, cancel context.CancelFunc) {
	w := bufio.NewWriterSize(c.nc, 64<<10)
	var buf []byte
	failed := false
	for p := range out {
		if p.wait != nil {
			p.wait()
		}
		c.s.metrics.responseSent(p.f.req.Key, p.resp)
		if failed {
			continue
		}
		p.resp.SetVersion(p.f.req.Version)
		var vecs net.Buffers
		if fr, ok := p.resp.(*kmsg.FetchResponse); ok {
			vecs, buf = encodeFetchSpliced(buf, p.f.req.CorrelationID, fr, p.f.headerV0)
		}
		if vecs == nil {
			buf = encodeResponse(buf[:0], p.f.req.CorrelationID, p.resp, p.f.headerV0)
		}
		if ctx.Err() == nil { // after cancellation the shutdown grace deadline stands
			_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
		}
		var err error
		if vecs != nil {
			// Large record batches go from the log's read buffers to the
			// socket in one vectored write, after what is buffered.
			if err = w.Flush(); err == nil {
				_, err = vecs.WriteTo(c.nc)
			}
		} else {
			_, err = w.Write(buf)
			// Flush only when no further response is ready, so that
			// pipelined responses share a write.
			if err == nil && len(out) == 0 {
				err = w.Flush()
			}
		}
		if err != nil {
			failed = true
			cancel()
		}
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
	return c.s.handlerFor(f)(ctx, c.s, f.req)
}

// readLoop reads frames until an error; it sends decoded frames on out.
func (c *conn) readLoop(ctx context.Context, out chan<- *frame) error {
	r := bufio.NewReaderSize(c.nc, 32<<10)
	limit := c.s.cfg.FirstFrameMaxBytes
	var size [4]byte
	for {
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return err
		}
		n := int32(binary.BigEndian.Uint32(size[:]))
		if n < 0 || n > limit {
			return fmt.Errorf("%w: frame of %d bytes exceeds the limit of %d", ErrFrame, n, limit)
		}
		// Charge the budget before allocating: the frame's bytes, and for
		// anything but Produce (whose entries are bounded separately, see
		// checkProduceShape) what decoding them may allocate.
		charge := int64(n)
		if n >= 2 {
			key, err := r.Peek(2)
			if err != nil {
				return err
			}
			if int16(binary.BigEndian.Uint16(key)) != kmsg.Produce.Int16() {
				if n > c.s.cfg.MaxControlFrameBytes {
					return fmt.Errorf("%w: %d-byte %s request exceeds the limit of %d for requests other than Produce",
						ErrFrame, n, kmsg.NameForKey(int16(binary.BigEndian.Uint16(key))), c.s.cfg.MaxControlFrameBytes)
				}
				charge = min(charge*decodeAmplification, c.s.budget.total)
			}
		}
		if !c.s.budget.acquire(ctx, charge) {
			return ctx.Err()
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			c.s.budget.release(charge)
			return err
		}
		f, err := decodeFrame(buf)
		if err != nil {
			c.s.budget.release(charge)
			c.log.Warn("closing connection", "remote", c.remote, "err", err)
			return err
		}
		f.req.Remote = c.remote
		f.size = charge
		limit = c.s.cfg.MaxFrameBytes
		select {
		case out <- f:
		case <-ctx.Done():
			c.s.budget.release(f.size)
			return ctx.Err()
		}
	}
}
