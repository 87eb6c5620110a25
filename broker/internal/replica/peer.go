package replica

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Requests to other brokers beside replication: the transaction
// coordinator's WriteTxnMarkers to partition leaders, and a leader's
// AddPartitionsToTxn (VerifyOnly) to a transaction's coordinator. They go
// to the broker's inter-broker listener, as follower fetches do, over
// connections kept idle between requests (at most maxIdlePeerConns per
// broker; one request at a time on each).

// maxIdlePeerConns bounds the idle connections kept to one broker.
const maxIdlePeerConns = 4

// peerDialTimeout bounds the dial of a connection to another broker.
const peerDialTimeout = 2 * time.Second

// peerConns are the idle connections to other brokers.
type peerConns struct {
	mu     sync.Mutex
	idle   map[int32][]*conn // guarded by mu
	closed bool              // guarded by mu
}

// SendToBroker sends req to broker node's inter-broker listener and
// returns its response; an error means no response was had (the broker is
// unknown, unreachable, or the connection broke).
func (m *Manager) SendToBroker(ctx context.Context, node int32, req kmsg.Request) (kmsg.Response, error) {
	addr, ok := m.addr(node)
	if !ok {
		return nil, fmt.Errorf("replica: broker %d has no known address", node)
	}
	c := m.peers.take(node)
	if c == nil {
		dctx, cancel := context.WithTimeout(ctx, peerDialTimeout)
		var err error
		c, err = dialConn(dctx, m.opts.Dial, addr)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("replica: dial broker %d at %s: %w", node, addr, err)
		}
	}
	// NB: the conn goes back to the pool before the caller reads resp, so
	// resp must not share the conn's kept buffer.
	resp, err := c.requestOwned(ctx, req)
	if err != nil {
		c.close()
		return nil, fmt.Errorf("replica: %s to broker %d: %w", kmsg.NameForKey(req.Key()), node, err)
	}
	m.peers.put(node, c)
	return resp, nil
}

func (p *peerConns) take(node int32) *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	cs := p.idle[node]
	if len(cs) == 0 {
		return nil
	}
	c := cs[len(cs)-1]
	p.idle[node] = cs[:len(cs)-1]
	return c
}

func (p *peerConns) put(node int32, c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle[node]) >= maxIdlePeerConns {
		c.close()
		return
	}
	if p.idle == nil {
		p.idle = map[int32][]*conn{}
	}
	p.idle[node] = append(p.idle[node], c)
}

// close closes the idle connections; those in use are closed when their
// request ends.
func (p *peerConns) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, cs := range p.idle {
		for _, c := range cs {
			c.close()
		}
	}
	p.idle = nil
}
