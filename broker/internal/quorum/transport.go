package quorum

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Wire format between voters. A connection carries messages one way, from
// the node that dialed it; it opens with a handshake:
//
//	magic      [4]byte "WQR1"
//	from, to   uint64  big-endian node ids
//	clusterLen uint16  big-endian, then the cluster id
//
// and goes on with frames:
//
//	length   uint32  big-endian payload length, at most Options.MaxFrameBytes
//	checksum uint32  big-endian CRC-32C of the payload
//	payload  []byte  a protobuf raftpb.Message
//
// The acceptor refuses a handshake for another cluster or node, and closes
// the connection at the first frame that is too long, fails its checksum or
// does not decode, or a message that is not from a voter to this node.
var handshakeMagic = [4]byte{'W', 'Q', 'R', '1'}

const (
	frameHeaderSize  = 8
	handshakeTimeout = 10 * time.Second
	maxClusterIDLen  = 1 << 10
)

// report is a delivery outcome raft is told of: a peer found unreachable,
// or a snapshot sent (ok) or lost.
type report struct {
	to   NodeID
	snap bool
	ok   bool
}

// transport moves raft messages between voters.
type transport struct {
	id      NodeID
	cluster string
	opts    *Options
	log     *slog.Logger
	ln      net.Listener
	voters  map[NodeID]bool
	peers   map[NodeID]*peer // immutable after newTransport
	deliver chan<- *pb.Message
	m       *metrics

	stopc  chan struct{}
	ctx    context.Context // canceled by close: ends dials
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu sync.Mutex
	// conns are the open connections, both ways, closed by close.
	// Guarded by mu. Invariant: empty once closed is set.
	conns  map[net.Conn]struct{}
	closed bool // guarded by mu

	repMu   sync.Mutex
	reports []report // guarded by repMu
	// reportc has a value whenever reports may be non-empty.
	reportc chan struct{}
}

// peer is the outbound side of one link: a queue and the goroutine that
// drains it into a connection.
type peer struct {
	id   NodeID
	addr string
	q    chan *pb.Message
}

func newTransport(o *Options, cluster string, ln net.Listener, deliver chan<- *pb.Message, m *metrics) *transport {
	ctx, cancel := context.WithCancel(context.Background())
	t := &transport{
		id: o.ID, cluster: cluster, opts: o, log: o.Logger, ln: ln, deliver: deliver, m: m,
		voters: map[NodeID]bool{}, peers: map[NodeID]*peer{},
		stopc: make(chan struct{}), ctx: ctx, cancel: cancel,
		conns: map[net.Conn]struct{}{}, reportc: make(chan struct{}, 1),
	}
	for _, v := range o.Voters {
		t.voters[v.ID] = true
		if v.ID != o.ID {
			t.peers[v.ID] = &peer{id: v.ID, addr: v.Addr, q: make(chan *pb.Message, o.SendQueue)}
		}
	}
	return t
}

func (t *transport) start() {
	t.wg.Add(1)
	go t.serve()
	for _, p := range t.peers {
		t.wg.Add(1)
		go t.runPeer(p)
	}
}

// close stops every goroutine and closes every connection and the listener,
// and waits.
func (t *transport) close() {
	close(t.stopc)
	t.cancel()
	_ = t.ln.Close()
	t.mu.Lock()
	t.closed = true
	for c := range t.conns {
		_ = c.Close()
		delete(t.conns, c)
	}
	t.mu.Unlock()
	t.wg.Wait()
}

// track registers c to be closed by close; false if already closed (c is
// then closed).
func (t *transport) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		_ = c.Close()
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *transport) untrack(c net.Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
	_ = c.Close()
}

func (t *transport) report(r report) {
	t.repMu.Lock()
	t.reports = append(t.reports, r)
	t.repMu.Unlock()
	select {
	case t.reportc <- struct{}{}:
	default:
	}
}

func (t *transport) takeReports() []report {
	t.repMu.Lock()
	defer t.repMu.Unlock()
	r := t.reports
	t.reports = nil
	return r
}

// send queues msgs for their peers without blocking; a message that does not
// fit is dropped (raft retransmits) and its peer reported unreachable.
func (t *transport) send(msgs []*pb.Message) {
	for _, m := range msgs {
		p := t.peers[m.GetTo()]
		if p == nil {
			t.log.Warn("quorum: message to an unknown node dropped", "to", m.GetTo(), "type", m.GetType().String())
			continue
		}
		select {
		case p.q <- m:
		default:
			t.dropped(p, m)
		}
	}
}

func (t *transport) dropped(p *peer, m *pb.Message) {
	t.m.messagesDropped.Inc()
	if m.GetType() == pb.MsgSnap {
		t.report(report{to: p.id, snap: true})
	} else {
		t.report(report{to: p.id})
	}
}

// runPeer dials p when there is something to send, writes frames until the
// connection fails, and dials again with backoff. Messages that arrive
// while p cannot be reached are dropped.
func (t *transport) runPeer(p *peer) {
	defer t.wg.Done()
	backoff := t.opts.DialBackoff
	rng := rand.New(rand.NewPCG(p.id, t.id))
	for {
		var first *pb.Message
		select {
		case first = <-p.q:
		case <-t.stopc:
			return
		}
		c, err := t.dial(p)
		if err != nil {
			t.m.dialFailures.Inc()
			t.log.Debug("quorum: dial failed", "peer", p.id, "addr", p.addr, "err", err)
			t.dropped(p, first)
			t.drain(p)
			// Wait between backoff/2 and backoff, then double it.
			wait := backoff/2 + time.Duration(rng.Int64N(int64(backoff/2)+1))
			backoff = min(2*backoff, t.opts.MaxDialBackoff)
			timer := time.NewTimer(wait)
			select {
			case <-timer.C:
			case <-t.stopc:
				timer.Stop()
				return
			}
			continue
		}
		backoff = t.opts.DialBackoff
		err = t.writeLoop(p, c, first)
		t.untrack(c)
		select {
		case <-t.stopc:
			return
		default:
		}
		t.log.Debug("quorum: connection to peer lost", "peer", p.id, "err", err)
		t.report(report{to: p.id})
	}
}

// drain drops what is queued for p.
func (t *transport) drain(p *peer) {
	for {
		select {
		case m := <-p.q:
			t.dropped(p, m)
		default:
			return
		}
	}
}

func (t *transport) dial(p *peer) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(t.ctx, handshakeTimeout)
	defer cancel()
	c, err := t.opts.Dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, fmt.Errorf("quorum: dial node %d at %s: %w", p.id, p.addr, err)
	}
	if !t.track(c) {
		return nil, ErrClosed
	}
	hs := make([]byte, 0, 22+len(t.cluster))
	hs = append(hs, handshakeMagic[:]...)
	hs = binary.BigEndian.AppendUint64(hs, t.id)
	hs = binary.BigEndian.AppendUint64(hs, p.id)
	hs = binary.BigEndian.AppendUint16(hs, uint16(len(t.cluster)))
	hs = append(hs, t.cluster...)
	_ = c.SetWriteDeadline(time.Now().Add(t.opts.WriteTimeout))
	if _, err := c.Write(hs); err != nil {
		t.untrack(c)
		return nil, fmt.Errorf("quorum: handshake with node %d at %s: %w", p.id, p.addr, err)
	}
	return c, nil
}

// writeLoop writes first and whatever p's queue holds, flushing when the
// queue is empty, until a write fails or the transport stops.
func (t *transport) writeLoop(p *peer, c net.Conn, first *pb.Message) error {
	bw := bufio.NewWriterSize(c, 64<<10)
	var (
		buf   []byte
		snaps int // snapshots written since the last flush
		m     = first
	)
	for {
		var err error
		buf, err = t.appendFrame(buf[:0], m)
		if err != nil {
			t.log.Error("quorum: message not sent", "peer", p.id, "err", err)
			t.dropped(p, m)
		} else {
			if m.GetType() == pb.MsgSnap {
				snaps++
			}
			if _, err := bw.Write(buf); err != nil {
				t.failSnaps(p, snaps)
				return err
			}
			t.m.messagesSent.Inc()
		}
		select {
		case m = <-p.q:
			continue
		default:
		}
		_ = c.SetWriteDeadline(time.Now().Add(t.opts.WriteTimeout))
		if err := bw.Flush(); err != nil {
			t.failSnaps(p, snaps)
			return err
		}
		for ; snaps > 0; snaps-- {
			t.report(report{to: p.id, snap: true, ok: true})
		}
		select {
		case m = <-p.q:
		case <-t.stopc:
			return ErrClosed
		}
	}
}

func (t *transport) failSnaps(p *peer, n int) {
	for ; n > 0; n-- {
		t.report(report{to: p.id, snap: true})
	}
}

func (t *transport) appendFrame(dst []byte, m *pb.Message) ([]byte, error) {
	return appendFrame(dst, m, t.opts.MaxFrameBytes)
}

// appendFrame appends m's frame to dst; a frame above maxBytes is an error.
func appendFrame(dst []byte, m *pb.Message, maxBytes int) ([]byte, error) {
	dst = append(dst, make([]byte, frameHeaderSize)...)
	dst, err := proto.MarshalOptions{}.MarshalAppend(dst, m)
	if err != nil {
		return dst, fmt.Errorf("quorum: encode %s to node %d: %w", m.GetType(), m.GetTo(), err)
	}
	n := len(dst) - frameHeaderSize
	if n > maxBytes {
		return dst, fmt.Errorf("quorum: %s to node %d is %d bytes, above the frame cap of %d (raise MaxFrameBytes)",
			m.GetType(), m.GetTo(), n, maxBytes)
	}
	binary.BigEndian.PutUint32(dst, uint32(n))
	binary.BigEndian.PutUint32(dst[4:], crc32.Checksum(dst[frameHeaderSize:], castagnoli))
	return dst, nil
}

// serve accepts connections from other voters.
func (t *transport) serve() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			select {
			case <-t.stopc:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			t.log.Warn("quorum: accept failed", "addr", t.ln.Addr().String(), "err", err)
			timer := time.NewTimer(10 * time.Millisecond)
			select {
			case <-timer.C:
			case <-t.stopc:
				timer.Stop()
				return
			}
			continue
		}
		if !t.track(c) {
			return
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			defer t.untrack(c)
			if err := t.readConn(c); err != nil {
				select {
				case <-t.stopc:
				default:
					t.log.Debug("quorum: inbound connection closed", "remote", c.RemoteAddr().String(), "err", err)
				}
			}
		}()
	}
}

// readConn checks the handshake and delivers c's messages until it fails.
func (t *transport) readConn(c net.Conn) error {
	br := bufio.NewReaderSize(c, 64<<10)
	_ = c.SetReadDeadline(time.Now().Add(handshakeTimeout))
	var hs [22]byte
	if _, err := io.ReadFull(br, hs[:]); err != nil {
		return fmt.Errorf("quorum: read handshake: %w", err)
	}
	if [4]byte(hs[:4]) != handshakeMagic {
		return fmt.Errorf("quorum: handshake from %s: bad magic %q", c.RemoteAddr(), hs[:4])
	}
	from := binary.BigEndian.Uint64(hs[4:])
	to := binary.BigEndian.Uint64(hs[12:])
	n := int(binary.BigEndian.Uint16(hs[20:]))
	if n > maxClusterIDLen {
		return fmt.Errorf("quorum: handshake from %s: cluster id of %d bytes", c.RemoteAddr(), n)
	}
	cid := make([]byte, n)
	if _, err := io.ReadFull(br, cid); err != nil {
		return fmt.Errorf("quorum: read handshake: %w", err)
	}
	switch {
	case string(cid) != t.cluster:
		t.log.Warn("quorum: connection from another cluster refused", "remote", c.RemoteAddr().String(),
			"their_cluster", string(cid), "our_cluster", t.cluster, "their_node", from)
		return fmt.Errorf("quorum: handshake from node %d: cluster %q, not %q", from, cid, t.cluster)
	case to != t.id:
		t.log.Warn("quorum: connection for another node refused", "remote", c.RemoteAddr().String(), "for_node", to, "our_node", t.id)
		return fmt.Errorf("quorum: handshake from node %d is for node %d, not %d", from, to, t.id)
	case !t.voters[from] || from == t.id:
		return fmt.Errorf("quorum: handshake from node %d, which is not another voter", from)
	}
	_ = c.SetReadDeadline(time.Time{})
	for {
		m, err := readFrame(br, t.opts.MaxFrameBytes)
		if err != nil {
			return fmt.Errorf("%w (connection from node %d)", err, from)
		}
		if m.GetFrom() != from || m.GetTo() != t.id {
			return fmt.Errorf("quorum: message from %d to %d on node %d's connection to %d", m.GetFrom(), m.GetTo(), from, t.id)
		}
		select {
		case t.deliver <- m:
		case <-t.stopc:
			return ErrClosed
		}
	}
}

// readFrame reads one frame. The length is checked against maxBytes before
// anything is allocated.
func readFrame(r io.Reader, maxBytes int) (*pb.Message, error) {
	var hdr [frameHeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(hdr[:])
	if uint64(size) > uint64(maxBytes) {
		return nil, fmt.Errorf("quorum: frame of %d bytes, above the cap of %d", size, maxBytes)
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("quorum: frame of %d bytes cut short: %w", size, err)
	}
	if want, got := binary.BigEndian.Uint32(hdr[4:]), crc32.Checksum(buf, castagnoli); want != got {
		return nil, fmt.Errorf("quorum: frame checksum mismatch (stored %#08x, computed %#08x)", want, got)
	}
	m := &pb.Message{}
	if err := proto.Unmarshal(buf, m); err != nil {
		return nil, fmt.Errorf("quorum: frame does not decode: %w", err)
	}
	return m, nil
}
