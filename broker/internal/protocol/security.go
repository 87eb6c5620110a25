package protocol

// Listeners, TLS, and the per-connection security session. See
// 17_sasl_handshake.go and 36_sasl_authenticate.go for SASL and authz.go
// for authorization.

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/auth"
)

// SecurityProtocol is a listener's security protocol, as Kafka names them.
type SecurityProtocol string

// The security protocols.
const (
	Plaintext     SecurityProtocol = "PLAINTEXT"
	SSL           SecurityProtocol = "SSL"
	SASLPlaintext SecurityProtocol = "SASL_PLAINTEXT"
	SASLSSL       SecurityProtocol = "SASL_SSL"
)

// ParseSecurityProtocol returns the protocol named s.
func ParseSecurityProtocol(s string) (SecurityProtocol, error) {
	switch p := SecurityProtocol(s); p {
	case Plaintext, SSL, SASLPlaintext, SASLSSL:
		return p, nil
	}
	return "", fmt.Errorf("protocol: security protocol %q: want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", s)
}

// Code is Kafka's wire code of p (BrokerRegistration's listeners): 0 to
// 3, -1 for an unknown protocol.
func (p SecurityProtocol) Code() int16 {
	switch p {
	case Plaintext:
		return 0
	case SSL:
		return 1
	case SASLPlaintext:
		return 2
	case SASLSSL:
		return 3
	}
	return -1
}

// SecurityProtocolOfCode is the protocol of a Kafka wire code, "" if
// unknown.
func SecurityProtocolOfCode(c int16) SecurityProtocol {
	for _, p := range []SecurityProtocol{Plaintext, SSL, SASLPlaintext, SASLSSL} {
		if p.Code() == c {
			return p
		}
	}
	return ""
}

// TLS reports whether connections under p are TLS.
func (p SecurityProtocol) TLS() bool { return p == SSL || p == SASLSSL }

// SASL reports whether connections under p must authenticate with SASL.
func (p SecurityProtocol) SASL() bool { return p == SASLPlaintext || p == SASLSSL }

// Listener is one named listener: its security protocol and the address
// advertised to clients that connect through it.
type Listener struct {
	Name     string
	Protocol SecurityProtocol
	// Host and Port are advertised in Metadata, FindCoordinator and
	// DescribeCluster answers to clients of this listener.
	Host string
	Port int32
	// TLS is the server's TLS configuration, required under SSL and
	// SASL_SSL.
	TLS *tls.Config
}

// Security configures authentication and authorization. The zero value
// has neither: every connection is User:ANONYMOUS and may do anything.
type Security struct {
	// Plain, when set, enables SASL PLAIN against these credentials.
	Plain *auth.PlainUsers
	// SCRAM, when set, enables SCRAM-SHA-256 and SCRAM-SHA-512 against
	// these credentials, and DescribeUserScramCredentials and
	// AlterUserScramCredentials (which change them in place when they are
	// a SCRAMWriter; in cluster mode the controller changes them).
	SCRAM auth.Credentials
	// ACLs, when set, turns the authorizer on: every request is checked
	// against its ACLs, as Kafka checks them. CreateAcls and DeleteAcls
	// change them in place when they are an ACLWriter; in cluster mode
	// the controller changes them.
	ACLs auth.ACLSource
	// ReauthLifetime, when positive, bounds a SASL session (KIP-368,
	// Kafka's connections.max.reauth.ms): SaslAuthenticate v1+ tells the
	// client, which re-authenticates on the same connection (same
	// mechanism, same principal) before it ends; a connection that has
	// not is closed at its next request. Default 0: sessions do not end.
	ReauthLifetime time.Duration
}

// SCRAMWriter is a credentials store a single-node broker changes in
// place (auth.UserStore).
type SCRAMWriter interface {
	Apply(changes []auth.Change) ([]error, error)
}

// ACLWriter is an ACL store a single-node broker changes in place
// (auth.ACLStore).
type ACLWriter interface {
	Add(acls []auth.ACL) ([]error, error)
	Delete(filters []auth.Filter) ([][]auth.ACL, error)
}

// mechanisms returns the SASL mechanisms enabled.
func (sec *Security) mechanisms() []string {
	var ms []string
	if sec.SCRAM != nil {
		ms = append(ms, auth.SCRAMSHA512, auth.SCRAMSHA256)
	}
	if sec.Plain != nil {
		ms = append(ms, "PLAIN")
	}
	return ms
}

// Session is one connection's security state: its listener, the peer's
// host, and who it is once authenticated.
type Session struct {
	Listener *Listener
	// Host is the peer's IP address, as ACLs name hosts.
	Host string

	// authed is set once the connection may send any request: at once on
	// listeners without SASL, after SaslAuthenticate succeeds otherwise.
	// Read by the connection's reader (the frame cap), written by the
	// handler loop.
	authed atomic.Bool

	// The rest is read and written only by the connection's handler loop.
	principal string
	// rawSASL is set after a SaslHandshake v0: the client's next frames
	// are bare SASL tokens (no request header) until the exchange ends.
	// Read by the reader, written by the handler loop before the
	// handshake's answer goes out.
	rawSASL atomic.Bool
	mech    string              // chosen by SaslHandshake
	reauth  bool                // a re-authentication (KIP-368) is under way
	expires time.Time           // when the SASL session ends (zero: never)
	conv    *auth.SCRAMExchange // a SCRAM exchange under way
}

// Principal returns the connection's principal ("User:name", or
// User:ANONYMOUS).
func (s *Session) Principal() string { return s.principal }

// Authenticated reports whether the connection may send any request.
func (s *Session) Authenticated() bool { return s == nil || s.authed.Load() }

// preAuthMaxFrame caps every frame of a connection that has yet to
// authenticate (SASL messages and ApiVersions are small).
const preAuthMaxFrame = 64 << 10

// preAuthKeys are the requests a connection may send before it has
// authenticated.
func preAuthKey(key int16) bool {
	return key == kmsg.ApiVersions.Int16() || key == kmsg.SASLHandshake.Int16() || key == kmsg.SASLAuthenticate.Int16()
}

// defaultListener is the listener of Serve: plaintext, advertising
// Config.Node.
func (s *Server) defaultListener() *Listener {
	return &Listener{Name: string(Plaintext), Protocol: Plaintext, Host: s.cfg.Node.Host, Port: s.cfg.Node.Port}
}

// nodeFor returns this broker's identity as the client of r sees it: the
// address of the listener it connected through.
func (s *Server) nodeFor(r *Request) Node {
	n := s.cfg.Node
	if r.Session != nil && r.Session.Listener != nil && r.Session.Listener.Host != "" {
		n.Host, n.Port = r.Session.Listener.Host, r.Session.Listener.Port
	}
	return n
}

// tlsHandshakeTimeout bounds a TLS handshake.
const tlsHandshakeTimeout = 10 * time.Second

// secure runs the TLS handshake of a connection accepted on l, if l uses
// TLS, and returns the connection to serve and its session; nil if the
// handshake failed (the connection is then closed).
func (s *Server) secure(nc net.Conn, l *Listener, ip string) (net.Conn, *Session) {
	sess := &Session{Listener: l, Host: ip, principal: auth.Anonymous}
	if l.Protocol.TLS() {
		tc := tls.Server(nc, l.TLS)
		ctx, cancel := context.WithTimeout(s.ctx, tlsHandshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			s.sec.tlsFailures.Inc()
			s.logLimited(slog.LevelWarn, "tls", "TLS handshake failed", "remote", nc.RemoteAddr().String(),
				"listener", l.Name, "err", err)
			_ = nc.Close()
			return nil, nil
		}
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			sess.principal = "User:" + certs[0].Subject.String()
		}
		nc = tc
	}
	if !l.Protocol.SASL() {
		sess.authed.Store(true)
	}
	return nc, sess
}

// readSecured reads the next frame, whose first byte is buffered in r,
// under the session's limits: before authentication, frames are capped at
// preAuthMaxFrame and not charged to the request memory; after a
// SaslHandshake v0, a frame is a bare SASL token, read as a
// SaslAuthenticate request.
func (c *conn) readSecured(ctx context.Context, r *bufio.Reader, first bool) (*frame, error) {
	if err := c.checkPreAuthFrame(r); err != nil {
		return nil, err
	}
	if c.sess != nil && c.sess.rawSASL.Load() {
		var size [4]byte
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return nil, err
		}
		body := make([]byte, binary.BigEndian.Uint32(size[:])) // checkPreAuthFrame bounded it
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, err
		}
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.SASLAuthBytes = body
		h, _ := lookupHandler(kmsg.SASLAuthenticate.Int16())
		return &frame{req: &Request{Key: kmsg.SASLAuthenticate.Int16(), Body: req, Remote: c.remote, Session: c.sess},
			h: h, rawSASL: true}, nil
	}
	f, err := c.readFrame(ctx, r, first || !c.sess.Authenticated())
	if err != nil {
		return nil, err
	}
	f.req.Session = c.sess
	return f, nil
}

// appendRawSASL appends the bare SASL token of a SaslAuthenticate
// response, size-prefixed, as a SaslHandshake v0 client expects it.
func appendRawSASL(dst []byte, resp kmsg.Response) []byte {
	b := resp.(*kmsg.SASLAuthenticateResponse).SASLAuthBytes
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}

// checkPreAuthFrame closes a connection that has not authenticated when
// its next frame (whose first byte is buffered in r) exceeds
// preAuthMaxFrame.
func (c *conn) checkPreAuthFrame(r *bufio.Reader) error {
	if c.sess == nil || c.sess.authed.Load() {
		return nil
	}
	b, err := r.Peek(4)
	if err != nil {
		return nil // readFrame reports it
	}
	if n := int32(binary.BigEndian.Uint32(b)); n < 0 || n > preAuthMaxFrame {
		return &closeError{reason: reasonFrameTooLarge,
			err: fmt.Errorf("%w: frame of %d bytes before authentication exceeds the limit of %d", ErrFrame, n, preAuthMaxFrame)}
	}
	return nil
}

// dispatch runs f's handler: it refuses requests a connection may not send
// before it has authenticated, and applies the authorization rule of f's
// API when the authorizer is on.
func (s *Server) dispatch(ctx context.Context, f *frame) (kmsg.Response, error) {
	r := f.req
	sess := r.Session
	fn := s.withAuthorizedOps(r.Key, s.handlerFor(f))
	if sess == nil {
		return fn(ctx, s, r)
	}
	if !sess.authed.Load() && !preAuthKey(r.Key) {
		s.sec.preAuthRefused.Inc()
		return nil, fmt.Errorf("protocol: %s request before SASL authentication on listener %s", kmsg.NameForKey(r.Key), sess.Listener.Name)
	}
	if !sess.expires.IsZero() && !preAuthKey(r.Key) && time.Now().After(sess.expires) {
		s.sec.preAuthRefused.Inc()
		return nil, fmt.Errorf("protocol: %s request after the SASL session of %s ended (%v); the client did not re-authenticate",
			kmsg.NameForKey(r.Key), sess.principal, s.cfg.Security.ReauthLifetime)
	}
	acls := s.cfg.Security.ACLs
	if acls == nil {
		return fn(ctx, s, r)
	}
	rule, ok := authRules[r.Key]
	if !ok {
		// Cannot happen for a registered key (TestEveryAPIHasAnAuthRule).
		return nil, fmt.Errorf("protocol: no authorization rule for %s", kmsg.NameForKey(r.Key))
	}
	if rule.check == nil {
		return fn(ctx, s, r)
	}
	if err := auth.NotReady(acls); err != nil {
		// NB: closing the connection is what every client retries.
		return nil, fmt.Errorf("protocol: %s request refused, no authorization decision yet: %w", kmsg.NameForKey(r.Key), err)
	}
	az := &authz{s: s, a: acls.Authorizer(), principal: sess.principal, host: sess.Host}
	deny, post := rule.check(az, r)
	if deny != nil {
		return deny, nil
	}
	resp, err := fn(ctx, s, r)
	if err != nil || resp == nil || post == nil {
		return resp, err
	}
	if d, ok := resp.(*Deferred); ok {
		wait := d.Wait
		d.Wait = func() {
			if wait != nil {
				wait()
			}
			post(d.Response)
		}
		return d, nil
	}
	post(resp)
	return resp, nil
}

// securityState is the server's security counters and the SASL failure
// tracker.
type securityState struct {
	authFailures   prometheus.Counter
	authSuccesses  prometheus.Counter
	tlsFailures    prometheus.Counter
	preAuthRefused prometheus.Counter
	denied         prometheus.Counter

	mu       sync.Mutex
	failures map[string]failureRecord // by remote IP; guarded by mu
}

type failureRecord struct {
	n    int
	last time.Time
}

func newSecurityState() *securityState {
	return &securityState{
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "weir_sasl_authentication_failures_total",
			Help: "SASL authentications that failed (wrong credentials, unknown user, malformed exchange)."}),
		authSuccesses: prometheus.NewCounter(prometheus.CounterOpts{Name: "weir_sasl_authentications_total",
			Help: "SASL authentications that succeeded."}),
		tlsFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "weir_tls_handshake_failures_total",
			Help: "TLS handshakes that failed."}),
		preAuthRefused: prometheus.NewCounter(prometheus.CounterOpts{Name: "weir_unauthenticated_requests_refused_total",
			Help: "Connections closed for sending a request other than ApiVersions or SASL before authenticating, or after their SASL session ended."}),
		denied: prometheus.NewCounter(prometheus.CounterOpts{Name: "weir_authorization_denied_total",
			Help: "Operations on resources refused by the authorizer."}),
		failures: map[string]failureRecord{},
	}
}

func (st *securityState) collectors() []prometheus.Collector {
	return []prometheus.Collector{st.authFailures, st.authSuccesses, st.tlsFailures, st.preAuthRefused, st.denied}
}

// Failure slow-down: after the first failure from an address within
// failureWindow, each further one is answered after a delay that doubles
// from failureMinDelay up to failureMaxDelay.
const (
	failureWindow   = time.Minute
	failureMinDelay = 100 * time.Millisecond
	failureMaxDelay = 5 * time.Second
	maxFailureIPs   = 10000
)

// failed records an authentication failure from ip and returns how long
// to hold its answer.
func (st *securityState) failed(ip string, now time.Time) time.Duration {
	st.mu.Lock()
	defer st.mu.Unlock()
	rec := st.failures[ip]
	if now.Sub(rec.last) > failureWindow {
		rec.n = 0
	}
	rec.n++
	rec.last = now
	if len(st.failures) >= maxFailureIPs {
		for k, v := range st.failures { // drop the stale ones
			if now.Sub(v.last) > failureWindow {
				delete(st.failures, k)
			}
		}
	}
	if len(st.failures) < maxFailureIPs || st.failures[ip].n > 0 {
		st.failures[ip] = rec
	}
	if rec.n < 2 {
		return 0
	}
	return min(failureMinDelay<<min(rec.n-2, 16), failureMaxDelay)
}

// principalOrAnonymous is s's principal, for logs (s may be nil in tests).
func (s *Session) principalOrAnonymous() string {
	if s == nil {
		return auth.Anonymous
	}
	return s.principal
}

// SASLSuccesses is the counter of successful SASL authentications (tests).
func (s *Server) SASLSuccesses() prometheus.Counter { return s.sec.authSuccesses }
