package broker_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/weir-dev/weir/broker"
	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
	"github.com/weir-dev/weir/runtime"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// and returns their files and a pool trusting it.
func selfSigned(t *testing.T) (string, string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
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
	cert, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	c, _ := x509.ParseCertificate(der)
	pool.AddCert(c)
	return cert, keyFile, pool
}

// appACLs are the ACLs the orders-per-minute application (application id
// orders-app) needs as User:app: read its input, write its output, its
// consumer group, and everything on its internal topics (it creates them).
func appACLs(t *testing.T) []broker.ACL {
	t.Helper()
	var out []broker.ACL
	for _, a := range [][4]string{
		{"TOPIC", orders.InputTopic, "LITERAL", "READ"},
		{"TOPIC", orders.UpdatesTopic, "LITERAL", "WRITE"},
		{"TOPIC", "orders-app-", "PREFIXED", "ALL"},
		{"GROUP", "orders-app", "LITERAL", "READ"},
	} {
		acl, err := broker.ParseACL(a[0], a[1], a[2], "User:app", "*", a[3], "ALLOW")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, acl)
	}
	return out
}

// The orders-per-minute application runs against a SASL_SSL listener as a
// principal allowed only its own topics and group, configured with
// runtime.TLS and runtime.SASL: it counts the orders and commits its
// offsets.
func TestRuntimeOverSASLSSLWithACLs(t *testing.T) {
	dir := t.TempDir()
	for u, pw := range map[string]string{"admin": "admin-pw", "app": "app-pw"} {
		if err := broker.SetSCRAMUser(dir, u, broker.SCRAMSHA512, pw, 4096); err != nil {
			t.Fatal(err)
		}
	}
	if err := broker.AddACLs(dir, appACLs(t)); err != nil {
		t.Fatal(err)
	}
	cert, key, pool := selfSigned(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.Open(broker.Options{DataDir: dir, TLSCertFile: cert, TLSKeyFile: key, Authorizer: true,
		SuperUsers: []string{"User:admin"}, GroupInitialRebalanceDelay: -1, Logger: quiet,
		Listeners: []broker.Listener{{Name: "SECURE", Protocol: "SASL_SSL", Addr: "127.0.0.1:0"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tlsCfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	as := func(user, pw string) []kgo.Opt {
		return []kgo.Opt{kgo.SeedBrokers(b.Addr()), kgo.DialTLSConfig(tlsCfg),
			kgo.SASL(scram.Auth{User: user, Pass: pw}.AsSha512Mechanism())}
	}
	admin, err := kgo.NewClient(append(as("admin", "admin-pw"), kgo.DefaultProduceTopic(orders.InputTopic))...)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := kadm.NewClient(admin).CreateTopics(ctx, 2, 1, nil, orders.InputTopic, orders.UpdatesTopic); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	const n = 20
	for i := range n {
		val, err := orders.OrderSerde().Serialize(orders.InputTopic, orders.Order{ID: "o", Amount: int64(i)})
		if err != nil {
			t.Fatal(err)
		}
		r := &kgo.Record{Key: []byte([]string{"alice", "bob"}[i%2]), Value: val, Timestamp: now}
		if err := admin.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	topo, err := orders.Topology(false)
	if err != nil {
		t.Fatal(err)
	}
	app, err := runtime.New(topo, runtime.ApplicationID("orders-app"), runtime.Brokers(b.Addr()),
		runtime.StateDir(t.TempDir()), runtime.CommitInterval(200*time.Millisecond), runtime.Logger(quiet),
		runtime.TLS(tlsCfg), runtime.SASL(runtime.SASLSCRAMSHA512, "app", "app-pw"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	stopped := false
	defer func() {
		if stopped {
			return
		}
		go func() { _ = app.Close() }()
		select {
		case err := <-done:
			if err != nil && ctx.Err() == nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("the application did not stop within 20s of Close")
		}
	}()

	// The counts arrive, and the group commits every input record.
	adm := kadm.NewClient(admin)
	for {
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("the application stopped: %v", err)
		case <-ctx.Done():
			t.Fatal("the application did not commit its input within 60s")
		case <-time.After(200 * time.Millisecond):
		}
		offs, err := adm.FetchOffsets(ctx, "orders-app")
		if err != nil {
			continue
		}
		committed := int64(0)
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Topic == orders.InputTopic {
				committed += o.At
			}
		})
		if committed < n {
			continue
		}
		ends, err := adm.ListEndOffsets(ctx, orders.UpdatesTopic)
		if err != nil {
			t.Fatal(err)
		}
		var out int64
		ends.Each(func(o kadm.ListedOffset) { out += o.Offset })
		if out == 0 {
			t.Fatal("input committed but no count written")
		}
		return
	}
}
