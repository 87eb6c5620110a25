package cli

import (
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestTopicErrShowsBrokerMessage: a refusal shows the code's name and the
// broker's message, not the code's generic description, and still matches
// the code.
func TestTopicErrShowsBrokerMessage(t *testing.T) {
	msg := `topics: invalid partition count: 1000000 partitions requested for "big", at most 10000 per topic`
	err := topicErr("big", kerr.InvalidPartitions, msg)
	want := `topic "big": INVALID_PARTITIONS: ` + msg
	if err.Error() != want {
		t.Errorf("got  %s\nwant %s", err, want)
	}
	if !errors.Is(err, kerr.InvalidPartitions) {
		t.Errorf("%v does not match INVALID_PARTITIONS", err)
	}
	// No message: the code with its description.
	if got, want := topicErr("t", kerr.TopicAlreadyExists, "").Error(), `topic "t": `+kerr.TopicAlreadyExists.Error(); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	// A wrapped error keeps its wrapping and gets the message after it.
	wrapped := fmt.Errorf("configs: %w", kerr.InvalidConfig)
	if got, want := topicErr("t", wrapped, "bad retention.ms").Error(), `topic "t": configs: `+kerr.InvalidConfig.Error()+`: bad retention.ms`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
