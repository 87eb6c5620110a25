package protocol

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestEveryAPIHasAnAuthRule: every registered API key has an
// authorization rule, so that a handler added without one fails here
// rather than serving every principal. Keys being added beside this one
// (replication and transactions) have theirs already.
func TestEveryAPIHasAnAuthRule(t *testing.T) {
	for key := range handlers {
		if _, ok := authRules[key]; !ok {
			t.Errorf("API %s (key %d) is registered without an authorization rule (authz_rules.go)", kmsg.NameForKey(key), key)
		}
	}
	for _, k := range []kmsg.Key{
		kmsg.OffsetForLeaderEpoch, kmsg.AddPartitionsToTxn, kmsg.AddOffsetsToTxn, kmsg.EndTxn,
		kmsg.WriteTxnMarkers, kmsg.TxnOffsetCommit, kmsg.AlterPartitionAssignments,
		kmsg.ListPartitionReassignments, kmsg.AlterPartition, kmsg.DescribeProducers,
		kmsg.DescribeTransactions, kmsg.ListTransactions,
	} {
		if _, ok := authRules[k.Int16()]; !ok {
			t.Errorf("API %s has no authorization rule", kmsg.NameForKey(k.Int16()))
		}
	}
	// Only the requests a client sends before it authenticates go
	// unchecked.
	for key, rule := range authRules {
		if rule.check == nil && !preAuthKey(key) {
			t.Errorf("API %s is left unchecked", kmsg.NameForKey(key))
		}
	}
}
