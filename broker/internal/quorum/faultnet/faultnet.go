// Package faultnet is a fault layer for node-to-node links in tests: every
// connection a node dials goes through a Network, which can drop, delay,
// blackhole or cut each direction of each link, and heal it. It works on
// loopback connections of any protocol; the dialing side's wrapper applies
// the faults of both directions of its connection.
//
// A byte stream cannot lose a piece and go on as if nothing happened, so a
// connection that loses bytes (a drop, or a blackhole that is then healed)
// is closed at its next use: like TCP, a connection delivers everything in
// order or breaks, and the protocol on top reconnects.
//
// Hold keeps chosen writes in flight until Release: the bytes a sender
// handed over arrive late, even after the sender gave up and closed its
// connection, as what TCP accepted before a close still arrives. It makes
// a late request, long after its sender stopped waiting for it.
package faultnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// NodeID names a node of the network.
type NodeID = uint64

// ErrCut is returned by dials and writes on a cut link.
var ErrCut = errors.New("faultnet: link cut")

type link struct{ from, to NodeID }

// rule is the fault on one direction of a link.
type rule struct {
	// drop is the probability that a write breaks its connection (its
	// bytes, and whatever was in flight, are lost).
	drop float64
	// delay holds every write (and, on the other side, read) back.
	delay time.Duration
	// blackhole swallows the bytes: writes succeed, nothing arrives.
	blackhole bool
	// cut refuses dials and breaks connections.
	cut bool
	// hold, if not nil, says which writes are held until Release.
	hold func([]byte) bool
}

// Network is the set of links between registered nodes. Its methods are
// safe for concurrent use.
type Network struct {
	log *slog.Logger

	mu    sync.Mutex
	rng   *rand.Rand          // guarded by mu
	addrs map[string]NodeID   // guarded by mu
	rules map[link]rule       // guarded by mu
	conns map[*conn]struct{}  // guarded by mu
	stats map[link]*LinkStats // guarded by mu
}

// LinkStats counts what one direction of a link did.
type LinkStats struct {
	Writes, Dropped, Blackholed, Delayed, Refused, Held int
}

// New returns a network whose random choices come from seed (log it).
func New(seed uint64, log *slog.Logger) *Network {
	if log == nil {
		log = slog.Default()
	}
	return &Network{log: log, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		addrs: map[string]NodeID{}, rules: map[link]rule{}, conns: map[*conn]struct{}{}, stats: map[link]*LinkStats{}}
}

// Register says that node id listens on addr.
func (n *Network) Register(id NodeID, addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.addrs[addr] = id
}

func (n *Network) set(from, to NodeID, f func(*rule)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	r := n.rules[link{from, to}]
	f(&r)
	n.rules[link{from, to}] = r
	if r.cut {
		for c := range n.conns {
			if (c.from == from && c.to == to) || (c.from == to && c.to == from) {
				c.broken.Store(true)
				_ = c.Conn.Close()
			}
		}
	}
}

// Drop makes each write from one node to another break its connection with
// probability p (0 stops dropping).
func (n *Network) Drop(from, to NodeID, p float64) { n.set(from, to, func(r *rule) { r.drop = p }) }

// Delay holds every chunk of bytes from one node to another back by d.
func (n *Network) Delay(from, to NodeID, d time.Duration) {
	n.set(from, to, func(r *rule) { r.delay = d })
}

// Blackhole swallows everything from one node to another: writes succeed
// and nothing arrives, as with a switch that silently drops the packets.
func (n *Network) Blackhole(from, to NodeID) { n.set(from, to, func(r *rule) { r.blackhole = true }) }

// Cut refuses dials from one node to another and breaks the connections
// between them (in the other direction, too: a connection carrying
// requests one way carries responses the other).
func (n *Network) Cut(from, to NodeID) { n.set(from, to, func(r *rule) { r.cut = true }) }

// Hold keeps back the writes from one node to another that match says
// (nil: every write) on the connections from dials: Write returns at once,
// as if the bytes were sent, and they arrive, in order, when Release is
// called. A connection holding bytes holds every later write too, so that
// its stream stays in order, and its Close keeps it open for Release. Heal
// stops holding new writes; what is held stays so until Release.
func (n *Network) Hold(from, to NodeID, match func([]byte) bool) {
	if match == nil {
		match = func([]byte) bool { return true }
	}
	n.set(from, to, func(r *rule) { r.hold = match })
}

// releaseAnswerWait bounds how long Release waits for a peer to answer
// the bytes it delivered on a connection its dialer has closed.
const releaseAnswerWait = 10 * time.Second

// Release delivers the bytes held on the connections from one node to
// another, in order, and returns how many connections had some. A
// connection its dialer closed meanwhile is closed once the peer answers
// (its first byte back, read and dropped; at most releaseAnswerWait), so
// that when Release returns the peer has handled what arrived late.
func (n *Network) Release(from, to NodeID) (int, error) {
	n.mu.Lock()
	var cs []*conn
	for c := range n.conns {
		if c.from == from && c.to == to {
			cs = append(cs, c)
		}
	}
	n.mu.Unlock()
	released := 0
	var errs []error
	for _, c := range cs {
		ok, err := c.release()
		if ok {
			released++
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return released, errors.Join(errs...)
}

// Isolate blackholes every direction of every link of id.
func (n *Network) Isolate(id NodeID) {
	for _, other := range n.nodes() {
		if other != id {
			n.Blackhole(id, other)
			n.Blackhole(other, id)
		}
	}
}

// Heal removes the faults of one direction of a link.
func (n *Network) Heal(from, to NodeID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.rules, link{from, to})
}

// HealAll removes every fault.
func (n *Network) HealAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.rules = map[link]rule{}
}

// Stats returns the counts of one direction of a link.
func (n *Network) Stats(from, to NodeID) LinkStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	if s := n.stats[link{from, to}]; s != nil {
		return *s
	}
	return LinkStats{}
}

func (n *Network) nodes() []NodeID {
	n.mu.Lock()
	defer n.mu.Unlock()
	var ids []NodeID
	seen := map[NodeID]bool{}
	for _, id := range n.addrs {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids
}

// decide returns the rule for one direction, counts the write, and whether
// a drop fires.
func (n *Network) decide(from, to NodeID) (rule, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	r := n.rules[link{from, to}]
	s := n.stats[link{from, to}]
	if s == nil {
		s = &LinkStats{}
		n.stats[link{from, to}] = s
	}
	s.Writes++
	drop := r.drop > 0 && n.rng.Float64() < r.drop
	switch {
	case r.cut:
		s.Refused++
	case r.blackhole:
		s.Blackholed++
	case drop:
		s.Dropped++
	case r.delay > 0:
		s.Delayed++
	}
	return r, drop
}

// countHeld counts a held write.
func (n *Network) countHeld(from, to NodeID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stats[link{from, to}].Held++
}

// Dialer returns the dialer node from uses: it dials through the network.
func (n *Network) Dialer(from NodeID) *Dialer { return &Dialer{n: n, from: from} }

// Dialer dials through a Network. It has the DialContext method of
// net.Dialer.
type Dialer struct {
	n    *Network
	from NodeID
	d    net.Dialer
}

// DialContext dials addr, which must be a registered node's.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.n.mu.Lock()
	to, ok := d.n.addrs[addr]
	r := d.n.rules[link{d.from, to}]
	d.n.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("faultnet: %s is not a registered node's address", addr)
	}
	if r.cut {
		d.n.mu.Lock()
		if s := d.n.stats[link{d.from, to}]; s != nil {
			s.Refused++
		}
		d.n.mu.Unlock()
		return nil, fmt.Errorf("faultnet: dial from node %d to node %d: %w", d.from, to, ErrCut)
	}
	c, err := d.d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	fc := &conn{Conn: c, n: d.n, from: d.from, to: to, closed: make(chan struct{})}
	d.n.mu.Lock()
	d.n.conns[fc] = struct{}{}
	d.n.mu.Unlock()
	return fc, nil
}

// conn is a dialed connection from node from to node to.
type conn struct {
	net.Conn
	n        *Network
	from, to NodeID
	// lostOut and lostIn: bytes were swallowed in that direction, so
	// the stream is no longer whole; the next use after a heal breaks it.
	lostOut, lostIn atomic.Bool
	broken          atomic.Bool
	closeOnce       sync.Once
	closed          chan struct{}

	// wmu orders the writes that reach the connection, those Release
	// delivers among them.
	wmu sync.Mutex
	// held is what Hold keeps back (guarded by wmu); dialerClosed says
	// that Close came while some was held (guarded by wmu).
	held         [][]byte
	dialerClosed bool
}

func (c *conn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	c.wmu.Lock()
	if len(c.held) > 0 {
		// Release delivers the bytes, then closes the connection.
		c.dialerClosed = true
		c.wmu.Unlock()
		return nil
	}
	c.wmu.Unlock()
	c.n.mu.Lock()
	delete(c.n.conns, c)
	c.n.mu.Unlock()
	return c.Conn.Close()
}

// release delivers c's held bytes, and closes c if its dialer closed it
// meanwhile, once the peer answered. It reports whether c held any.
func (c *conn) release() (bool, error) {
	c.wmu.Lock()
	held, closed := c.held, c.dialerClosed
	c.held = nil
	defer c.wmu.Unlock()
	if len(held) == 0 {
		return false, nil
	}
	var err error
	// NB: the dialer's deadline may have passed (it gave up waiting);
	// the bytes were sent before that, as far as it knows.
	_ = c.Conn.SetWriteDeadline(time.Now().Add(releaseAnswerWait))
	for _, b := range held {
		if _, err = c.Conn.Write(b); err != nil {
			break
		}
	}
	_ = c.Conn.SetWriteDeadline(time.Time{})
	if !closed {
		return true, err
	}
	if err == nil {
		_ = c.Conn.SetReadDeadline(time.Now().Add(releaseAnswerWait))
		var one [1]byte
		if _, rerr := c.Conn.Read(one[:]); rerr != nil {
			err = fmt.Errorf("faultnet: no answer to the bytes released from node %d to node %d: %w", c.from, c.to, rerr)
		}
	}
	c.n.mu.Lock()
	delete(c.n.conns, c)
	c.n.mu.Unlock()
	_ = c.Conn.Close()
	return true, err
}

// hold keeps p back if c holds bytes already or r says to; the caller
// holds c.wmu.
func (c *conn) hold(r rule, p []byte) bool {
	if len(c.held) == 0 && (r.hold == nil || !r.hold(p)) {
		return false
	}
	c.held = append(c.held, append([]byte(nil), p...))
	c.n.countHeld(c.from, c.to)
	return true
}

func (c *conn) breakConn(why string) error {
	c.broken.Store(true)
	_ = c.Conn.Close()
	return fmt.Errorf("faultnet: connection from node %d to node %d broken: %s", c.from, c.to, why)
}

// wait holds back for d, or until the connection is closed.
func (c *conn) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.closed:
		return false
	}
}

func (c *conn) Write(p []byte) (int, error) {
	if c.broken.Load() {
		return 0, c.breakConn("earlier fault")
	}
	r, drop := c.n.decide(c.from, c.to)
	switch {
	case r.cut:
		return 0, c.breakConn("cut")
	case r.blackhole:
		c.lostOut.Store(true)
		return len(p), nil
	case c.lostOut.Load():
		return 0, c.breakConn("bytes were blackholed")
	case drop:
		return 0, c.breakConn("dropped")
	}
	if r.delay > 0 && !c.wait(r.delay) {
		return 0, net.ErrClosed
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.hold(r, p) {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *conn) Read(p []byte) (int, error) {
	for {
		k, err := c.Conn.Read(p)
		if k == 0 {
			return k, err
		}
		c.n.mu.Lock()
		r := c.n.rules[link{c.to, c.from}]
		c.n.mu.Unlock()
		switch {
		case r.cut:
			return 0, c.breakConn("cut")
		case r.blackhole:
			c.lostIn.Store(true)
			if err != nil {
				return 0, err
			}
			continue
		case c.lostIn.Load():
			return 0, c.breakConn("bytes were blackholed")
		}
		if r.delay > 0 && !c.wait(r.delay) {
			return 0, net.ErrClosed
		}
		return k, err
	}
}
