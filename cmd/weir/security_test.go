package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/weir-dev/weir/broker"
)

// weir user create in a stopped broker's data directory gives the broker
// started on it a SCRAM user that authenticates; list shows it; delete
// removes it.
func TestUserCommandsOffline(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("opensesame\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "", "user", "create", "carol", "--data-dir", dir, "--password-file", pwFile)
	t.Setenv(passwordEnv, "other")
	mustRun(t, "", "user", "create", "dan", "--data-dir", dir, "--mechanism", "scram-sha-256")
	out := mustRun(t, "", "user", "list", "--data-dir", dir)
	for _, want := range []string{"carol  SCRAM-SHA-512  8192", "dan    SCRAM-SHA-256  8192"} {
		if !strings.Contains(out, want) {
			t.Fatalf("user list:\n%s\nwant a line %q", out, want)
		}
	}
	if strings.Contains(readAll(t, filepath.Join(dir, "scram-users.json")), "opensesame") {
		t.Fatal("the password is stored in clear")
	}

	br, err := broker.Open(broker.Options{DataDir: dir, Listeners: []broker.Listener{{Name: "S", Protocol: "SASL_PLAINTEXT", Addr: "127.0.0.1:0"}}})
	if err != nil {
		t.Fatal(err)
	}
	ping := func(user, pass string, sha512 bool) error {
		a := scram.Auth{User: user, Pass: pass}
		m := a.AsSha256Mechanism()
		if sha512 {
			m = a.AsSha512Mechanism()
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(br.Addr()), kgo.SASL(m))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return cl.Ping(ctx)
	}
	if err := ping("carol", "opensesame", true); err != nil {
		t.Fatalf("carol: %v", err)
	}
	if err := ping("dan", "other", false); err != nil {
		t.Fatalf("dan: %v", err)
	}
	// The data directory is the broker's while it runs.
	if _, err := runWeir(t, "", "user", "delete", "carol", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "data directory") {
		t.Fatalf("user delete beside a running broker: %v, want a data directory lock error", err)
	}
	_ = br.Close()
	mustRun(t, "", "user", "delete", "carol", "--data-dir", dir)
	br, err = broker.Open(broker.Options{DataDir: dir, Listeners: []broker.Listener{{Name: "S", Protocol: "SASL_PLAINTEXT", Addr: "127.0.0.1:0"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	if err := ping("carol", "opensesame", true); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("deleted user: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
}

func TestUserCreateNeedsPassword(t *testing.T) {
	t.Setenv(passwordEnv, "")
	_, err := runWeir(t, "", "user", "create", "x", "--data-dir", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "never on the command line") {
		t.Fatalf("user create without a password: %v", err)
	}
}

func TestBrokerListenerFlags(t *testing.T) {
	run := func(args ...string) error {
		root := newRootCmd()
		root.SetArgs(append([]string{"broker", "--data-dir", t.TempDir(), "--log-level", "error"}, args...))
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return root.ExecuteContext(ctx)
	}
	if err := run("--listener", "A=PLAINTEXT://127.0.0.1:0", "--listener", "B=SASL_PLAINTEXT://127.0.0.1:0",
		"--advertised-listener", "B=broker.example:9095"); err != nil {
		t.Fatalf("sound listeners refused: %v", err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--listener", "X=TLS://127.0.0.1:0"}, "want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"},
		{[]string{"--listener", "127.0.0.1:0"}, "want NAME=PROTOCOL://host:port"},
		{[]string{"--listener", "S=SSL://127.0.0.1:0"}, "needs --tls-cert and --tls-key"},
		{[]string{"--listen", "127.0.0.1:0", "--listener", "A=PLAINTEXT://127.0.0.1:0"}, "both given"},
		{[]string{"--listener", "A=PLAINTEXT://127.0.0.1:0", "--advertised-listener", "B=h:1"}, `no --listener is named "B"`},
		{[]string{"--super-users", "User:admin"}, "without --authorizer"},
	} {
		if err := run(c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("weir broker %v: %v, want an error saying %q", c.args, err, c.want)
		}
	}
}

func readAll(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// weir acl add in a stopped broker's data directory; list and remove
// through the running broker.
func TestACLCommands(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "", "acl", "add", "--data-dir", dir, "--principal", "User:app", "--operation", "read,write",
		"--topic", "orders-", "--pattern", "prefixed")
	mustRun(t, "", "acl", "add", "--data-dir", dir, "--principal", "User:app", "--operation", "read", "--group", "app")
	out := mustRun(t, "", "acl", "list", "--data-dir", dir)
	if n := strings.Count(out, "User:app"); n != 3 {
		t.Fatalf("acl list --data-dir:\n%s\nwant 3 ACLs", out)
	}
	// Through a broker whose loopback plaintext listener is a super user.
	br, err := broker.Open(broker.Options{DataDir: dir, Listen: "127.0.0.1:0", Authorizer: true, SuperUsers: []string{"User:ANONYMOUS"}})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	out = mustRun(t, "", "acl", "list", "--brokers", br.Addr(), "--topic", "orders-eu", "--pattern", "match")
	if !strings.Contains(out, "User:app   *     ALLOW       READ") || !strings.Contains(out, "WRITE") || strings.Contains(out, "GROUP") {
		t.Fatalf("acl list --topic orders-eu --pattern match:\n%s", out)
	}
	out = mustRun(t, "", "acl", "remove", "--brokers", br.Addr(), "--principal", "User:app", "--operation", "write")
	if strings.Count(out, "User:app") != 1 || !strings.Contains(out, "WRITE") {
		t.Fatalf("acl remove printed:\n%s", out)
	}
	out = mustRun(t, "", "acl", "list", "--brokers", br.Addr())
	if strings.Count(out, "User:app") != 2 || strings.Contains(out, "WRITE") {
		t.Fatalf("acl list after remove:\n%s", out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"acl", "add", "--data-dir", dir, "--operation", "read", "--topic", "t"}, "--principal is required"},
		{[]string{"acl", "add", "--data-dir", dir, "--principal", "User:a", "--operation", "fly", "--topic", "t"}, `--operation "fly"`},
		{[]string{"acl", "add", "--data-dir", dir, "--principal", "User:a", "--operation", "read", "--topic", "t", "--group", "g"}, "name one resource"},
		{[]string{"acl", "add", "--data-dir", dir, "--principal", "alice", "--operation", "read", "--topic", "t"}, "want Type:name"},
		{[]string{"acl", "remove", "--brokers", br.Addr()}, "does not delete every ACL"},
	} {
		if _, err := runWeir(t, "", c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("weir %v: %v, want an error saying %q", c.args, err, c.want)
		}
	}
}

// selfSignedCert writes a self-signed certificate for 127.0.0.1 (its own
// CA) and its key, and returns their files.
func selfSignedCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// The client commands reach a SASL_SSL listener with --tls-ca,
// --sasl-mechanism, --sasl-user and the password from the environment.
func TestClientCommandsSASLSSL(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(passwordEnv, "admin-pw")
	mustRun(t, "", "user", "create", "admin", "--data-dir", dir)
	cert, key := selfSignedCert(t)
	br, err := broker.Open(broker.Options{DataDir: dir, TLSCertFile: cert, TLSKeyFile: key, Authorizer: true, SuperUsers: []string{"User:admin"},
		Listeners: []broker.Listener{{Name: "SECURE", Protocol: "SASL_SSL", Addr: "127.0.0.1:0"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	sec := []string{"--brokers", br.Addr(), "--tls-ca", cert, "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-user", "admin"}
	t.Setenv(envSASLPassword, "admin-pw")
	mustRun(t, "", append([]string{"topic", "create", "secure", "-p", "1"}, sec...)...)
	mustRun(t, "k\tv\n", append([]string{"produce", "secure", "--key-separator", `\t`}, sec...)...)
	if out := mustRun(t, "", append([]string{"consume", "secure", "--until-end", "--format", `%k=%v\n`}, sec...)...); out != "k=v\n" {
		t.Fatalf("consume over SASL_SSL: %q", out)
	}
	mustRun(t, "", append([]string{"acl", "add", "--principal", "User:app", "--operation", "read", "--topic", "secure"}, sec...)...)
	if out := mustRun(t, "", append([]string{"acl", "list"}, sec...)...); !strings.Contains(out, "User:app") {
		t.Fatalf("acl list over SASL_SSL:\n%s", out)
	}
	t.Setenv(envSASLPassword, "wrong")
	if _, err := runWeir(t, "", append([]string{"topic", "list", "--timeout", "5s"}, sec...)...); err == nil || !strings.Contains(err.Error(), "SASL_AUTHENTICATION_FAILED") {
		t.Fatalf("topic list with a wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	t.Setenv(envSASLPassword, "")
	if _, err := runWeir(t, "", append([]string{"topic", "list"}, sec...)...); err == nil || !strings.Contains(err.Error(), "never on the command line") {
		t.Fatalf("topic list without a password: %v", err)
	}
}
