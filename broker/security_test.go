package broker

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// testPKI is a CA and the PEM files of a server certificate for 127.0.0.1
// and localhost and of a client certificate, all signed by it.
type testPKI struct {
	dir               string
	caFile            string
	certFile, keyFile string
	clientCert        tls.Certificate
	clientCertFile    string
	clientKeyFile     string
	pool              *x509.CertPool
	caCert            *x509.Certificate
	caKey             *ecdsa.PrivateKey
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir(), pool: x509.NewCertPool()}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "weir test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.caCert, _ = x509.ParseCertificate(der)
	p.caKey = caKey
	p.pool.AddCert(p.caCert)
	p.caFile = p.writePEM(t, "ca.pem", "CERTIFICATE", der)
	p.certFile, p.keyFile = p.issue(t, "server", pkix.Name{CommonName: "localhost"}, true)
	p.clientCertFile, p.clientKeyFile = p.issue(t, "client", pkix.Name{CommonName: "alice", Organization: []string{"Acme"}}, false)
	if p.clientCert, err = tls.LoadX509KeyPair(p.clientCertFile, p.clientKeyFile); err != nil {
		t.Fatal(err)
	}
	return p
}

// issue writes a certificate and key signed by the CA and returns their
// files.
func (p *testPKI) issue(t testing.TB, name string, subj pkix.Name, server bool) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: subj,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		// Brokers present their certificate to each other as clients too
		// (an SSL inter-broker listener, the controller's mutual TLS).
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return p.writePEM(t, name+".pem", "CERTIFICATE", der), p.writePEM(t, name+"-key.pem", "EC PRIVATE KEY", kder)
}

func (p *testPKI) writePEM(t testing.TB, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// clientTLS is a client's TLS configuration trusting the test CA.
func (p *testPKI) clientTLS() *tls.Config {
	return &tls.Config{RootCAs: p.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// openSecure opens a broker with opts (Listeners set) in a temporary data
// directory.
func openSecure(t testing.TB, opts Options) *Broker {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	b, err := Open(opts)
	if err != nil {
		t.Fatalf("open broker: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// createSCRAMUser creates user through the broker's plaintext listener.
func createSCRAMUser(t testing.TB, addr, user, password string, mech kadm.ScramMechanism) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	res, err := kadm.NewClient(cl).AlterUserSCRAMs(testCtx(t), nil, []kadm.UpsertSCRAM{{User: user, Mechanism: mech, Iterations: 4096, Password: password}})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Error(); err != nil {
		t.Fatal(err)
	}
}

func secureListeners() []Listener {
	return []Listener{
		{Name: "INTERNAL", Protocol: "PLAINTEXT", Addr: "127.0.0.1:0"},
		{Name: "SECURE", Protocol: "SASL_SSL", Addr: "127.0.0.1:0"},
	}
}

func TestSASLSSLSCRAM(t *testing.T) {
	pki := newTestPKI(t)
	b := openSecure(t, Options{Listeners: secureListeners(), TLSCertFile: pki.certFile, TLSKeyFile: pki.keyFile})
	secure := b.ListenerAddr("SECURE")
	createSCRAMUser(t, b.ListenerAddr("INTERNAL"), "alice", "s3cret", kadm.ScramSha512)

	cl, err := kgo.NewClient(kgo.SeedBrokers(secure), kgo.DialTLSConfig(pki.clientTLS()),
		kgo.SASL(scram.Auth{User: "alice", Pass: "s3cret"}.AsSha512Mechanism()),
		kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("sec"), kgo.ConsumeTopics("sec"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := testCtx(t)
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("over tls")}).FirstErr(); err != nil {
		t.Fatalf("produce over SASL_SSL: %v", err)
	}
	fs := cl.PollFetches(ctx)
	if err := fs.Err(); err != nil {
		t.Fatalf("consume over SASL_SSL: %v", err)
	}
	if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "over tls" {
		t.Fatalf("consumed %v", recs)
	}

	// Metadata advertises the listener the client came through.
	md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(secure)
	if len(md.Brokers) != 1 || strconv.Itoa(int(md.Brokers[0].Port)) != port {
		t.Fatalf("brokers advertised on the SECURE listener: %+v, want port %s", md.Brokers, port)
	}

	// A wrong password: SASL_AUTHENTICATION_FAILED.
	bad, err := kgo.NewClient(kgo.SeedBrokers(secure), kgo.DialTLSConfig(pki.clientTLS()),
		kgo.SASL(scram.Auth{User: "alice", Pass: "wrong"}.AsSha512Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := bad.Ping(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	// So does SCRAM-SHA-256, which alice has no credential for.
	bad256, err := kgo.NewClient(kgo.SeedBrokers(secure), kgo.DialTLSConfig(pki.clientTLS()),
		kgo.SASL(scram.Auth{User: "alice", Pass: "s3cret"}.AsSha256Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer bad256.Close()
	if err := bad256.Ping(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("mechanism without a credential: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
}

func TestSASLPlain(t *testing.T) {
	users := filepath.Join(t.TempDir(), "plain-users")
	if err := os.WriteFile(users, []byte("# test users\nbob:hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := openSecure(t, Options{Listeners: []Listener{{Name: "SASL_PLAINTEXT", Protocol: "SASL_PLAINTEXT", Addr: "127.0.0.1:0"}},
		SASLPlainUsersFile: users})
	ctx := testCtx(t)
	for _, tc := range []struct {
		pass string
		want error
	}{{"hunter2", nil}, {"hunter3", kerr.SaslAuthenticationFailed}} {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.SASL(plain.Auth{User: "bob", Pass: tc.pass}.AsMechanism()))
		if err != nil {
			t.Fatal(err)
		}
		err = cl.Ping(ctx)
		cl.Close()
		if !errors.Is(err, tc.want) && (err != nil || tc.want != nil) {
			t.Fatalf("PLAIN with password %q: %v, want %v", tc.pass, err, tc.want)
		}
	}
}

// A client that does not authenticate on a SASL listener may send
// ApiVersions, but its first other request closes the connection.
func TestSASLListenerRefusesUnauthenticated(t *testing.T) {
	pki := newTestPKI(t)
	b := openSecure(t, Options{Listeners: secureListeners(), TLSCertFile: pki.certFile, TLSKeyFile: pki.keyFile})
	nc, err := tls.Dial("tcp", b.ListenerAddr("SECURE"), pki.clientTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	send := func(r kmsg.Request, corr int32) {
		t.Helper()
		buf := appendRequest(nil, r, corr)
		if _, err := nc.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	send(kmsg.NewPtrApiVersionsRequest(), 1)
	if _, err := readResponseFrame(nc); err != nil {
		t.Fatalf("ApiVersions before authentication: %v", err)
	}
	send(kmsg.NewPtrMetadataRequest(), 2)
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := readResponseFrame(nc); err == nil {
		t.Fatalf("Metadata before authentication answered (%d bytes), want the connection closed", len(b))
	}
}

// mTLS: a listener verifying client certificates refuses a client without
// one, and serves one with a certificate from the CA.
func TestMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	b := openSecure(t, Options{Listeners: []Listener{{Name: "SSL", Protocol: "SSL", Addr: "127.0.0.1:0"}},
		TLSCertFile: pki.certFile, TLSKeyFile: pki.keyFile, TLSClientCAFile: pki.caFile})
	ctx := testCtx(t)
	noCert, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DialTLSConfig(pki.clientTLS()))
	if err != nil {
		t.Fatal(err)
	}
	defer noCert.Close()
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := noCert.Ping(pctx); err == nil {
		t.Fatal("client without a certificate was served")
	}
	withCert := pki.clientTLS()
	withCert.Certificates = []tls.Certificate{pki.clientCert}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DialTLSConfig(withCert))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Ping(ctx); err != nil {
		t.Fatalf("client with a certificate: %v", err)
	}
}

// Under mutual TLS the certificate's subject is the principal ACLs name.
func TestMutualTLSPrincipal(t *testing.T) {
	pki := newTestPKI(t)
	dir := t.TempDir()
	acl, err := ParseACL("TOPIC", "alice-", "PREFIXED", "User:CN=alice,O=Acme", "*", "DESCRIBE", "ALLOW")
	if err != nil {
		t.Fatal(err)
	}
	if err := AddACLs(dir, []ACL{acl}); err != nil {
		t.Fatal(err)
	}
	b := openSecure(t, Options{DataDir: dir, Listeners: []Listener{{Name: "SSL", Protocol: "SSL", Addr: "127.0.0.1:0"}},
		TLSCertFile: pki.certFile, TLSKeyFile: pki.keyFile, TLSClientCAFile: pki.caFile,
		Authorizer: true, SuperUsers: []string{"User:CN=admin"}})
	admCert, admKey := pki.issue(t, "admin", pkix.Name{CommonName: "admin"}, false)
	client := func(certFile, keyFile string) *kgo.Client {
		cfg := pki.clientTLS()
		kp, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{kp}
		return newClient(t, b, kgo.DialTLSConfig(cfg))
	}
	if _, err := kadm.NewClient(client(admCert, admKey)).CreateTopics(testCtx(t), 1, 1, nil, "alice-1", "bob-1"); err != nil {
		t.Fatal(err)
	}
	if got := metadataTopics(t, client(pki.clientCertFile, pki.clientKeyFile)); !slices.Equal(got, []string{"alice-1"}) {
		t.Fatalf("User:CN=alice,O=Acme sees %v, want [alice-1]", got)
	}
}

// The TLS certificate is reloaded when its files change.
func TestTLSCertificateReload(t *testing.T) {
	pki := newTestPKI(t)
	b := openSecure(t, Options{Listeners: []Listener{{Name: "SSL", Protocol: "SSL", Addr: "127.0.0.1:0"}},
		TLSCertFile: pki.certFile, TLSKeyFile: pki.keyFile})
	serial := func() *big.Int {
		nc, err := tls.Dial("tcp", b.Addr(), pki.clientTLS())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		return nc.ConnectionState().PeerCertificates[0].SerialNumber
	}
	first := serial()
	c, k := pki.issue(t, "server2", pkix.Name{CommonName: "localhost"}, true)
	for _, mv := range [][2]string{{c, pki.certFile}, {k, pki.keyFile}} {
		data, err := os.ReadFile(mv[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(mv[1], data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for serial().Cmp(first) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("certificate not reloaded within 10s of its files changing")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestSecurityOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"bad protocol", Options{Listeners: []Listener{{Name: "X", Protocol: "TLS", Addr: "127.0.0.1:0"}}}},
		{"ssl without cert", Options{Listeners: []Listener{{Name: "S", Protocol: "SSL", Addr: "127.0.0.1:0"}}}},
		{"duplicate name", Options{Listeners: []Listener{{Name: "A", Protocol: "PLAINTEXT", Addr: "127.0.0.1:0"}, {Name: "A", Protocol: "PLAINTEXT", Addr: "127.0.0.1:0"}}}},
		{"listen and listeners", Options{Listen: "127.0.0.1:0", Listeners: []Listener{{Name: "A", Protocol: "PLAINTEXT", Addr: "127.0.0.1:0"}}}},
		{"super users without authorizer", Options{SuperUsers: []string{"User:admin"}}},
		{"cluster with a SASL inter-broker listener", Options{ControllerVoters: "1@127.0.0.1:9093", NodeID: 1, Listeners: []Listener{{Name: "A", Protocol: "SASL_PLAINTEXT", Addr: "127.0.0.1:0"}}}},
		{"inter-broker listener unknown", Options{ControllerVoters: "1@127.0.0.1:9093", NodeID: 1, InterBrokerListener: "B", Listeners: []Listener{{Name: "A", Protocol: "PLAINTEXT", Addr: "127.0.0.1:0"}}}},
		{"inter-broker listener without a cluster", Options{InterBrokerListener: "A", Listeners: []Listener{{Name: "A", Protocol: "PLAINTEXT", Addr: "127.0.0.1:0"}}}},
		{"SSL inter-broker listener without a CA", Options{ControllerVoters: "1@127.0.0.1:9093", NodeID: 1, TLSCertFile: "c", TLSKeyFile: "k",
			Listeners: []Listener{{Name: "A", Protocol: "SSL", Addr: "127.0.0.1:0"}}}},
		{"authorizer with a PLAINTEXT inter-broker listener", Options{ControllerVoters: "1@127.0.0.1:9093", NodeID: 1, Authorizer: true,
			Listeners: []Listener{{Name: "A", Protocol: "PLAINTEXT", Addr: "127.0.0.1:0"}}}},
		{"controller TLS without certificates", Options{ControllerVoters: "1@127.0.0.1:9093", NodeID: 1, ControllerTLS: true}},
		{"controller TLS and authorizer without super users", Options{ControllerVoters: "1@127.0.0.1:9093", NodeID: 1, ControllerTLS: true, Authorizer: true,
			TLSCertFile: "c", TLSKeyFile: "k", TLSClientCAFile: "ca", Listeners: []Listener{{Name: "A", Protocol: "SSL", Addr: "127.0.0.1:0"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			o.EnsureDefaults()
			if err := o.Validate(); err == nil {
				t.Fatalf("%+v validated", tc.opts)
			}
		})
	}
	if _, err := ParseListener("SECURE=SASL_SSL://127.0.0.1:9094"); err != nil {
		t.Fatal(err)
	}
	if l, err := ParseListener("SSL://:9093"); err != nil || l.Name != "SSL" || l.Addr != ":9093" {
		t.Fatalf("ParseListener(SSL://:9093) = %+v, %v", l, err)
	}
}

// appendRequest appends a framed request (header v1, version 0 body) to
// dst.
func appendRequest(dst []byte, r kmsg.Request, corr int32) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, 0)
	dst = binary.BigEndian.AppendUint16(dst, uint16(r.Key()))
	dst = binary.BigEndian.AppendUint16(dst, uint16(r.GetVersion()))
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	dst = binary.BigEndian.AppendUint16(dst, 0xffff)
	dst = r.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// readResponseFrame reads one response frame (without its size prefix).
func readResponseFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	resp := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err := io.ReadFull(r, resp)
	return resp, err
}

// An unauthenticated connection holds little: a frame above the
// pre-authentication cap closes it unread, and a flood of ApiVersions
// requests (the only ones it may send) whose answers it never reads costs
// the broker a bounded amount of memory however much it sends, none of it
// charged to the request memory of authenticated clients.
func TestUnauthenticatedFlood(t *testing.T) {
	b := openSecure(t, Options{Listeners: []Listener{{Name: "S", Protocol: "SASL_PLAINTEXT", Addr: "127.0.0.1:0"}}})

	// A 1 MiB frame announced before authentication: closed at once.
	nc, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write(binary.BigEndian.AppendUint32(nil, 1<<20)); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := readResponseFrame(nc); err == nil {
		t.Fatal("a 1 MiB frame before authentication was answered")
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("a 1 MiB frame before authentication did not close the connection")
	}

	// 128 MiB of 60 KB ApiVersions requests, never reading an answer,
	// while the heap is sampled.
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	stop := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var top uint64
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				peak <- top
				return
			case <-tick.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				top = max(top, m.HeapInuse)
			}
		}
	}()
	fc, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	req.ClientSoftwareName = strings.Repeat("x", 60<<10)
	req.ClientSoftwareVersion = "1"
	frame := appendFlexibleRequest(nil, req, 1)
	sent := 0
	for sent < 128<<20 {
		_ = fc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		n, err := fc.Write(frame)
		sent += n
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break // the broker stopped reading: bounded too
		}
		if err != nil {
			t.Fatalf("flood write after %d bytes: %v", sent, err)
		}
	}
	close(stop)
	grew := int64(<-peak) - int64(base)
	t.Logf("sent %d MiB; heap in use grew by at most %d MiB", sent>>20, grew>>20)
	if grew > 64<<20 {
		t.Fatalf("heap in use grew by %d MiB while an unauthenticated connection sent %d MiB", grew>>20, sent>>20)
	}
	if n := b.srv.InflightBytes(); n != 0 {
		t.Fatalf("unauthenticated frames hold %d bytes of request memory", n)
	}
}

// appendFlexibleRequest appends a framed request with header v2 (for
// flexible versions).
func appendFlexibleRequest(dst []byte, r kmsg.Request, corr int32) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, 0)
	dst = binary.BigEndian.AppendUint16(dst, uint16(r.Key()))
	dst = binary.BigEndian.AppendUint16(dst, uint16(r.GetVersion()))
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	dst = binary.BigEndian.AppendUint16(dst, 0xffff)
	dst = append(dst, 0) // no tagged fields
	dst = r.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// With ConnectionsMaxReauth, franz-go re-authenticates on its connections
// (KIP-368) and goes on producing; a client that does not re-authenticate
// is disconnected at its first request after the session ends.
func TestSASLReauthentication(t *testing.T) {
	users := filepath.Join(t.TempDir(), "plain-users")
	if err := os.WriteFile(users, []byte("bob:hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const lifetime = 1500 * time.Millisecond
	b := openSecure(t, Options{Listeners: []Listener{{Name: "SASL_PLAINTEXT", Protocol: "SASL_PLAINTEXT", Addr: "127.0.0.1:0"}},
		SASLPlainUsersFile: users, ConnectionsMaxReauth: lifetime})
	ctx := testCtx(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.SASL(plain.Auth{User: "bob", Pass: "hunter2"}.AsMechanism()),
		kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("reauth"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err) // connections up
	}
	before := testutil.ToFloat64(b.srv.SASLSuccesses())
	for end := time.Now().Add(3 * lifetime); time.Now().Before(end); {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatalf("produce across session ends: %v", err)
		}
	}
	if got := testutil.ToFloat64(b.srv.SASLSuccesses()) - before; got < 2 {
		t.Fatalf("%v re-authentications over 3 session lifetimes, want at least 2", got)
	}

	// A raw client that authenticates once and never again.
	nc, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(1)
	hs.Mechanism = "PLAIN"
	if _, err := nc.Write(appendRequest(nil, hs, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := readResponseFrame(nc); err != nil {
		t.Fatal(err)
	}
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.SetVersion(1)
	au.SASLAuthBytes = []byte("\x00bob\x00hunter2")
	if _, err := nc.Write(appendRequest(nil, au, 2)); err != nil {
		t.Fatal(err)
	}
	frame, err := readResponseFrame(nc)
	if err != nil {
		t.Fatal(err)
	}
	var ar kmsg.SASLAuthenticateResponse
	ar.SetVersion(1)
	if err := ar.ReadFrom(frame[4:]); err != nil || ar.ErrorCode != 0 || ar.SessionLifetimeMillis != lifetime.Milliseconds() {
		t.Fatalf("SaslAuthenticate: %+v %v, want success with lifetime %v", ar, err, lifetime)
	}
	md := kmsg.NewPtrMetadataRequest()
	if _, err := nc.Write(appendRequest(nil, md, 3)); err != nil {
		t.Fatal(err)
	}
	if _, err := readResponseFrame(nc); err != nil {
		t.Fatalf("Metadata within the session: %v", err)
	}
	time.Sleep(lifetime + 200*time.Millisecond) // the session's end is what is tested
	if _, err := nc.Write(appendRequest(nil, md, 4)); err != nil {
		t.Fatal(err)
	}
	if _, err := readResponseFrame(nc); err == nil {
		t.Fatal("Metadata after the session ended was answered")
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the connection stayed open after its session ended")
	}
}
