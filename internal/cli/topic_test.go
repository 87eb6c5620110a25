package cli

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestTopicErrShowsBrokerMessage: a refusal shows the broker's message and
// the code's name, not the code's generic description (INVALID_PARTITIONS
// reads "Number of partitions is below 1." for a count that is too large),
// and still matches the code.
func TestTopicErrShowsBrokerMessage(t *testing.T) {
	msg := `topics: invalid partition count: 1000000 partitions requested for "big", at most 10000 per topic`
	err := topicErr("create", "big", kerr.InvalidPartitions, msg)
	got := err.Error()
	for _, want := range []string{`topic "big"`, msg, "INVALID_PARTITIONS"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	if strings.Contains(got, kerr.InvalidPartitions.Description) {
		t.Errorf("%q shows the code's generic description", got)
	}
	if strings.Index(got, msg) > strings.Index(got, "INVALID_PARTITIONS") {
		t.Errorf("%q: the broker's message should come before the code", got)
	}
	if !errors.Is(err, kerr.InvalidPartitions) {
		t.Errorf("%v does not match INVALID_PARTITIONS", err)
	}
	// No message: the code's description, and the code.
	if got := topicErr("create", "t", kerr.TopicAlreadyExists, "").Error(); !strings.Contains(got, "already exists") || !strings.Contains(got, "TOPIC_ALREADY_EXISTS") {
		t.Errorf("without a message: %q", got)
	}
}
