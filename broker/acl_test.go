package broker

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// aclBroker is a broker with the authorizer on and one SASL_PLAINTEXT
// listener, the SCRAM-SHA-512 users admin (a super user), app and nobody
// (password = name), and the topics orders-eu, orders-us and payments
// holding one record each.
func aclBroker(t *testing.T) *Broker {
	t.Helper()
	dir := t.TempDir()
	for _, u := range []string{"admin", "app", "nobody"} {
		if err := SetSCRAMUser(dir, u, SCRAMSHA512, u, 4096); err != nil {
			t.Fatal(err)
		}
	}
	b := openSecure(t, Options{DataDir: dir, Listeners: []Listener{{Name: "SASL", Protocol: "SASL_PLAINTEXT", Addr: "127.0.0.1:0"}},
		Authorizer: true, SuperUsers: []string{"User:admin"}, GroupInitialRebalanceDelay: -1})
	adm := kadm.NewClient(userClient(t, b, "admin"))
	ctx := testCtx(t)
	if _, err := adm.CreateTopics(ctx, 1, 1, nil, "orders-eu", "orders-us", "payments"); err != nil {
		t.Fatal(err)
	}
	pcl := userClient(t, b, "admin")
	for _, tp := range []string{"orders-eu", "orders-us", "payments"} {
		if err := pcl.ProduceSync(ctx, &kgo.Record{Topic: tp, Value: []byte("by admin")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// userClient is a client authenticated as user (password = user name).
func userClient(t *testing.T, b *Broker, user string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return newClient(t, b, append([]kgo.Opt{kgo.SASL(scram.Auth{User: user, Pass: user}.AsSha512Mechanism())}, opts...)...)
}

// metadataTopics lists the topics a Metadata request for every topic
// returns.
func metadataTopics(t *testing.T, cl *kgo.Client) []string {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tp := range resp.Topics {
		out = append(out, *tp.Topic)
	}
	slices.Sort(out)
	return out
}

// produceCode produces one record to partition 0 of topic with a raw
// request and returns its error code.
func produceCode(t *testing.T, cl *kgo.Client, topic string) int16 {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = rawBatch("by " + topic)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

// fetchCode fetches partition 0 of topic from offset 0 and returns the
// error code and the number of record bytes.
func fetchCode(t *testing.T, b *Broker, cl *kgo.Client, topic string) (int16, int) {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MaxBytes = 100, 1<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	td, err := kadm.NewClient(userClient(t, b, "admin")).ListTopics(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	rt.TopicID = td[topic].ID // the client speaks a version with ids
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range resp.Topics {
		if tp.Topic == topic || tp.TopicID == rt.TopicID {
			return tp.Partitions[0].ErrorCode, len(tp.Partitions[0].RecordBatches)
		}
	}
	t.Fatalf("fetch response without %s: %+v", topic, resp.Topics)
	return 0, 0
}

func TestACLs(t *testing.T) {
	b := aclBroker(t)
	ctx := testCtx(t)
	wantCode := func(what string, got int16, want *kerr.Error) {
		t.Helper()
		wc := int16(0)
		if want != nil {
			wc = want.Code
		}
		if got != wc {
			t.Errorf("%s: %v, want %v", what, kerr.ErrorForCode(got), want)
		}
	}

	// A principal without ACLs sees no topics and can neither produce,
	// consume nor join a group.
	nobody := userClient(t, b, "nobody")
	if got := metadataTopics(t, nobody); len(got) != 0 {
		t.Errorf("nobody sees topics %v", got)
	}
	wantCode("nobody produces", produceCode(t, nobody, "orders-eu"), kerr.TopicAuthorizationFailed)
	code, _ := fetchCode(t, b, nobody, "orders-eu")
	wantCode("nobody fetches", code, kerr.TopicAuthorizationFailed)
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = "app-1", "consumer", 10000, 10000
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range"}}
	joinCode := func(cl *kgo.Client) int16 {
		t.Helper()
		jr, err := join.RequestWith(ctx, cl)
		var ke *kerr.Error
		if errors.As(err, &ke) { // from FindCoordinator, which kgo asks first
			return ke.Code
		}
		if err != nil {
			t.Fatal(err)
		}
		return jr.ErrorCode
	}
	wantCode("nobody joins", joinCode(nobody), kerr.GroupAuthorizationFailed)
	if dr, err := kadm.NewClient(nobody).DescribeACLs(ctx, kadm.NewACLs().AnyResource().Allow().AllowHosts().Operations(kadm.OpAny)); err != nil || len(dr) != 1 || !errors.Is(dr[0].Err, kerr.ClusterAuthorizationFailed) {
		t.Errorf("nobody describes ACLs: %v %+v, want CLUSTER_AUTHORIZATION_FAILED", err, dr)
	}

	// A prefixed ACL grants exactly the topics it covers.
	adm := kadm.NewClient(userClient(t, b, "admin"))
	res, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:app").AllowHosts("*").
		ResourcePatternType(kadm.ACLPatternPrefixed).Topics("orders-").Groups("app-").
		Operations(kadm.OpRead, kadm.OpWrite, kadm.OpDescribe))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("create ACL %+v: %v", r, r.Err)
		}
	}
	app := userClient(t, b, "app")
	if got, want := metadataTopics(t, app), []string{"orders-eu", "orders-us"}; !slices.Equal(got, want) {
		t.Errorf("app sees topics %v, want %v", got, want)
	}
	wantCode("app produces to orders-eu", produceCode(t, app, "orders-eu"), nil)
	wantCode("app produces to payments", produceCode(t, app, "payments"), kerr.TopicAuthorizationFailed)
	code, n := fetchCode(t, b, app, "orders-us")
	wantCode("app fetches orders-us", code, nil)
	if n == 0 {
		t.Error("app fetched no records from orders-us")
	}
	code, n = fetchCode(t, b, app, "payments")
	wantCode("app fetches payments", code, kerr.TopicAuthorizationFailed)
	if n != 0 {
		t.Errorf("app got %d record bytes of payments", n)
	}

	// Auto-creation needs CREATE: app may describe orders-new but not
	// create it.
	md := kmsg.NewPtrMetadataRequest()
	md.AllowAutoTopicCreation = true
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("orders-new")}, {Topic: kmsg.StringPtr("payments")}}
	mr, err := md.RequestWith(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]int16{}
	for _, tp := range mr.Topics {
		codes[*tp.Topic] = tp.ErrorCode
	}
	wantCode("app auto-creates orders-new", codes["orders-new"], kerr.UnknownTopicOrPartition)
	wantCode("app describes payments", codes["payments"], kerr.TopicAuthorizationFailed)
	if got := metadataTopics(t, userClient(t, b, "admin")); slices.Contains(got, "orders-new") {
		t.Error("orders-new was created without CREATE")
	}

	// A consumer group under the group prefix works end to end; another
	// group is refused.
	cons := userClient(t, b, "app", kgo.ConsumerGroup("app-1"), kgo.ConsumeTopics("orders-eu"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	fs := cons.PollFetches(ctx)
	if err := fs.Err(); err != nil {
		t.Fatalf("app consumes in group app-1: %v", err)
	}
	if len(fs.Records()) == 0 {
		t.Fatal("app consumed nothing in group app-1")
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("app commits in group app-1: %v", err)
	}
	if code := joinCode(app); code == kerr.GroupAuthorizationFailed.Code {
		t.Error("app may not join app-1")
	}
	join.Group = "other"
	wantCode("app joins other", joinCode(app), kerr.GroupAuthorizationFailed)

	// The ACLs are listed, and deleting them takes the access away.
	described, err := adm.DescribeACLs(ctx, kadm.NewACLs().AnyResource().Allow().AllowHosts().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(described[0].Described); got != 6 {
		t.Errorf("described %d ACLs, want 6", got)
	}
	if _, err := adm.DeleteACLs(ctx, kadm.NewACLs().AnyResource().Allow("User:app").Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny).AllowHosts()); err != nil {
		t.Fatal(err)
	}
	if got := metadataTopics(t, app); len(got) != 0 {
		t.Errorf("after deleting its ACLs app sees %v", got)
	}
}

// A transactional producer needs WRITE on its transactional id: with it,
// a transaction commits; with another id, InitProducerId is refused.
func TestACLTransactionalID(t *testing.T) {
	b := aclBroker(t)
	ctx := testCtx(t)
	adm := kadm.NewClient(userClient(t, b, "admin"))
	for _, acls := range []*kadm.ACLBuilder{
		kadm.NewACLs().Allow("User:app").AllowHosts("*").ResourcePatternType(kadm.ACLPatternPrefixed).
			Topics("orders-").Operations(kadm.OpWrite, kadm.OpDescribe),
		kadm.NewACLs().Allow("User:app").AllowHosts("*").ResourcePatternType(kadm.ACLPatternPrefixed).
			TransactionalIDs("app-").Operations(kadm.OpWrite, kadm.OpDescribe),
	} {
		res, err := adm.CreateACLs(ctx, acls)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	txn := func(id string) error {
		cl := userClient(t, b, "app", kgo.TransactionalID(id), kgo.DefaultProduceTopic("orders-eu"))
		if err := cl.BeginTransaction(); err != nil {
			return err
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("in a transaction")}).FirstErr(); err != nil {
			_ = cl.EndTransaction(ctx, kgo.TryAbort)
			return err
		}
		return cl.EndTransaction(ctx, kgo.TryCommit)
	}
	if err := txn("app-tx1"); err != nil {
		t.Fatalf("transaction with WRITE on its transactional id: %v", err)
	}
	if err := txn("other-tx"); !errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
		t.Fatalf("transaction without WRITE on its transactional id: %v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", err)
	}
}
