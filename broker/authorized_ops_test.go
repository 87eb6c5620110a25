package broker

import (
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// opsOf decodes an authorized-operations bit field into operation names.
func opsOf(bits int32) []string {
	if bits == math.MinInt32 {
		return []string{"not requested"}
	}
	var out []string
	for op := kmsg.ACLOperationRead; op <= kmsg.ACLOperationIdempotentWrite; op++ {
		if bits&(1<<uint(op)) != 0 {
			out = append(out, op.String())
		}
	}
	return out
}

// TestAuthorizedOperations: Metadata's topic and cluster authorized
// operations, DescribeCluster's and DescribeGroups' come from the
// authorizer: app, allowed READ on orders- topics, its group and
// DESCRIBE on the cluster, is told exactly that; the super user every
// supported operation; a request that does not ask is told nothing.
func TestAuthorizedOperations(t *testing.T) {
	b := aclBroker(t)
	ctx := testCtx(t)
	adm := kadm.NewClient(userClient(t, b, "admin"))
	acls := kadm.NewACLs().Allow("User:app").AllowHosts().ResourcePatternType(kadm.ACLPatternPrefixed).
		Topics("orders-").Groups("app-").Operations(kadm.OpRead)
	if _, err := adm.CreateACLs(ctx, acls); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:app").AllowHosts().Clusters().Operations(kadm.OpDescribe)); err != nil {
		t.Fatal(err)
	}
	// A group for DescribeGroups, joined by app.
	grp := userClient(t, b, "app", kgo.ConsumerGroup("app-g"), kgo.ConsumeTopics("orders-eu"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if fs := grp.PollFetches(ctx); fs.Err() != nil {
		t.Fatal(fs.Err())
	}

	type want struct {
		topic, cluster, describeCluster, group []string
	}
	for _, c := range []struct {
		user string
		want want
	}{
		{"app", want{
			topic:           []string{"READ", "DESCRIBE"},
			cluster:         []string{"DESCRIBE"},
			describeCluster: []string{"DESCRIBE"},
			group:           []string{"READ", "DESCRIBE"},
		}},
		{"admin", want{
			topic:           []string{"READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS"},
			cluster:         []string{"CREATE", "ALTER", "DESCRIBE", "CLUSTER_ACTION", "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE"},
			describeCluster: []string{"CREATE", "ALTER", "DESCRIBE", "CLUSTER_ACTION", "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE"},
			group:           []string{"READ", "DELETE", "DESCRIBE"},
		}},
	} {
		// NB: Metadata carries the cluster's authorized operations up to
		// v10 only (Kafka 2.7 speaks v9).
		cl := userClient(t, b, c.user, kgo.MaxVersions(kversion.V2_7_0()))
		md := kmsg.NewPtrMetadataRequest()
		md.IncludeClusterAuthorizedOperations, md.IncludeTopicAuthorizedOperations = true, true
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr("orders-eu")
		md.Topics = append(md.Topics, mt)
		mresp, err := md.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if len(mresp.Topics) != 1 || mresp.Topics[0].ErrorCode != 0 {
			t.Fatalf("%s: metadata topics %+v", c.user, mresp.Topics)
		}
		check := func(what string, got int32, want []string) {
			t.Helper()
			g := opsOf(got)
			if len(g) != len(want) {
				t.Fatalf("%s: %s authorized operations %v, want %v", c.user, what, g, want)
			}
			for _, w := range want {
				found := false
				for _, x := range g {
					found = found || x == w
				}
				if !found {
					t.Fatalf("%s: %s authorized operations %v, want %v", c.user, what, g, want)
				}
			}
		}
		check("topic", mresp.Topics[0].AuthorizedOperations, c.want.topic)
		check("cluster (Metadata)", mresp.AuthorizedOperations, c.want.cluster)

		dc := kmsg.NewPtrDescribeClusterRequest()
		dc.IncludeClusterAuthorizedOperations = true
		dresp, err := dc.RequestWith(ctx, userClient(t, b, c.user))
		if err != nil {
			t.Fatal(err)
		}
		check("cluster (DescribeCluster)", dresp.ClusterAuthorizedOperations, c.want.describeCluster)

		dg := kmsg.NewPtrDescribeGroupsRequest()
		dg.Groups, dg.IncludeAuthorizedOperations = []string{"app-g"}, true
		gresp, err := dg.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if len(gresp.Groups) != 1 || gresp.Groups[0].ErrorCode != 0 {
			t.Fatalf("%s: describe groups %+v", c.user, gresp.Groups)
		}
		check("group", gresp.Groups[0].AuthorizedOperations, c.want.group)

		// Not asked: not computed.
		md.IncludeClusterAuthorizedOperations, md.IncludeTopicAuthorizedOperations = false, false
		if mresp, err = md.RequestWith(ctx, cl); err != nil {
			t.Fatal(err)
		}
		if mresp.Topics[0].AuthorizedOperations != math.MinInt32 || mresp.AuthorizedOperations != math.MinInt32 {
			t.Fatalf("%s: authorized operations not asked for, yet answered: %d %d", c.user, mresp.Topics[0].AuthorizedOperations, mresp.AuthorizedOperations)
		}
	}
}

// TestAuthorizedOperationsWithoutAuthorizer: with no authorizer every
// supported operation is reported.
func TestAuthorizedOperationsWithoutAuthorizer(t *testing.T) {
	b := startBroker(t, Options{})
	cl := newClient(t, b)
	dc := kmsg.NewPtrDescribeClusterRequest()
	dc.IncludeClusterAuthorizedOperations = true
	resp, err := dc.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	if got := opsOf(resp.ClusterAuthorizedOperations); len(got) != 7 {
		t.Fatalf("cluster authorized operations without an authorizer: %v, want all 7 a cluster supports", got)
	}
}
