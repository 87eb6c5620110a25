package cluster

// The controller listener: one TCP address per voter (its --controller-voters
// address) carries two protocols. Raft traffic between voters opens with the
// quorum transport's magic "WQR1"; everything else is the broker-to-
// controller RPC: Kafka-framed requests (int32 size, request header v1 or
// v2, a kmsg body) such as BrokerRegistration (62), BrokerHeartbeat (63),
// AllocateProducerIds (67), the admin requests brokers forward
// (CreateTopics, DeleteTopics, CreatePartitions, AlterConfigs,
// IncrementalAlterConfigs) and the metadata fetches of broker-only nodes
// (Fetch, see observer.go). A Kafka frame's size can never read "WQR1": that is
// 1.46 GB, beyond maxRPCFrame.
//
// The reply is a Kafka response frame whose header always carries tagged
// fields (Weir's own, understood only between Weir nodes):
//
//	tag 0: uvarint, the metadata offset at which the reply's changes are
//	       applied on the controller (0 when it changed nothing)
//	tag 1: string, an error that kept the controller from answering (then
//	       there is no body); the caller retries elsewhere or later
//
// Requests are sent at the highest version kmsg knows, so that the header
// is flexible.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxRPCFrame caps one RPC frame (a CreateTopics of many topics is the
// largest).
const maxRPCFrame = 16 << 20

// raftMagic opens every raft connection (see the quorum transport).
var raftMagic = []byte("WQR1")

// sniffTimeout bounds how long an accepted connection may take to send its
// first four bytes.
const sniffTimeout = 10 * time.Second

// errRemote marks an error the controller side reported (tag 1).
var errRemote = errors.New("cluster: controller could not answer")

// muxListener splits a controller listener into the raft listener (given to
// the quorum node) and the RPC listener.
type muxListener struct {
	ln   net.Listener
	raft *chanListener
	rpc  *chanListener
	log  *slog.Logger
	wg   sync.WaitGroup
}

func newMuxListener(ln net.Listener, log *slog.Logger) *muxListener {
	m := &muxListener{ln: ln, log: log, raft: newChanListener(ln.Addr()), rpc: newChanListener(ln.Addr())}
	m.wg.Add(1)
	go m.serve()
	return m
}

func (m *muxListener) serve() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.raft.shut()
			m.rpc.shut()
			return
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.sniff(c)
		}()
	}
}

func (m *muxListener) sniff(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(sniffTimeout))
	var head [4]byte
	if _, err := io.ReadFull(c, head[:]); err != nil {
		_ = c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	pc := &prefixConn{Conn: c, prefix: head[:]}
	to := m.rpc
	if bytes.Equal(head[:], raftMagic) {
		to = m.raft
	}
	if !to.put(pc) {
		_ = c.Close()
	}
}

// close closes the underlying listener and waits for the sniffers.
func (m *muxListener) close() {
	_ = m.ln.Close()
	m.wg.Wait()
}

// prefixConn replays bytes already read before the connection's own.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// chanListener is a net.Listener fed connections by a muxListener.
type chanListener struct {
	addr net.Addr
	c    chan net.Conn
	done chan struct{}
	once sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, c: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) put(c net.Conn) bool {
	select {
	case l.c <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) shut() { l.once.Do(func() { close(l.done) }) }

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.c:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error   { l.shut(); return nil }
func (l *chanListener) Addr() net.Addr { return l.addr }

// rpcHandler answers one RPC request: the response and the metadata offset
// its changes are applied at, or an error that kept it from answering.
type rpcHandler func(ctx context.Context, req kmsg.Request) (kmsg.Response, uint64, error)

// rpcServer serves the RPC side of the controller listener.
type rpcServer struct {
	ln     net.Listener
	handle rpcHandler
	log    *slog.Logger
	// gone, when set, is told the broker id of a connection that carried
	// a broker's registration or heartbeats once it ends (not when the
	// server closes it): the controller then checks whether the broker's
	// process is gone (liveness probes).
	gone func(broker int32)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{} // guarded by mu
}

func newRPCServer(ln net.Listener, handle rpcHandler, gone func(int32), log *slog.Logger) *rpcServer {
	ctx, cancel := context.WithCancel(context.Background())
	s := &rpcServer{ln: ln, handle: handle, gone: gone, log: log, ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.serve()
	return s
}

func (s *rpcServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			_ = c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serveConn(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			_ = c.Close()
		}()
	}
}

func (s *rpcServer) serveConn(c net.Conn) {
	r := bufio.NewReader(c)
	broker := int32(-1) // the broker whose registration or heartbeats this connection carries
	defer func() {
		if broker >= 0 && s.gone != nil && s.ctx.Err() == nil {
			s.gone(broker)
		}
	}()
	for {
		frame, err := readFrame(r)
		if err != nil {
			if !errors.Is(err, io.EOF) && s.ctx.Err() == nil {
				s.log.Debug("cluster: controller RPC connection closed", "remote", c.RemoteAddr().String(), "err", err)
			}
			return
		}
		req, corr, err := decodeRPCRequest(frame)
		if err != nil {
			s.log.Warn("cluster: bad controller RPC request", "remote", c.RemoteAddr().String(), "err", err)
			return
		}
		switch r := req.(type) {
		case *kmsg.BrokerHeartbeatRequest:
			broker = r.BrokerID
		case *kmsg.BrokerRegistrationRequest:
			broker = r.BrokerID
		}
		resp, applied, herr := s.handle(s.ctx, req)
		out := encodeRPCResponse(corr, resp, applied, herr)
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

func (s *rpcServer) close() {
	_ = s.ln.Close()
	s.mu.Lock()
	s.cancel()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func readFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 0 || n > maxRPCFrame {
		return nil, fmt.Errorf("cluster: RPC frame of %d bytes (at most %d)", n, maxRPCFrame)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("cluster: RPC frame: %w", err)
	}
	return b, nil
}

// decodeRPCRequest parses a request frame (without its size).
func decodeRPCRequest(b []byte) (kmsg.Request, int32, error) {
	if len(b) < 10 {
		return nil, 0, fmt.Errorf("cluster: RPC request header of %d bytes", len(b))
	}
	key := int16(binary.BigEndian.Uint16(b))
	ver := int16(binary.BigEndian.Uint16(b[2:]))
	corr := int32(binary.BigEndian.Uint32(b[4:]))
	idLen := int16(binary.BigEndian.Uint16(b[8:]))
	b = b[10:]
	if idLen > 0 {
		if int(idLen) > len(b) {
			return nil, corr, errors.New("cluster: RPC client id beyond the frame")
		}
		b = b[idLen:]
	}
	req := kmsg.RequestForKey(key)
	if req == nil || ver < 0 || ver > req.MaxVersion() {
		return nil, corr, fmt.Errorf("cluster: RPC request key %d version %d unknown", key, ver)
	}
	req.SetVersion(ver)
	if req.IsFlexible() {
		var err error
		if b, _, err = readTags(b); err != nil {
			return nil, corr, err
		}
	}
	if err := req.ReadFrom(b); err != nil {
		return nil, corr, fmt.Errorf("cluster: RPC %s request: %w", kmsg.NameForKey(key), err)
	}
	return req, corr, nil
}

// readTags skips a tagged-field section, returning the rest and the tags.
func readTags(b []byte) ([]byte, map[uint64][]byte, error) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)) {
		return nil, nil, errors.New("cluster: RPC tag count beyond the frame")
	}
	b = b[w:]
	var tags map[uint64][]byte
	for range n {
		tag, w := binary.Uvarint(b)
		if w <= 0 {
			return nil, nil, errors.New("cluster: RPC tag beyond the frame")
		}
		b = b[w:]
		size, w := binary.Uvarint(b)
		if w <= 0 || size > uint64(len(b)-w) {
			return nil, nil, errors.New("cluster: RPC tag size beyond the frame")
		}
		if tags == nil {
			tags = map[uint64][]byte{}
		}
		tags[tag] = b[w : w+int(size)]
		b = b[w+int(size):]
	}
	return b, tags, nil
}

func appendTag(b []byte, tag uint64, val []byte) []byte {
	b = binary.AppendUvarint(b, tag)
	b = binary.AppendUvarint(b, uint64(len(val)))
	return append(b, val...)
}

// encodeRPCResponse frames a reply: header with Weir's tags, then the body
// (none when herr is set).
func encodeRPCResponse(corr int32, resp kmsg.Response, applied uint64, herr error) []byte {
	b := make([]byte, 4, 256)
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	if herr != nil || resp == nil {
		msg := "no response"
		if herr != nil {
			msg = herr.Error()
		}
		b = append(b, 1)
		b = appendTag(b, 1, []byte(msg))
	} else {
		b = append(b, 1)
		b = appendTag(b, 0, binary.AppendUvarint(nil, applied))
		b = resp.AppendTo(b)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// rpcClient sends RPC requests to controllers, one connection per address,
// one request at a time on each.
type rpcClient struct {
	dial func(ctx context.Context, addr string) (net.Conn, error)

	mu    sync.Mutex
	conns map[string]*rpcConn // guarded by mu
}

type rpcConn struct {
	mu   sync.Mutex // held for a whole request
	c    net.Conn   // nil when not connected; guarded by mu
	r    *bufio.Reader
	corr int32
}

func newRPCClient(dial func(ctx context.Context, addr string) (net.Conn, error)) *rpcClient {
	return &rpcClient{dial: dial, conns: map[string]*rpcConn{}}
}

// call sends req to addr and returns the reply and the metadata offset it
// is applied at. The request's version is set to the highest kmsg knows.
func (cl *rpcClient) call(ctx context.Context, addr string, req kmsg.Request) (kmsg.Response, uint64, error) {
	cl.mu.Lock()
	rc := cl.conns[addr]
	if rc == nil {
		rc = &rpcConn{}
		cl.conns[addr] = rc
	}
	cl.mu.Unlock()

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.c == nil {
		c, err := cl.dial(ctx, addr)
		if err != nil {
			return nil, 0, fmt.Errorf("cluster: dial controller %s: %w", addr, err)
		}
		rc.c, rc.r = c, bufio.NewReader(c)
	}
	fail := func(err error) (kmsg.Response, uint64, error) {
		_ = rc.c.Close()
		rc.c = nil
		return nil, 0, fmt.Errorf("cluster: %s to controller %s: %w", kmsg.NameForKey(req.Key()), addr, err)
	}
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(30 * time.Second)
	}
	conn := rc.c
	_ = conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	req.SetVersion(req.MaxVersion())
	rc.corr++
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("weir-broker"))
	if _, err := rc.c.Write(f.AppendRequest(nil, req, rc.corr)); err != nil {
		return fail(err)
	}
	frame, err := readFrame(rc.r)
	if err != nil {
		return fail(err)
	}
	if len(frame) < 4 || int32(binary.BigEndian.Uint32(frame)) != rc.corr {
		return fail(errors.New("response does not match the request"))
	}
	rest, tags, err := readTags(frame[4:])
	if err != nil {
		return fail(err)
	}
	if msg, ok := tags[1]; ok {
		return nil, 0, fmt.Errorf("%w: %s", errRemote, msg)
	}
	applied, _ := binary.Uvarint(tags[0])
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(rest); err != nil {
		return fail(err)
	}
	return resp, applied, nil
}

func (cl *rpcClient) close() {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for _, rc := range cl.conns {
		rc.mu.Lock()
		if rc.c != nil {
			_ = rc.c.Close()
			rc.c = nil
		}
		rc.mu.Unlock()
	}
}
