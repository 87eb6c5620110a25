package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/weir-dev/weir/broker/internal/base"
)

// secureCluster is a 3-node cluster where every node has a SASL_SSL
// client listener (CLIENT, listed first) and an SSL inter-broker listener
// (INTERNAL, which requests client certificates), speaks mutual TLS on its
// controller listener, and runs the authorizer with the brokers'
// certificate principal and User:CN=admin as super users.
type secureCluster struct {
	*testCluster
	pki   *testPKI
	admin tls.Certificate
}

// brokerPrincipal is the principal of the brokers' certificate.
const brokerPrincipal = "User:CN=localhost"

func startSecureCluster(t *testing.T) *secureCluster {
	t.Helper()
	pki := newTestPKI(t)
	adminCert, adminKey := pki.issue(t, "admin", pkix.Name{CommonName: "admin"}, false)
	admin, err := tls.LoadX509KeyPair(adminCert, adminKey)
	if err != nil {
		t.Fatal(err)
	}
	c := startTestClusterWith(t, make([]string, 3), func(_ int, o *Options) {
		o.Listen = ""
		o.Listeners = []Listener{
			{Name: "CLIENT", Protocol: "SASL_SSL", Addr: "127.0.0.1:0"},
			{Name: "INTERNAL", Protocol: "SSL", Addr: "127.0.0.1:0"},
		}
		o.InterBrokerListener = "INTERNAL"
		o.ControllerTLS = true
		o.TLSCertFile, o.TLSKeyFile, o.TLSClientCAFile, o.TLSClientAuth = pki.certFile, pki.keyFile, pki.caFile, "requested"
		o.Authorizer = true
		o.SuperUsers = []string{brokerPrincipal, "User:CN=admin"}
		o.ReplicaLagTime = 2 * time.Second
	})
	return &secureCluster{testCluster: c, pki: pki, admin: admin}
}

// adminClient connects to node i's INTERNAL listener with the admin's
// certificate.
func (c *secureCluster) adminClient(t *testing.T, i int, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cfg := c.pki.clientTLS()
	cfg.Certificates = []tls.Certificate{c.admin}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.brokers[i].ListenerAddr("INTERNAL")), kgo.DialTLSConfig(cfg),
		kgo.RetryTimeout(20 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// userClient connects to node i's CLIENT listener as user (no SASL when
// user is empty).
func (c *secureCluster) userClient(t *testing.T, i int, user, password string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	o := []kgo.Opt{kgo.SeedBrokers(c.brokers[i].ListenerAddr("CLIENT")), kgo.DialTLSConfig(c.pki.clientTLS()),
		kgo.RetryTimeout(3 * time.Second), kgo.RequestRetries(2)}
	if user != "" {
		o = append(o, kgo.SASL(scram.Auth{User: user, Pass: password}.AsSha512Mechanism()))
	}
	cl, err := kgo.NewClient(append(o, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// waitUserEverywhere waits until every broker has applied user's
// credential and the ACLs that let it describe topic: each learns them
// from the metadata log after the broker that took the change has
// answered, and a client's SASL or authorization failure can be fatal
// (a transactional producer's InitProducerID).
func (c *secureCluster) waitUserEverywhere(t *testing.T, ctx context.Context, user, password, topic string) {
	t.Helper()
	for i := range c.brokers {
		eventually(t, 20*time.Second, fmt.Sprintf("broker %d knows %s and her ACLs", i+1, user), func() error {
			// NB: a fresh client each time, so that each try
			// authenticates anew.
			cl := c.userClient(t, i, user, password)
			defer cl.Close()
			md, err := kadm.NewClient(cl).Metadata(ctx, topic)
			if err != nil {
				return err
			}
			if td, ok := md.Topics[topic]; !ok || td.Err != nil {
				return fmt.Errorf("topic %s not visible to %s: %v", topic, user, td.Err)
			}
			return nil
		})
	}
}

// waitThreeBrokers waits until the admin sees the three brokers.
func (c *secureCluster) waitThreeBrokers(t *testing.T, ctx context.Context) {
	t.Helper()
	eventually(t, 20*time.Second, "three brokers registered", func() error {
		// NB: a fresh client each time: kgo answers from its metadata
		// cache for a while.
		cl := c.adminClient(t, 0)
		defer cl.Close()
		md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
		if err != nil {
			return err
		}
		if len(md.Brokers) != 3 {
			return fmt.Errorf("%d brokers", len(md.Brokers))
		}
		return nil
	})
}

// TestClusterSecurity: in a 3-broker cluster with SASL_SSL client
// listeners, an SSL inter-broker listener and mutual TLS between the
// controllers, a SCRAM user and ACLs created through one broker (as
// metadata records) authenticate and authorize the user on the others;
// clients are told the other brokers' CLIENT addresses; acks=all
// produces replicate to every broker over the SSL listener (followers
// authorized as the brokers' certificate principal); a client without
// credentials, or a user without ACLs, gets nothing; once the ACLs and
// then the user are deleted through a third broker, every broker refuses.
func TestClusterSecurity(t *testing.T) {
	c := startSecureCluster(t)
	ctx := testCtx(t)
	adm := kadm.NewClient(c.adminClient(t, 0))

	c.waitThreeBrokers(t, ctx)
	if _, err := adm.CreateTopic(ctx, 3, 3, nil, "orders"); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	// Through broker 1: a user and its ACLs.
	up, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
		{User: "alice", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "s3cret"},
		{User: "bob", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "bobpw"},
	})
	if err == nil {
		err = up.Error()
	}
	if err != nil {
		t.Fatalf("create users through broker 1: %v", err)
	}
	acls := kadm.NewACLs().Allow("User:alice").AllowHosts().ResourcePatternType(kadm.ACLPatternLiteral).
		Topics("orders").Groups("orders-app").Operations(kadm.OpRead, kadm.OpWrite, kadm.OpDescribe)
	cr, err := adm.CreateACLs(ctx, acls)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range cr {
		if r.Err != nil {
			t.Fatalf("create ACL %+v: %v", r, r.Err)
		}
	}

	// On broker 2's CLIENT listener, alice authenticates and is allowed.
	alice := c.userClient(t, 1, "alice", "s3cret", kgo.DefaultProduceTopic("orders"), kgo.RetryTimeout(20*time.Second))
	eventually(t, 20*time.Second, "alice produces through broker 2", func() error {
		return alice.ProduceSync(ctx, &kgo.Record{Value: []byte("hello")}).FirstErr()
	})
	// Clients of the CLIENT listener are told every broker's CLIENT
	// address, never its INTERNAL one.
	md, err := kadm.NewClient(alice).BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, b := range c.brokers {
		want = append(want, b.ListenerAddr("CLIENT"))
	}
	for _, b := range md.Brokers {
		got = append(got, net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))))
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("brokers advertised to a CLIENT listener client: %v, want %v", got, want)
	}
	for i := range 20 {
		if err := alice.ProduceSync(ctx, &kgo.Record{Value: []byte("r" + strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	// Every broker's copy of every partition holds what was acknowledged:
	// followers fetched over the SSL inter-broker listener.
	for p := range int32(3) {
		var end base.Offset
		eventually(t, 10*time.Second, "a leader's end", func() error {
			for _, b := range c.brokers {
				if l := partitionLog(b, "orders", p); l != nil && l.HighWatermark() > end {
					end = l.HighWatermark()
				}
			}
			return nil
		})
		waitReplicated(t, c.testCluster, "orders", p, end, 20*time.Second)
	}

	// alice consumes in her group through broker 3.
	cons := c.userClient(t, 2, "alice", "s3cret", kgo.ConsumeTopics("orders"), kgo.ConsumerGroup("orders-app"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.RetryTimeout(20*time.Second))
	n := 0
	for n < 21 {
		fs := cons.PollFetches(ctx)
		n += len(fs.Records())
		if err := fs.Err(); err != nil {
			// The group's first join can meet a coordinator that is
			// still loading its partition or a moved one: the client
			// reports the retriable error and rejoins by itself.
			if gs := (*kgo.ErrGroupSession)(nil); errors.As(err, &gs) && kerr.IsRetriable(gs.Err) && ctx.Err() == nil {
				t.Logf("alice's group session: %v (the client rejoins)", err)
				continue
			}
			t.Fatalf("alice consumes through broker 3: %v", err)
		}
	}

	// Through broker 3, the image answers DescribeAcls and
	// DescribeUserScramCredentials.
	adm3 := kadm.NewClient(c.adminClient(t, 2))
	dr, err := adm3.DescribeACLs(ctx, kadm.NewACLs().AnyResource().Allow("User:alice").AllowHosts().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err != nil {
		t.Fatal(err)
	}
	if len(dr) != 1 || len(dr[0].Described) != 6 {
		t.Fatalf("ACLs described by broker 3: %+v, want the 6 created through broker 1", dr)
	}
	users, err := adm3.DescribeUserSCRAMs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := users["alice"]; !ok || len(users) != 2 {
		t.Fatalf("users described by broker 3: %v", users)
	}

	// No credentials: the SASL_SSL listener serves nothing.
	anon := c.userClient(t, 0, "", "")
	if _, err := kadm.NewClient(anon).ListTopics(ctx); err == nil {
		t.Fatal("a client without credentials listed topics")
	}
	// bob authenticates but has no ACL: he sees no topic and cannot
	// produce.
	bob := c.userClient(t, 0, "bob", "bobpw", kgo.DefaultProduceTopic("orders"))
	tl, err := kadm.NewClient(bob).ListTopics(ctx)
	if err != nil {
		t.Fatalf("bob lists topics: %v", err)
	}
	if len(tl) != 0 {
		t.Fatalf("bob, with no ACLs, sees topics %v", tl.Names())
	}
	if err := bob.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("bob produces: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}

	// Through broker 3: delete alice's ACLs. Every broker then refuses her.
	del, err := adm3.DeleteACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts().AnyResource().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err != nil {
		t.Fatal(err)
	}
	if len(del) != 1 || del[0].Err != nil || len(del[0].Deleted) != 6 {
		t.Fatalf("delete alice's ACLs: %+v", del)
	}
	for i := range c.brokers {
		eventually(t, 10*time.Second, fmt.Sprintf("broker %d refuses alice's produce", i+1), func() error {
			cl := c.userClient(t, i, "alice", "s3cret", kgo.DefaultProduceTopic("orders"))
			defer cl.Close()
			err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("late")}).FirstErr()
			if !errors.Is(err, kerr.TopicAuthorizationFailed) {
				return fmt.Errorf("produce: %v", err)
			}
			return nil
		})
	}
	// Delete the user: every broker refuses her password.
	dr2, err := adm3.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "alice", Mechanism: kadm.ScramSha512}}, nil)
	if err == nil {
		err = dr2.Error()
	}
	if err != nil {
		t.Fatalf("delete alice: %v", err)
	}
	for i := range c.brokers {
		eventually(t, 10*time.Second, fmt.Sprintf("broker %d refuses alice's password", i+1), func() error {
			cl := c.userClient(t, i, "alice", "s3cret")
			defer cl.Close()
			if err := cl.Ping(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
				return fmt.Errorf("ping: %v", err)
			}
			return nil
		})
	}
}

// TestClusterKcatSASLSSL: kcat (librdkafka) against the secured cluster:
// a user created through broker 1 produces and consumes with
// SCRAM-SHA-512 through broker 3's SASL_SSL listener, following the
// metadata to the leaders' CLIENT listeners, and sees only the topic its
// ACL names; a wrong password is refused.
func TestClusterKcatSASLSSL(t *testing.T) {
	kcat := requireTool(t, "kcat", "apt-get install kcat")
	c := startSecureCluster(t)
	ctx := testCtx(t)
	adm := kadm.NewClient(c.adminClient(t, 0))
	// NB: CreateTopics reports each topic's refusal in its result, not in
	// its error: replication factor 3 is refused until all three brokers
	// are registered and unfenced.
	eventually(t, 20*time.Second, "topics created", func() error {
		r, err := adm.CreateTopics(ctx, 3, 3, nil, "kc-orders", "kc-other")
		if err != nil {
			return err
		}
		for _, tr := range r {
			if tr.Err != nil && !errors.Is(tr.Err, kerr.TopicAlreadyExists) {
				return fmt.Errorf("%s: %w", tr.Topic, tr.Err)
			}
		}
		return nil
	})
	up, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "app", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "app-pw"}})
	if err == nil {
		err = up.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	cr, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:app").AllowHosts().ResourcePatternType(kadm.ACLPatternLiteral).
		Topics("kc-orders").Groups("kc-g").Operations(kadm.OpRead, kadm.OpWrite, kadm.OpDescribe))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range cr {
		if r.Err != nil {
			t.Fatalf("create ACL %+v: %v", r, r.Err)
		}
	}
	e := &extSecure{pki: c.pki}
	app := e.librdkafkaConf(t, "app", "app-pw")
	addr := c.brokers[2].ListenerAddr("CLIENT")
	// NB: broker 3 learns of the user, the topics and the ACLs from the
	// metadata log, after broker 1 has answered: until it has, kcat may
	// fail to authenticate or see nothing.
	eventually(t, 20*time.Second, "kcat sees the topic its ACL names", func() error {
		got, err := kcatTopicsErr(kcat, addr, app)
		if err != nil {
			return err
		}
		if !slices.Equal(got, []string{"kc-orders"}) {
			return fmt.Errorf("kcat -L lists %v", got)
		}
		return nil
	})
	run(t, "k1:one\nk2:two\nk3:three\n", kcat, "-F", app, "-b", addr, "-t", "kc-orders", "-P", "-K", ":", "-X", "acks=all")
	out := run(t, "", kcat, "-F", app, "-b", addr, "-C", "-t", "kc-orders", "-o", "beginning", "-e", "-q", "-f", "%k:%s\n")
	got := strings.Fields(out)
	slices.Sort(got)
	if !slices.Equal(got, []string{"k1:one", "k2:two", "k3:three"}) {
		t.Fatalf("kcat consumed %q", got)
	}
	out = runFail(t, "", kcat, "-F", e.librdkafkaConf(t, "app", "wrong"), "-b", addr, "-L", "-m", "5")
	if !strings.Contains(out, "Authentication failed") {
		t.Fatalf("kcat with a wrong password:\n%s\nwant an authentication failure", out)
	}
}

// TestClusterSecurityControllerRefusesNonSuperUser: with --controller-tls
// and the authorizer, a client certificate from the brokers' CA whose
// principal is not a super user is refused at every voter's controller
// listener in the TLS handshake (the controller RPC checks no ACL), while
// the brokers, whose principal is one, still reach the controller.
func TestClusterSecurityControllerRefusesNonSuperUser(t *testing.T) {
	c := startSecureCluster(t)
	ctx := testCtx(t)
	appCert, appKey := c.pki.issue(t, "app", pkix.Name{CommonName: "app"}, false)
	app, err := tls.LoadX509KeyPair(appCert, appKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range strings.Split(c.voters, ",") {
		_, addr, _ := strings.Cut(spec, "@")
		cfg := c.pki.clientTLS()
		cfg.Certificates = []tls.Certificate{app}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
		if err == nil {
			// Under TLS 1.3 the server's verdict on the client's
			// certificate arrives after the client's handshake is done.
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = conn.Read(make([]byte, 1))
			_ = conn.Close()
		}
		// NB: a TLS alert from the peer surfaces as a "remote error".
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "remote error" {
			t.Fatalf("controller listener %s with principal User:CN=app: %v, want a TLS alert", addr, err)
		}
	}
	// The brokers still reach the controller over mutual TLS (and
	// register, which a topic of replication factor 3 needs).
	adm := kadm.NewClient(c.adminClient(t, 1))
	eventually(t, 20*time.Second, "topic created through broker 2", func() error {
		_, err := adm.CreateTopic(ctx, 1, 3, nil, "after-refusal")
		if errors.Is(err, kerr.TopicAlreadyExists) {
			return nil
		}
		return err
	})
}

// TestClusterSecurityTransactions: with the authorizer on, a transaction
// across the brokers commits: its coordinator's WriteTxnMarkers to the
// other leaders and their AddPartitionsToTxn (verification, implicit adds)
// to the coordinator go over the SSL inter-broker listener as the brokers'
// certificate principal, a super user, so CLUSTER_ACTION is allowed. A
// user with WRITE on the topic and the transactional id, but no
// CLUSTER_ACTION, is answered CLUSTER_AUTHORIZATION_FAILED for a
// WriteTxnMarkers and for a broker's AddPartitionsToTxn (v4, VerifyOnly),
// and her marker writes nothing.
func TestClusterSecurityTransactions(t *testing.T) {
	c := startSecureCluster(t)
	ctx := testCtx(t)
	adm := kadm.NewClient(c.adminClient(t, 0))
	c.waitThreeBrokers(t, ctx)
	const parts = 3
	leaders := spreadTopic(ctx, t, c.testCluster, adm, "txs", parts)
	up, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
		{User: "carol", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "carolpw"},
	})
	if err == nil {
		err = up.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	acls := kadm.NewACLs().Allow("User:carol").AllowHosts().ResourcePatternType(kadm.ACLPatternLiteral).
		Topics("txs").TransactionalIDs("carol-tx").Operations(kadm.OpWrite, kadm.OpDescribe, kadm.OpRead)
	cr, err := adm.CreateACLs(ctx, acls)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range cr {
		if r.Err != nil {
			t.Fatalf("create ACL %+v: %v", r, r.Err)
		}
	}

	c.waitUserEverywhere(t, ctx, "carol", "carolpw", "txs")
	p := c.userClient(t, 1, "carol", "carolpw", kgo.TransactionalID("carol-tx"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.DefaultProduceTopic("txs"), kgo.RetryTimeout(20*time.Second), kgo.RequestRetries(20))
	committed := txnToEach(ctx, t, p, parts, "c", true)
	txnToEach(ctx, t, p, parts, "a", false)
	committed = append(committed, txnToEach(ctx, t, p, parts, "d", true)...)
	slices.Sort(committed)

	// The coordinator completes the transaction once every leader, two of
	// them remote, wrote its marker; every partition's last stable offset
	// is then its high watermark.
	var coord int32
	eventually(t, 20*time.Second, "carol-tx completed on its coordinator", func() error {
		dt, err := adm.DescribeTransactions(ctx, "carol-tx")
		if err != nil {
			return err
		}
		d, ok := dt["carol-tx"]
		if !ok || d.Err != nil || d.State != "CompleteCommit" {
			return fmt.Errorf("DescribeTransactions(carol-tx): %+v (found %v), want CompleteCommit", d, ok)
		}
		coord = d.Coordinator
		return nil
	})
	remote := 0
	for _, l := range leaders {
		if l != coord {
			remote++
		}
	}
	if remote == 0 {
		t.Fatalf("every partition is led by the coordinator, node %d: no marker crossed brokers", coord)
	}
	eventually(t, 20*time.Second, "every partition stable to its end", func() error {
		hw, err := adm.ListEndOffsets(ctx, "txs")
		if err != nil {
			return err
		}
		lso, err := adm.ListCommittedOffsets(ctx, "txs")
		if err != nil {
			return err
		}
		for part := range int32(parts) {
			h, _ := hw.Lookup("txs", part)
			l, _ := lso.Lookup("txs", part)
			if h.Err != nil || l.Err != nil || h.Offset != 6 || l.Offset != 6 {
				return fmt.Errorf("txs/%d: high watermark %d (%v), last stable offset %d (%v); want 6 and 6", part, h.Offset, h.Err, l.Offset, l.Err)
			}
		}
		return nil
	})
	cons := c.adminClient(t, 0, kgo.ConsumeTopics("txs"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	for len(got) < len(committed) {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read_committed read %v, want %v", got, committed)
		}
		for _, r := range fs.Records() {
			got = append(got, string(r.Value))
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, committed) {
		t.Fatalf("read_committed read %v, want %v", got, committed)
	}

	// carol has no CLUSTER_ACTION: a marker of hers is refused, and
	// writes nothing.
	carol := c.userClient(t, 0, "carol", "carolpw")
	wm := kmsg.NewPtrWriteTxnMarkersRequest()
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed = 1, 0, true
	m.Topics = []kmsg.WriteTxnMarkersRequestMarkerTopic{{Topic: "txs", Partitions: []int32{0}}}
	wm.Markers = []kmsg.WriteTxnMarkersRequestMarker{m}
	wresp, err := wm.RequestWith(ctx, carol)
	if err != nil {
		t.Fatal(err)
	}
	if len(wresp.Markers) != 1 || len(wresp.Markers[0].Topics) != 1 || len(wresp.Markers[0].Topics[0].Partitions) != 1 ||
		wresp.Markers[0].Topics[0].Partitions[0].ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("carol's WriteTxnMarkers: %+v, want CLUSTER_AUTHORIZATION_FAILED", wresp.Markers)
	}
	vreq := kmsg.NewPtrAddPartitionsToTxnRequest()
	vx := kmsg.NewAddPartitionsToTxnRequestTransaction()
	vx.TransactionalID, vx.ProducerID, vx.ProducerEpoch, vx.VerifyOnly = "carol-tx", 1, 0, true
	vx.Topics = []kmsg.AddPartitionsToTxnRequestTransactionTopic{{Topic: "txs", Partitions: []int32{0}}}
	vreq.Transactions = []kmsg.AddPartitionsToTxnRequestTransaction{vx}
	vresp, err := vreq.RequestWith(ctx, carol)
	if err != nil {
		t.Fatal(err)
	}
	if vresp.Version < 4 || vresp.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("carol's AddPartitionsToTxn v%d (VerifyOnly): %s, want CLUSTER_AUTHORIZATION_FAILED", vresp.Version, kerr.ErrorForCode(vresp.ErrorCode))
	}
	if hw, err := adm.ListEndOffsets(ctx, "txs"); err != nil {
		t.Fatal(err)
	} else if o, _ := hw.Lookup("txs", 0); o.Offset != 6 {
		t.Fatalf("txs/0 ends at %d after carol's refused marker, want 6", o.Offset)
	}
}
