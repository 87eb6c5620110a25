package auth

import (
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	topic   = kmsg.ACLResourceTypeTopic
	group   = kmsg.ACLResourceTypeGroup
	cluster = kmsg.ACLResourceTypeCluster
	literal = kmsg.ACLResourcePatternTypeLiteral
	prefix  = kmsg.ACLResourcePatternTypePrefixed
	allow   = kmsg.ACLPermissionTypeAllow
	deny    = kmsg.ACLPermissionTypeDeny
	read    = kmsg.ACLOperationRead
	write   = kmsg.ACLOperationWrite
	descr   = kmsg.ACLOperationDescribe
	all     = kmsg.ACLOperationAll
	alter   = kmsg.ACLOperationAlter
	create  = kmsg.ACLOperationCreate
	dconf   = kmsg.ACLOperationDescribeConfigs
	aconf   = kmsg.ACLOperationAlterConfigs
)

func acl(rt ResourceType, name string, pt PatternType, principal, host string, op Operation, perm Permission) ACL {
	return ACL{ResourceType: rt, ResourceName: name, PatternType: pt, Principal: principal, Host: host, Operation: op, Permission: perm}
}

func TestAuthorized(t *testing.T) {
	acls := []ACL{
		acl(topic, "orders", literal, "User:alice", "*", read, allow),
		acl(topic, "orders-", prefix, "User:bob", "*", write, allow),
		acl(topic, "orders-secret", literal, "User:bob", "*", write, deny),
		acl(topic, "*", literal, "User:carol", "*", descr, allow),
		acl(topic, "payments", literal, "User:*", "10.0.0.1", all, allow),
		acl(topic, "payments", literal, "User:mallory", "*", all, deny),
		acl(group, "app-", prefix, "User:alice", "*", read, allow),
		acl(topic, "cfg", literal, "User:alice", "*", aconf, allow),
		acl(cluster, ClusterName, literal, "User:ops", "*", create, allow),
	}
	a := NewAuthorizer(acls, []string{"User:admin"}, false)
	open := NewAuthorizer(acls, nil, true)
	for _, c := range []struct {
		name      string
		az        *Authorizer
		principal string
		host      string
		op        Operation
		rt        ResourceType
		res       string
		want      bool
	}{
		{"literal allow", a, "User:alice", "1.2.3.4", read, topic, "orders", true},
		{"other operation", a, "User:alice", "1.2.3.4", write, topic, "orders", false},
		{"read implies describe", a, "User:alice", "1.2.3.4", descr, topic, "orders", true},
		{"other principal", a, "User:bob", "1.2.3.4", read, topic, "orders", false},
		{"literal is not a prefix", a, "User:alice", "1.2.3.4", read, topic, "orders2", false},
		{"prefix covers", a, "User:bob", "1.2.3.4", write, topic, "orders-eu", true},
		{"prefix covers itself", a, "User:bob", "1.2.3.4", write, topic, "orders-", true},
		{"prefix does not cover a shorter name", a, "User:bob", "1.2.3.4", write, topic, "orders", false},
		{"deny beats a prefixed allow", a, "User:bob", "1.2.3.4", write, topic, "orders-secret", false},
		{"write implies describe", a, "User:bob", "1.2.3.4", descr, topic, "orders-eu", true},
		{"describe does not imply read", a, "User:carol", "1.2.3.4", read, topic, "anything", false},
		{"wildcard resource", a, "User:carol", "1.2.3.4", descr, topic, "anything", true},
		{"wildcard principal, host matches", a, "User:dave", "10.0.0.1", write, topic, "payments", true},
		{"wildcard principal, other host", a, "User:dave", "10.0.0.2", write, topic, "payments", false},
		{"deny ALL beats wildcard allow", a, "User:mallory", "10.0.0.1", read, topic, "payments", false},
		{"group prefix", a, "User:alice", "1.2.3.4", read, group, "app-1", true},
		{"resource types are separate", a, "User:alice", "1.2.3.4", read, group, "orders", false},
		{"alter configs implies describe configs", a, "User:alice", "1.2.3.4", dconf, topic, "cfg", true},
		{"describe configs does not imply alter configs", a, "User:carol", "1.2.3.4", aconf, topic, "anything", false},
		{"cluster create", a, "User:ops", "1.2.3.4", create, cluster, ClusterName, true},
		{"cluster alter not granted", a, "User:ops", "1.2.3.4", alter, cluster, ClusterName, false},
		{"super user", a, "User:admin", "1.2.3.4", alter, cluster, ClusterName, true},
		{"super user beats deny", a, "User:admin", "1.2.3.4", write, topic, "orders-secret", true},
		// A resource no ACL names: denied, unless allow.everyone.if.no.acl.found.
		// (carol's wildcard names every topic, so use a group.)
		{"no ACL: deny", a, "User:alice", "1.2.3.4", read, group, "other", false},
		{"no ACL: allow everyone", open, "User:anyone", "1.2.3.4", read, group, "other", true},
		{"an ACL exists: allow everyone does not apply", open, "User:anyone", "1.2.3.4", read, group, "app-x", false},
	} {
		if got := c.az.Authorized(c.principal, c.host, c.op, c.rt, c.res); got != c.want {
			t.Errorf("%s: %s from %s %s %s %q = %v, want %v", c.name, c.principal, c.host, c.op, c.rt, c.res, got, c.want)
		}
	}
	if !a.AnyAllowed("User:bob", "1.2.3.4", write, topic) || a.AnyAllowed("User:carol", "1.2.3.4", write, topic) {
		t.Error("AnyAllowed: bob may write some topic, carol none")
	}
}

func TestACLValidate(t *testing.T) {
	good := acl(topic, "t", literal, "User:a", "*", read, allow)
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []ACL{
		acl(kmsg.ACLResourceTypeAny, "t", literal, "User:a", "*", read, allow),
		acl(topic, "t", kmsg.ACLResourcePatternTypeMatch, "User:a", "*", read, allow),
		acl(topic, "*", prefix, "User:a", "*", read, allow),
		acl(topic, "", literal, "User:a", "*", read, allow),
		acl(cluster, "c", literal, "User:a", "*", alter, allow),
		acl(topic, "t", literal, "alice", "*", read, allow),
		acl(topic, "t", literal, "User:a", "", read, allow),
		acl(topic, "t", literal, "User:a", "*", kmsg.ACLOperationAny, allow),
		acl(topic, "t", literal, "User:a", "*", read, kmsg.ACLPermissionTypeAny),
	} {
		if bad.Validate() == nil {
			t.Errorf("%s validated", bad)
		}
	}
}

func TestFilterMatches(t *testing.T) {
	lit := acl(topic, "orders", literal, "User:a", "*", read, allow)
	pre := acl(topic, "ord", prefix, "User:a", "*", read, allow)
	wild := acl(topic, "*", literal, "User:b", "*", write, deny)
	s := func(v string) *string { return &v }
	anyF := Filter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}
	for _, c := range []struct {
		name string
		f    func(Filter) Filter
		want [3]bool
	}{
		{"any", func(f Filter) Filter { return f }, [3]bool{true, true, true}},
		{"any pattern, name", func(f Filter) Filter { f.ResourceName = s("orders"); return f }, [3]bool{true, false, false}},
		{"match orders", func(f Filter) Filter {
			f.PatternType, f.ResourceName = kmsg.ACLResourcePatternTypeMatch, s("orders")
			return f
		}, [3]bool{true, true, true}},
		{"match other", func(f Filter) Filter {
			f.PatternType, f.ResourceName = kmsg.ACLResourcePatternTypeMatch, s("x")
			return f
		}, [3]bool{false, false, true}},
		{"prefixed", func(f Filter) Filter { f.PatternType = prefix; return f }, [3]bool{false, true, false}},
		{"principal", func(f Filter) Filter { f.Principal = s("User:b"); return f }, [3]bool{false, false, true}},
		{"deny", func(f Filter) Filter { f.Permission = deny; return f }, [3]bool{false, false, true}},
		{"group", func(f Filter) Filter { f.ResourceType = group; return f }, [3]bool{false, false, false}},
	} {
		f := c.f(anyF)
		got := [3]bool{f.Matches(lit), f.Matches(pre), f.Matches(wild)}
		if got != c.want {
			t.Errorf("%s: matches %v, want %v", c.name, got, c.want)
		}
	}
}

func TestACLStorePersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), ACLFile)
	s, err := OpenACLStore(path, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	a := acl(topic, "t-", prefix, "User:a", "*", read, allow)
	errs, err := s.Add([]ACL{a, acl(topic, "", literal, "User:a", "*", read, allow), a})
	if err != nil || errs[0] != nil || errs[1] == nil || errs[2] != nil {
		t.Fatalf("add: %v %v", errs, err)
	}
	if !s.Authorizer().Authorized("User:a", "h", read, topic, "t-1") {
		t.Fatal("not authorized after add")
	}
	s2, err := OpenACLStore(path, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	f := Filter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}
	if got := s2.List(f); len(got) != 1 || got[0] != a {
		t.Fatalf("reopened: %v, want [%v]", got, a)
	}
	del, err := s2.Delete([]Filter{f})
	if err != nil || len(del[0]) != 1 {
		t.Fatalf("delete: %v %v", del, err)
	}
	if s2.Authorizer().Authorized("User:a", "h", read, topic, "t-1") {
		t.Fatal("authorized after delete")
	}
}
