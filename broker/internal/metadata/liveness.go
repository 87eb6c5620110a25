package metadata

import (
	"maps"
	"net"
	"slices"
	"strconv"
	"time"
)

// Liveness probes: a broker's session timeout is long (9 s by default) so
// that a broker that is merely slow (a long fsync, a GC pause, a loaded
// machine, a SIGSTOP) keeps its leaderships. A broker whose process died
// is a different case, and one that can be told apart: the kernel closes a
// dead process's sockets at once, so its connection to the controller ends
// and its listener refuses connections, while a paused or slow process
// keeps its connections open and the kernel still completes connections
// to its listener. So the controller asks the driver to probe a broker it
// has reason to doubt (Probes): try to connect to the broker's first
// listener (the inter-broker one) and report a refusal (ProbeRefused),
// which fences the broker at once. Anything but a refusal (success, a
// timeout, an unreachable network) changes nothing: the session timeout
// decides as before.
//
// A broker is doubted, and probed every ProbeInterval until it heartbeats
// or is fenced, when
//
//   - its connection to this controller closed (Disconnected);
//   - this controller started and has not heard from it yet (a controller
//     that died with its broker leaves the broker's session to a new
//     controller that starts every session afresh);
//   - its last heartbeat is ProbeAfter old (heartbeats come every 500 ms;
//     this catches a broker that died while it had no connection open).

// Probe asks the driver to try to connect to Addr, broker Node's first
// listener, and to call ProbeRefused with it if the connection is refused.
type Probe struct {
	Node  NodeID
	Epoch BrokerEpoch
	Addr  string
	// At is when the probe was asked for: a heartbeat after it renews
	// the broker's session and the refusal is then ignored.
	At time.Time
}

// Disconnected tells the controller that broker n's connection to it
// ended: n is probed at the next Probes.
func (c *Controller) Disconnected(n NodeID) {
	if b, ok := c.img.brokers[n]; ok && !b.Fenced {
		c.suspect[n] = true
	}
}

// heard records a registration or heartbeat of broker n at now.
func (c *Controller) heard(n NodeID, now time.Time) {
	c.sessions[n] = now
	delete(c.suspect, n)
}

// probeAddr returns the address to probe broker b at; false if it has no
// listener.
func probeAddr(b Broker) (string, bool) {
	if len(b.Listeners) == 0 {
		return "", false
	}
	l := b.Listeners[0]
	return net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port))), true
}

// probeDue returns when broker n (unfenced) is next to be probed.
func (c *Controller) probeDue(n NodeID) time.Time {
	due := c.sessions[n].Add(c.opts.ProbeAfter)
	if c.suspect[n] {
		due = c.sessions[n]
	}
	if last, ok := c.probed[n]; ok {
		if next := last.Add(c.opts.ProbeInterval); next.After(due) {
			due = next
		}
	}
	return due
}

// Probes returns the probes due at now, in node order, and notes them as
// made: the driver must start each. None when probes are off
// (Options.ProbeAfter negative).
func (c *Controller) Probes(now time.Time) []Probe {
	if c.opts.ProbeAfter < 0 {
		return nil
	}
	var out []Probe
	for _, n := range slices.Sorted(maps.Keys(c.img.brokers)) {
		b := c.img.brokers[n]
		addr, ok := probeAddr(b)
		if b.Fenced || !ok || now.Before(c.probeDue(n)) {
			continue
		}
		c.probed[n] = now
		out = append(out, Probe{Node: n, Epoch: b.Epoch, Addr: addr, At: now})
	}
	return out
}

// ProbeDeadline returns when Probes next has a probe to hand out; zero if
// none is due (every broker fenced, or probes off).
func (c *Controller) ProbeDeadline() time.Time {
	if c.opts.ProbeAfter < 0 {
		return time.Time{}
	}
	var d time.Time
	for n, b := range c.img.brokers {
		if _, ok := probeAddr(b); b.Fenced || !ok {
			continue
		}
		if t := c.probeDue(n); d.IsZero() || t.Before(d) {
			d = t
		}
	}
	return d
}

// ProbeRefused tells the controller that probe p's connection was refused:
// nothing listens where broker p.Node did, so its process is gone. Unless
// the broker heartbeated or registered again since p was asked for, or is
// already fenced, it is fenced now and its leaderships move away; the
// records to propose are returned.
func (c *Controller) ProbeRefused(p Probe) ([]Record, error) {
	b, ok := c.img.brokers[p.Node]
	if !ok || b.Epoch != p.Epoch || b.Fenced || c.sessions[p.Node].After(p.At) {
		return nil, nil
	}
	var out []Record
	if err := c.fence(&out, b); err != nil {
		return nil, err
	}
	delete(c.suspect, p.Node)
	return out, nil
}
