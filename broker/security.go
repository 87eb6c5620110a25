package broker

// Listeners, TLS and the security stores of a single-node broker.

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/weir-dev/weir/broker/internal/auth"
	"github.com/weir-dev/weir/broker/internal/cluster"
	"github.com/weir-dev/weir/broker/internal/protocol"
)

// Listener is one named listener of a broker (Kafka's listeners entry).
type Listener struct {
	// Name names the listener (Kafka's listener name), e.g. "EXTERNAL".
	// Default: the protocol's name.
	Name string
	// Protocol is PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
	Protocol string
	// Addr is the TCP address to listen on; port 0 picks a free one (see
	// Broker.ListenerAddr).
	Addr string
	// Advertised is the host:port clients of this listener are told to
	// connect to. Default: the bound address.
	Advertised string
}

// ParseListener parses "NAME=PROTOCOL://host:port" or
// "PROTOCOL://host:port" (named after its protocol).
func ParseListener(s string) (Listener, error) {
	var l Listener
	rest := s
	if name, r, ok := strings.Cut(s, "="); ok {
		l.Name, rest = name, r
	}
	proto, addr, ok := strings.Cut(rest, "://")
	if !ok {
		return l, fmt.Errorf("broker: listener %q: want NAME=PROTOCOL://host:port, e.g. SECURE=SASL_SSL://127.0.0.1:9094", s)
	}
	l.Protocol, l.Addr = proto, addr
	if l.Name == "" {
		l.Name = proto
	}
	return l, nil
}

func (l Listener) String() string { return l.Name + "=" + l.Protocol + "://" + l.Addr }

// validateSecurity reports the problems of the listener and security
// options.
func (o *Options) validateSecurity() []error {
	var errs []error
	names := map[string]bool{}
	anyTLS, anySASL := false, false
	for _, l := range o.Listeners {
		p, err := protocol.ParseSecurityProtocol(l.Protocol)
		if err != nil {
			errs = append(errs, fmt.Errorf("broker: listener %s: %w", l, err))
		}
		anyTLS = anyTLS || p.TLS()
		anySASL = anySASL || p.SASL()
		if l.Name == "" || strings.ContainsAny(l.Name, "=:/, ") {
			errs = append(errs, fmt.Errorf("broker: listener %s: a name of letters, digits, '-' or '_' is needed", l))
		}
		if names[l.Name] {
			errs = append(errs, fmt.Errorf("broker: listener name %q used twice", l.Name))
		}
		names[l.Name] = true
		if _, _, err := net.SplitHostPort(l.Addr); err != nil {
			errs = append(errs, fmt.Errorf("broker: listener %s: address: %w", l, err))
		}
		if l.Advertised != "" {
			if _, err := splitAdvertised(l.Advertised); err != nil {
				errs = append(errs, fmt.Errorf("broker: listener %s: %w", l, err))
			}
		}
	}
	if len(o.Listeners) > 0 && (o.Listen != "" || o.AdvertisedAddr != "") {
		errs = append(errs, errors.New("broker: --listen/--advertised-addr and --listener both given: list every listener with --listener"))
	}
	if anyTLS && (o.TLSCertFile == "" || o.TLSKeyFile == "") {
		errs = append(errs, errors.New("broker: an SSL or SASL_SSL listener needs --tls-cert and --tls-key"))
	}
	if !anyTLS && (o.TLSCertFile != "" || o.TLSKeyFile != "" || o.TLSClientCAFile != "") {
		errs = append(errs, errors.New("broker: --tls-cert, --tls-key or --tls-client-ca given, but no listener is SSL or SASL_SSL"))
	}
	switch o.TLSClientAuth {
	case "", "none", "requested", "required":
	default:
		errs = append(errs, fmt.Errorf("broker: --tls-client-auth %q: want none, requested or required", o.TLSClientAuth))
	}
	if o.TLSClientAuth != "" && o.TLSClientAuth != "none" && o.TLSClientCAFile == "" {
		errs = append(errs, fmt.Errorf("broker: --tls-client-auth %s needs --tls-client-ca", o.TLSClientAuth))
	}
	if o.SASLPlainUsersFile != "" && !anySASL {
		errs = append(errs, errors.New("broker: --sasl-plain-users given, but no listener is SASL_PLAINTEXT or SASL_SSL"))
	}
	if (len(o.SuperUsers) > 0 || o.AllowEveryoneIfNoACLFound) && !o.Authorizer {
		errs = append(errs, errors.New("broker: --super-users or --allow-everyone-if-no-acl-found given without --authorizer"))
	}
	for _, u := range o.SuperUsers {
		if t, n, ok := strings.Cut(u, ":"); !ok || t == "" || n == "" {
			errs = append(errs, fmt.Errorf("broker: super user %q: want Type:name, e.g. User:admin", u))
		}
	}
	if o.ConnectionsMaxReauth < 0 {
		errs = append(errs, fmt.Errorf("broker: connections max reauth %v is negative", o.ConnectionsMaxReauth))
	}
	return append(errs, o.validateClusterSecurity()...)
}

// securedListeners returns the broker's listeners: Options.Listeners, or
// one PLAINTEXT listener on Options.Listen.
func (o *Options) securedListeners() []Listener {
	if len(o.Listeners) > 0 {
		return o.Listeners
	}
	return []Listener{{Name: string(protocol.Plaintext), Protocol: string(protocol.Plaintext), Addr: o.Listen, Advertised: o.AdvertisedAddr}}
}

// openSecurity opens the security stores of a broker: in dir for a
// single-node broker, the metadata image of cn in cluster mode.
func openSecurity(o *Options, dir string, cn *cluster.Node) (protocol.Security, error) {
	sec := protocol.Security{ReauthLifetime: o.ConnectionsMaxReauth}
	var err error
	if o.SASLPlainUsersFile != "" {
		if sec.Plain, err = auth.LoadPlainUsers(o.SASLPlainUsersFile); err != nil {
			return sec, fmt.Errorf("broker: %w", err)
		}
	}
	if cn != nil {
		sec.SCRAM = clusterCredentials{cn: cn}
		if o.Authorizer {
			sec.ACLs = &clusterACLs{cn: cn, superUsers: o.SuperUsers, allowIfNoACL: o.AllowEveryoneIfNoACLFound}
		}
		return sec, nil
	}
	users, err := auth.OpenUserStore(filepath.Join(dir, auth.UsersFile))
	if err != nil {
		return sec, fmt.Errorf("broker: %w", err)
	}
	sec.SCRAM = users
	if o.Authorizer {
		acls, err := auth.OpenACLStore(filepath.Join(dir, auth.ACLFile), o.SuperUsers, o.AllowEveryoneIfNoACLFound)
		if err != nil {
			return sec, fmt.Errorf("broker: %w", err)
		}
		sec.ACLs = acls
	}
	return sec, nil
}

// serverTLS builds the TLS configuration of SSL and SASL_SSL listeners:
// TLS 1.2 or later, the certificate reloaded when its files change.
func (o *Options) serverTLS() (*tls.Config, error) {
	kp := &keyPair{certFile: o.TLSCertFile, keyFile: o.TLSKeyFile}
	if err := kp.load(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: kp.get}
	if o.TLSClientCAFile != "" {
		pem, err := os.ReadFile(o.TLSClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("broker: --tls-client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("broker: --tls-client-ca %s: no PEM certificate in it", o.TLSClientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		if o.TLSClientAuth == "requested" {
			cfg.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	return cfg, nil
}

// keyPair is a certificate and key reloaded from their files when they
// change: each handshake checks, at most once per second, whether the files'
// contents differ from what was loaded.
type keyPair struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	raw     []byte // the cert and key files' bytes, as loaded
	checked time.Time
}

func (k *keyPair) read() ([]byte, []byte, error) {
	c, err := os.ReadFile(k.certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("broker: --tls-cert: %w", err)
	}
	key, err := os.ReadFile(k.keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("broker: --tls-key: %w", err)
	}
	return c, key, nil
}

// load (re)loads the pair; called with mu held or before use.
func (k *keyPair) load() error {
	c, key, err := k.read()
	if err != nil {
		return err
	}
	raw := append(append([]byte{}, c...), key...)
	if k.cert != nil && bytes.Equal(raw, k.raw) {
		return nil
	}
	cert, err := tls.X509KeyPair(c, key)
	if err != nil {
		return fmt.Errorf("broker: TLS certificate %s and key %s: %w", k.certFile, k.keyFile, err)
	}
	k.cert, k.raw = &cert, raw
	return nil
}

// get is tls.Config.GetCertificate: a changed pair that fails to load
// leaves the previous one in use (the error reaches the next check again).
func (k *keyPair) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if now := time.Now(); now.Sub(k.checked) >= time.Second {
		k.checked = now
		_ = k.load()
	}
	return k.cert, nil
}

// boundListener is a listener bound to its socket.
type boundListener struct {
	ln  net.Listener
	l   *protocol.Listener
	adv string
}

// bindListeners binds every listener of o.
func bindListeners(o *Options) ([]boundListener, error) {
	var tlsCfg *tls.Config
	var out []boundListener
	fail := func(err error) ([]boundListener, error) {
		closeListeners(out)
		return nil, err
	}
	for _, l := range o.securedListeners() {
		p, err := protocol.ParseSecurityProtocol(l.Protocol)
		if err != nil {
			return fail(err)
		}
		pl := &protocol.Listener{Name: l.Name, Protocol: p}
		if p.TLS() {
			if tlsCfg == nil {
				if tlsCfg, err = o.serverTLS(); err != nil {
					return fail(err)
				}
			}
			pl.TLS = tlsCfg
		}
		ln, err := net.Listen("tcp", l.Addr)
		if err != nil {
			return fail(fmt.Errorf("broker: listen (listener %s): %w", l.Name, err))
		}
		adv := l.Advertised
		if adv == "" {
			adv = ln.Addr().String()
		}
		hp, err := splitAdvertised(adv)
		if err != nil {
			_ = ln.Close()
			return fail(err)
		}
		pl.Host, pl.Port = hp.host, hp.port
		out = append(out, boundListener{ln: ln, l: pl, adv: adv})
	}
	return out, nil
}

func closeListeners(lns []boundListener) {
	for _, bl := range lns {
		_ = bl.ln.Close()
	}
}

// serveListeners runs an accept loop per listener; served is closed once
// they have all returned, srvErr set to the first failure.
func (b *Broker) serveListeners() {
	var wg sync.WaitGroup
	var once sync.Once
	for _, bl := range b.lns {
		wg.Go(func() {
			if err := b.srv.ServeListener(bl.ln, bl.l); err != nil {
				once.Do(func() { b.srvErr = err })
			}
		})
	}
	wg.Wait()
	close(b.served)
}

// ListenerAddr returns the address the named listener is bound to, or ""
// if there is none of that name.
func (b *Broker) ListenerAddr(name string) string {
	for _, bl := range b.lns {
		if bl.l.Name == name {
			return bl.ln.Addr().String()
		}
	}
	return ""
}

// ListenerAddrs returns the addresses of every listener, in the order
// they were given.
func (b *Broker) ListenerAddrs() []string {
	out := make([]string, len(b.lns))
	for i, bl := range b.lns {
		out[i] = bl.ln.Addr().String()
	}
	return out
}
