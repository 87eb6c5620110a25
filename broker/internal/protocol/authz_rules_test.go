package protocol

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/auth"
	"github.com/weir-dev/weir/broker/internal/topics"
)

// authzServer is a server with the authorizer on, the topics orders-a,
// orders-b and secret, and one ACL: User:app may READ, WRITE and
// DESCRIBE the topics prefixed orders-. User:admin is a super user.
func authzServer(t *testing.T) *Server {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg, err := topics.Open(topics.Options{Dir: t.TempDir(), OpenLog: topics.OpenMemLog, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	for _, n := range []string{"orders-a", "orders-b", "secret"} {
		if _, err := reg.Create(context.Background(), n, topics.Spec{Partitions: 1}); err != nil {
			t.Fatal(err)
		}
	}
	acls, err := auth.OpenACLStore(filepath.Join(t.TempDir(), auth.ACLFile), []string{"User:admin"}, false)
	if err != nil {
		t.Fatal(err)
	}
	var bind []auth.ACL
	for _, op := range []kmsg.ACLOperation{opRead, opWrite, opDescribe} {
		bind = append(bind, auth.ACL{ResourceType: rtTopic, ResourceName: "orders-", PatternType: kmsg.ACLResourcePatternTypePrefixed,
			Principal: "User:app", Host: "*", Operation: op, Permission: kmsg.ACLPermissionTypeAllow})
	}
	if _, err := acls.Add(bind); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Topics: reg, Logger: logger, AutoCreateTopics: true, Security: Security{ACLs: acls}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// call dispatches req at version v as principal.
func call(t *testing.T, s *Server, principal string, v int16, req kmsg.Request) kmsg.Response {
	t.Helper()
	req.SetVersion(v)
	h, ok := lookupHandler(req.Key())
	if !ok {
		t.Fatalf("no handler for %s", kmsg.NameForKey(req.Key()))
	}
	sess := &Session{Listener: s.defaultListener(), Host: "10.0.0.1", principal: principal}
	sess.authed.Store(true)
	resp, err := s.dispatch(context.Background(), &frame{h: h, req: &Request{Key: req.Key(), Version: v, Body: req, Session: sess}})
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := resp.(*Deferred); ok {
		d.Wait()
		resp = d.Response
	}
	return resp
}

func metadataNames(resp kmsg.Response) map[string]int16 {
	out := map[string]int16{}
	for _, tp := range resp.(*kmsg.MetadataResponse).Topics {
		out[*tp.Topic] = tp.ErrorCode
	}
	return out
}

func TestAuthzRules(t *testing.T) {
	s := authzServer(t)
	md := func(names ...string) *kmsg.MetadataRequest {
		r := kmsg.NewPtrMetadataRequest()
		if names != nil {
			r.Topics = []kmsg.MetadataRequestTopic{}
		}
		for _, n := range names {
			r.Topics = append(r.Topics, kmsg.MetadataRequestTopic{Topic: kmsg.StringPtr(n)})
		}
		r.AllowAutoTopicCreation = true
		return r
	}
	ok, denied := int16(0), kerr.TopicAuthorizationFailed.Code
	for _, c := range []struct {
		name      string
		principal string
		v         int16
		req       *kmsg.MetadataRequest
		want      map[string]int16
	}{
		{"all topics", "User:app", 12, md(), map[string]int16{"orders-a": ok, "orders-b": ok}},
		{"all topics, super user", "User:admin", 12, md(), map[string]int16{"orders-a": ok, "orders-b": ok, "secret": ok}},
		{"all topics, no ACL", "User:other", 12, md(), map[string]int16{}},
		{"named", "User:app", 12, md("orders-a", "secret"), map[string]int16{"orders-a": ok, "secret": denied}},
		// v0 with every named topic denied must not turn into "all topics".
		{"v0, all named denied", "User:app", 0, md("secret"), map[string]int16{"secret": denied}},
		{"unknown, no CREATE", "User:app", 12, md("orders-new"), map[string]int16{"orders-new": kerr.UnknownTopicOrPartition.Code}},
		{"unknown, not describable", "User:app", 12, md("other-new"), map[string]int16{"other-new": denied}},
	} {
		got := metadataNames(call(t, s, c.principal, c.v, c.req))
		if len(got) != len(c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
			continue
		}
		for n, code := range c.want {
			if g, ok := got[n]; !ok || g != code {
				t.Errorf("%s: %v, want %v", c.name, got, c.want)
			}
		}
	}
	if _, ok := s.Topics.Get("orders-new"); ok {
		t.Error("orders-new auto-created without CREATE")
	}

	// Requests that change things: the denied part is not done.
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "orders-c", NumPartitions: 1, ReplicationFactor: 1}}
	if r := call(t, s, "User:app", 7, ct).(*kmsg.CreateTopicsResponse); len(r.Topics) != 1 || r.Topics[0].ErrorCode != denied {
		t.Errorf("CreateTopics without CREATE: %+v", r.Topics)
	}
	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.TopicNames = []string{"secret", "orders-a"}
	r := call(t, s, "User:app", 5, dt).(*kmsg.DeleteTopicsResponse)
	codes := map[string]int16{}
	for _, tp := range r.Topics {
		codes[*tp.Topic] = tp.ErrorCode
	}
	if codes["secret"] != denied || codes["orders-a"] != denied {
		t.Errorf("DeleteTopics without DELETE: %v", codes)
	}
	for _, n := range []string{"secret", "orders-a"} {
		if _, ok := s.Topics.Get(n); !ok {
			t.Errorf("%s deleted without DELETE", n)
		}
	}
	dc := kmsg.NewPtrDescribeConfigsRequest()
	dc.Resources = []kmsg.DescribeConfigsRequestResource{
		{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "secret"},
		{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "orders-a"},
		{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "0"},
	}
	var dcCodes []int16
	for _, res := range call(t, s, "User:app", 4, dc).(*kmsg.DescribeConfigsResponse).Resources {
		dcCodes = append(dcCodes, res.ErrorCode)
	}
	// orders-a: DESCRIBE does not imply DESCRIBE_CONFIGS.
	if want := []int16{denied, denied, kerr.ClusterAuthorizationFailed.Code}; !slices.Equal(dcCodes, want) {
		t.Errorf("DescribeConfigs codes %v, want %v", dcCodes, want)
	}
	dg := kmsg.NewPtrDeleteGroupsRequest()
	dg.Groups = []string{"g"}
	if r := call(t, s, "User:app", 2, dg).(*kmsg.DeleteGroupsResponse); len(r.Groups) != 1 || r.Groups[0].ErrorCode != kerr.GroupAuthorizationFailed.Code {
		t.Errorf("DeleteGroups: %+v", r.Groups)
	}
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.TransactionalID = kmsg.StringPtr("tx")
	if r := call(t, s, "User:app", 4, ip).(*kmsg.InitProducerIDResponse); r.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Errorf("InitProducerId with a transactional id: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	ip.TransactionalID = nil
	if r := call(t, s, "User:app", 4, ip).(*kmsg.InitProducerIDResponse); r.ErrorCode != 0 {
		t.Errorf("idempotent InitProducerId with WRITE on a topic: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if r := call(t, s, "User:other", 4, ip).(*kmsg.InitProducerIDResponse); r.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Errorf("idempotent InitProducerId without any WRITE: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	ca := kmsg.NewPtrCreateACLsRequest()
	ca.Creations = []kmsg.CreateACLsRequestCreation{{ResourceType: rtTopic, ResourceName: "secret", ResourcePatternType: kmsg.ACLResourcePatternTypeLiteral,
		Principal: "User:app", Host: "*", Operation: opRead, PermissionType: kmsg.ACLPermissionTypeAllow}}
	if r := call(t, s, "User:app", 3, ca).(*kmsg.CreateACLsResponse); len(r.Results) != 1 || r.Results[0].ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Errorf("CreateAcls without ALTER on the cluster: %+v", r.Results)
	}
	if r := call(t, s, "User:admin", 3, ca).(*kmsg.CreateACLsResponse); len(r.Results) != 1 || r.Results[0].ErrorCode != 0 {
		t.Errorf("CreateAcls by a super user: %+v", r.Results)
	}
	if got := metadataNames(call(t, s, "User:app", 12, md())); len(got) != 3 {
		t.Errorf("after the new ACL app sees %v", got)
	}
}

// TestAuthzDescribeLogDirs: DescribeLogDirs needs DESCRIBE on the cluster;
// without it v3+ answers CLUSTER_AUTHORIZATION_FAILED and v0-2 (no error
// field) an empty list, as Kafka does; a super user gets the directory.
func TestAuthzDescribeLogDirs(t *testing.T) {
	s := authzServer(t)
	req := kmsg.NewPtrDescribeLogDirsRequest()
	r := call(t, s, "User:app", 3, req).(*kmsg.DescribeLogDirsResponse)
	if r.ErrorCode != kerr.ClusterAuthorizationFailed.Code || len(r.Dirs) != 0 {
		t.Errorf("v3 without DESCRIBE on the cluster: %v, %d dirs", kerr.ErrorForCode(r.ErrorCode), len(r.Dirs))
	}
	if r := call(t, s, "User:app", 1, req).(*kmsg.DescribeLogDirsResponse); len(r.Dirs) != 0 {
		t.Errorf("v1 without DESCRIBE on the cluster: %d dirs", len(r.Dirs))
	}
	r = call(t, s, "User:admin", 4, req).(*kmsg.DescribeLogDirsResponse)
	if r.ErrorCode != 0 || len(r.Dirs) != 1 || r.Dirs[0].Dir != s.Topics.Dir() {
		t.Errorf("super user: %v, dirs %+v, want %s", kerr.ErrorForCode(r.ErrorCode), r.Dirs, s.Topics.Dir())
	}
}
