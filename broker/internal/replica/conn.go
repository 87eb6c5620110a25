package replica

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// conn is one Kafka-protocol connection to another broker, one request at
// a time.
type conn struct {
	c    net.Conn
	corr int32
	fmt  *kmsg.RequestFormatter
	buf  []byte // the request being sent
	// resp holds the last response's frame: a response's byte fields
	// (a fetch's record batches) are slices of it, valid until the next
	// request on this conn.
	resp []byte
	// respHint is the largest response the caller expects (a follower's
	// fetch: what its partitions may return): when resp must grow, it
	// grows to this at once. Each larger buffer is memory touched afresh;
	// growing by the sizes that happen to arrive (1 MiB, 2, 7, 8, ...)
	// touched several times the biggest one.
	respHint int
}

// maxKeptResp bounds the response buffer a conn keeps between requests; a
// larger frame gets a buffer of its own.
const maxKeptResp = 32 << 20

func dialConn(ctx context.Context, dial func(context.Context, string) (net.Conn, error), addr string) (*conn, error) {
	c, err := dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	return &conn{c: c, fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID("weir-replica"))}, nil
}

func (c *conn) close() { _ = c.c.Close() }

// request sends req and reads its response, within ctx's deadline. The
// response's byte slices share the conn's buffer: they stay valid only
// until the next request (the follower fetcher, which is done with a
// response before it sends the next request on its conn).
func (c *conn) request(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	return c.roundTrip(ctx, req, true, nil)
}

// requestThen is request, calling sent (if not nil) once req is written,
// while the response is awaited.
func (c *conn) requestThen(ctx context.Context, req kmsg.Request, sent func()) (kmsg.Response, error) {
	return c.roundTrip(ctx, req, true, sent)
}

// requestOwned is request with the response read into a frame of its own,
// valid for as long as the caller keeps it: for a conn that goes back to
// a pool, where another caller's request may reuse it at once.
func (c *conn) requestOwned(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	return c.roundTrip(ctx, req, false, nil)
}

func (c *conn) roundTrip(ctx context.Context, req kmsg.Request, shared bool, sent func()) (kmsg.Response, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(30 * time.Second)
	}
	if err := c.c.SetDeadline(dl); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c.corr++
	c.buf = c.fmt.AppendRequest(c.buf[:0], req, c.corr)
	if _, err := c.c.Write(c.buf); err != nil {
		return nil, err
	}
	if sent != nil {
		sent()
	}
	var sz [4]byte
	if _, err := io.ReadFull(c.c, sz[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(sz[:])
	if n < 4 || n > 256<<20 {
		return nil, fmt.Errorf("replica: response frame of %d bytes", n)
	}
	// NB: reusing the buffer spares a zeroed allocation per response: a
	// follower's fetch responses are its leader's batches, megabytes each.
	var body []byte
	switch {
	case !shared:
		body = make([]byte, n)
	case cap(c.resp) >= int(n):
		body = c.resp
	case n > maxKeptResp:
		body = make([]byte, n)
	default:
		body = make([]byte, max(int(n), min(c.respHint, maxKeptResp)))
		c.resp = body
	}
	body = body[:n]
	if _, err := io.ReadFull(c.c, body); err != nil {
		return nil, err
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != c.corr {
		return nil, fmt.Errorf("replica: response correlation id %d, want %d", corr, c.corr)
	}
	body = body[4:]
	resp := req.ResponseKind()
	if resp.IsFlexible() {
		var err error
		if body, err = skipTags(body); err != nil {
			return nil, err
		}
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("replica: decoding %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	return resp, nil
}

// skipTags skips a tagged-field section.
func skipTags(b []byte) ([]byte, error) {
	n, w := binary.Uvarint(b)
	if w <= 0 {
		return nil, errors.New("replica: bad tag count")
	}
	b = b[w:]
	for range n {
		_, w := binary.Uvarint(b)
		if w <= 0 {
			return nil, errors.New("replica: bad tag")
		}
		b = b[w:]
		sz, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < sz {
			return nil, errors.New("replica: bad tag size")
		}
		b = b[w+int(sz):]
	}
	return b, nil
}
