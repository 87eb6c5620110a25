package cli

import (
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestKafkaErrorText(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		msg  string
		want string
	}{
		{"broker message first", kerr.TopicAlreadyExists, `topic "orders" already exists`, `topic "orders" already exists (TOPIC_ALREADY_EXISTS)`},
		{"no message: the description", kerr.TopicAlreadyExists, "", "topic with this name already exists (TOPIC_ALREADY_EXISTS)"},
		{"code repeated in the message is said once", kerr.UnknownTopicOrPartition,
			kerr.UnknownTopicOrPartition.Error() + `: broker: unknown topic "zz"`, `broker: unknown topic "zz" (UNKNOWN_TOPIC_OR_PARTITION)`},
		{"not a code: the message after", errors.New("dial failed"), "extra", "dial failed: extra"},
		{"not a code: message already said", errors.New("dial failed: extra"), "extra", "dial failed: extra"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := KafkaError(c.err, c.msg)
			if got := err.Error(); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
			if !errors.Is(err, c.err) {
				t.Errorf("%q does not match %v", err, c.err)
			}
		})
	}
	if KafkaError(nil, "x") != nil {
		t.Error("KafkaError(nil) is not nil")
	}
}

func TestUnreachableError(t *testing.T) {
	cause := fmt.Errorf("unable to dial: %w", syscall.ECONNREFUSED)
	err := fmt.Errorf("wrapped: %w", &UnreachableError{Brokers: []string{"127.0.0.1:1", "127.0.0.1:2"}, Err: cause})
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("%q matches neither ErrUnreachable nor ECONNREFUSED", err)
	}
	want := "wrapped: cli: nothing listens at 127.0.0.1:1,127.0.0.1:2: start a broker with `weir broker`, or point --brokers or WEIR_BROKERS at your cluster (unable to dial: connection refused)"
	if err.Error() != want {
		t.Errorf("got %q\nwant %q", err, want)
	}
}
