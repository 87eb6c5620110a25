package broker

// Security in cluster mode: SCRAM credentials and ACLs come from the
// metadata image (the controller turns AlterUserScramCredentials,
// CreateAcls and DeleteAcls into records every node applies); each broker
// registers all its listeners, its inter-broker listener first, which is
// the one followers fetch from (over TLS with the broker's certificate
// when it is an SSL listener); and the controller listener can speak
// mutual TLS (Options.ControllerTLS) for raft and the controller RPC.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/weir-dev/weir/broker/internal/auth"
	"github.com/weir-dev/weir/broker/internal/cluster"
	"github.com/weir-dev/weir/broker/internal/protocol"
)

// clusterCredentials are the SCRAM credentials of a cluster node's
// metadata image.
type clusterCredentials struct{ cn *cluster.Node }

func (c clusterCredentials) Lookup(user, mech string) (auth.Credential, bool) {
	return c.cn.Image().SCRAMCredential(user, mech)
}

func (c clusterCredentials) List() []auth.UserInfo { return c.cn.Image().SCRAMUsers() }

// Ready implements auth.Readier: SASL waits for the node's metadata image
// to be whole (until then it holds no users, or old ones).
func (c clusterCredentials) Ready() error { return imageReady(c.cn) }

// imageReady reports whether cn's metadata image is whole (cluster.Node.Replayed).
func imageReady(cn *cluster.Node) error {
	if !cn.Replayed() {
		return errors.New("broker: this node's metadata image is still replaying; users and ACLs are not known yet")
	}
	return nil
}

// clusterACLs are the ACLs of a cluster node's metadata image, with an
// authorizer rebuilt when the image changes.
type clusterACLs struct {
	cn           *cluster.Node
	superUsers   []string
	allowIfNoACL bool
	cur          atomic.Pointer[imageAuthorizer]
}

// imageAuthorizer is the authorizer of the image at one applied offset.
type imageAuthorizer struct {
	applied uint64
	az      *auth.Authorizer
}

func (c *clusterACLs) Authorizer() *auth.Authorizer {
	img := c.cn.Image()
	if cur := c.cur.Load(); cur != nil && cur.applied == img.Applied() {
		return cur.az
	}
	// NB: the image never changes its ACL slice in place, so the
	// authorizer may keep it.
	az := auth.NewAuthorizer(img.ACLs(), c.superUsers, c.allowIfNoACL)
	c.cur.Store(&imageAuthorizer{applied: img.Applied(), az: az})
	return az
}

// Ready implements auth.Readier: no authorization decision is made from a
// partial image (with no ACLs yet, or old ones).
func (c *clusterACLs) Ready() error { return imageReady(c.cn) }

func (c *clusterACLs) List(f auth.Filter) []auth.ACL {
	var out []auth.ACL
	for _, a := range c.cn.Image().ACLs() {
		if f.Matches(a) {
			out = append(out, a)
		}
	}
	return out
}

// interBrokerListener returns the listener other brokers reach this one
// on: Options.InterBrokerListener, or the first listener.
func (o *Options) interBrokerListener() Listener {
	ls := o.securedListeners()
	for _, l := range ls {
		if l.Name == o.InterBrokerListener {
			return l
		}
	}
	return ls[0]
}

// validateClusterSecurity reports the problems of the cluster's security
// options.
func (o *Options) validateClusterSecurity() []error {
	var errs []error
	if o.ControllerVoters == "" {
		if o.InterBrokerListener != "" {
			errs = append(errs, errors.New("broker: --inter-broker-listener given without --controller-voters"))
		}
		if o.ControllerTLS {
			errs = append(errs, errors.New("broker: --controller-tls given without --controller-voters"))
		}
		return errs
	}
	if o.InterBrokerListener != "" {
		found := false
		for _, l := range o.securedListeners() {
			found = found || l.Name == o.InterBrokerListener
		}
		if !found {
			errs = append(errs, fmt.Errorf("broker: --inter-broker-listener %q names no --listener", o.InterBrokerListener))
		}
	}
	ib := o.interBrokerListener()
	switch p, _ := protocol.ParseSecurityProtocol(ib.Protocol); {
	case p.SASL():
		errs = append(errs, fmt.Errorf("broker: inter-broker listener %s: brokers authenticate to each other with TLS client certificates, not SASL: "+
			"make it an SSL listener (with --tls-client-ca) or PLAINTEXT", ib))
	case p.TLS() && o.TLSClientCAFile == "":
		errs = append(errs, fmt.Errorf("broker: inter-broker listener %s is SSL: --tls-client-ca is needed, to verify the other brokers and be verified by them", ib))
	}
	if o.Authorizer && ib.Protocol == string(protocol.Plaintext) && !slices.Contains(o.SuperUsers, auth.Anonymous) {
		errs = append(errs, fmt.Errorf("broker: --authorizer with the PLAINTEXT inter-broker listener %s: followers would fetch as %s and be refused; "+
			"make the inter-broker listener SSL (brokers then authenticate with their certificate) or name %s in --super-users", ib, auth.Anonymous, auth.Anonymous))
	}
	if o.ControllerTLS && (o.TLSCertFile == "" || o.TLSKeyFile == "" || o.TLSClientCAFile == "") {
		errs = append(errs, errors.New("broker: --controller-tls needs --tls-cert, --tls-key and --tls-client-ca (the voters verify each other against it)"))
	}
	if o.ControllerTLS && o.Authorizer && len(o.SuperUsers) == 0 {
		errs = append(errs, errors.New("broker: --controller-tls with --authorizer admits only the --super-users principals (the brokers' User:<certificate subject>) to the controller listener: --super-users is empty"))
	}
	return errs
}

// clusterListeners returns the listeners a broker registers, the
// inter-broker one first.
func clusterListeners(o *Options, lns []boundListener) []protocol.NodeListener {
	ib := o.interBrokerListener().Name
	var out []protocol.NodeListener
	for _, bl := range lns {
		nl := protocol.NodeListener{Name: bl.l.Name, Protocol: bl.l.Protocol, Host: bl.l.Host, Port: bl.l.Port}
		if bl.l.Name == ib {
			out = append([]protocol.NodeListener{nl}, out...)
		} else {
			out = append(out, nl)
		}
	}
	return out
}

// peerTLS is the TLS client configuration of a broker towards other
// nodes: its own certificate (reloaded as the listeners' is) and the CAs
// of --tls-client-ca as the roots its peers' certificates must chain to.
func (o *Options) peerTLS() (*tls.Config, error) {
	kp := &keyPair{certFile: o.TLSCertFile, keyFile: o.TLSKeyFile}
	if err := kp.load(); err != nil {
		return nil, err
	}
	pemBytes, err := os.ReadFile(o.TLSClientCAFile)
	if err != nil {
		return nil, fmt.Errorf("broker: --tls-client-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("broker: --tls-client-ca %s: no PEM certificate in it", o.TLSClientCAFile)
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12, RootCAs: pool,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get(nil) },
	}, nil
}

// controllerServerTLS is the controller listener's TLS configuration:
// the broker's certificate, and a verified client certificate required of
// every peer. With the authorizer, the peer's principal (User:<subject>,
// as the SSL listeners name it) must be one of Options.SuperUsers:
// --tls-client-ca also signs the applications' certificates, and the
// controller RPC checks no ACL.
func (o *Options) controllerServerTLS() (*tls.Config, error) {
	cfg, err := o.serverTLS()
	if err != nil {
		return nil, err
	}
	cfg = cfg.Clone()
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	if !o.Authorizer {
		return cfg, nil
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("broker: controller listener: no client certificate")
		}
		if pr := "User:" + cs.PeerCertificates[0].Subject.String(); !slices.Contains(o.SuperUsers, pr) {
			o.Logger.Warn("broker: controller listener refused a peer whose certificate principal is not in --super-users", "principal", pr)
			return fmt.Errorf("broker: controller listener: principal %s is not in --super-users", pr)
		}
		return nil
	}
	return cfg, nil
}

// baseDial is the dial function of node-to-node links: the tests' fault
// layer, or TCP.
func (o *Options) baseDial() func(ctx context.Context, addr string) (net.Conn, error) {
	if o.cluster.dial != nil {
		return o.cluster.dial
	}
	d := &net.Dialer{Timeout: 2 * time.Second}
	return func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
}

// tlsDial wraps dial with a TLS client handshake under cfg, verifying the
// peer's certificate for the host dialed.
func tlsDial(dial func(ctx context.Context, addr string) (net.Conn, error), cfg *tls.Config) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := dial(ctx, addr)
		if err != nil {
			return nil, err
		}
		cc := cfg.Clone()
		if host, _, err := net.SplitHostPort(addr); err == nil {
			cc.ServerName = host
		}
		tc := tls.Client(c, cc)
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := tc.HandshakeContext(hctx); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("broker: TLS handshake with %s: %w", addr, err)
		}
		return tc, nil
	}
}

// replicaDial is how followers reach leaders: over TLS when the
// inter-broker listener is SSL.
func (o *Options) replicaDial() (func(ctx context.Context, addr string) (net.Conn, error), error) {
	p, _ := protocol.ParseSecurityProtocol(o.interBrokerListener().Protocol)
	if !p.TLS() {
		return o.cluster.dial, nil
	}
	cfg, err := o.peerTLS()
	if err != nil {
		return nil, err
	}
	return tlsDial(o.baseDial(), cfg), nil
}

// controllerDial and controllerTLS are the dial function and listener
// configuration of raft and the controller RPC: mutual TLS with
// Options.ControllerTLS, else as they are.
func (o *Options) controllerDial() (func(ctx context.Context, addr string) (net.Conn, error), *tls.Config, error) {
	if !o.ControllerTLS {
		return o.cluster.dial, nil, nil
	}
	cli, err := o.peerTLS()
	if err != nil {
		return nil, nil, err
	}
	srv, err := o.controllerServerTLS()
	if err != nil {
		return nil, nil, err
	}
	return tlsDial(o.baseDial(), cli), srv, nil
}

// warnClusterSecurity logs what the options leave open that an operator
// may not mean to: a plaintext controller listener beside the authorizer
// (anyone who reaches it can change the metadata, users and ACLs
// included), and a broker certificate whose principal is not a super
// user (followers would be refused).
func (o *Options) warnClusterSecurity() {
	if o.ControllerVoters == "" || !o.Authorizer {
		return
	}
	if !o.ControllerTLS {
		o.Logger.Warn("broker: the authorizer is on but the controller listener is plaintext (no --controller-tls): "+
			"whoever reaches a voter's address can change the cluster metadata, users and ACLs included; keep it on a private network",
			"voters", o.ControllerVoters)
	}
	p, _ := protocol.ParseSecurityProtocol(o.interBrokerListener().Protocol)
	if !p.TLS() {
		return
	}
	if pemBytes, err := os.ReadFile(o.TLSCertFile); err == nil {
		if blk, _ := pem.Decode(pemBytes); blk != nil {
			if cert, err := x509.ParseCertificate(blk.Bytes); err == nil {
				if pr := "User:" + cert.Subject.String(); !slices.Contains(o.SuperUsers, pr) {
					o.Logger.Warn("broker: this broker's certificate principal is not in --super-users: other brokers will refuse its follower fetches unless ACLs allow it CLUSTER_ACTION",
						"principal", pr)
				}
			}
		}
	}
}
