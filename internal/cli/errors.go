package cli

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
)

// CodeError is an error code a cluster answered with, and the message it
// gave, if any. Its text puts what helps first (the broker's message, else
// the code's description) and the code's name last, in parentheses, so that
// a line reads `topic "orders" already exists (TOPIC_ALREADY_EXISTS)` rather
// than stating the same fact three times.
type CodeError struct {
	// Code is the Kafka error code. Never nil.
	Code *kerr.Error
	// Message is the broker's error message; "" when it sent none.
	Message string
}

func (e *CodeError) Error() string {
	// NB: some brokers (Weir's own, for a few requests) send the code's
	// text again at the start of the message; it is said once, at the end.
	hint := strings.TrimSpace(strings.TrimPrefix(e.Message, e.Code.Error()+": "))
	if hint == "" {
		hint = strings.TrimSuffix(strings.TrimSpace(e.Code.Description), ".")
		if hint != "" {
			hint = strings.ToLower(hint[:1]) + hint[1:]
		}
	}
	if hint == "" {
		return e.Code.Message
	}
	return hint + " (" + e.Code.Message + ")"
}

// Unwrap returns the code, so that errors.Is(err, kerr.TopicAlreadyExists)
// holds.
func (e *CodeError) Unwrap() error { return e.Code }

// KafkaError turns err, when it is a Kafka error code, into a *CodeError
// carrying the broker's message msg; any other error comes back as it was,
// with msg after it when msg says something err does not.
func KafkaError(err error, msg string) error {
	if err == nil {
		return nil
	}
	if ke, ok := err.(*kerr.Error); ok {
		return &CodeError{Code: ke, Message: msg}
	}
	if msg != "" && !strings.Contains(err.Error(), msg) {
		return fmt.Errorf("%w: %s", err, msg)
	}
	return err
}

// ErrUnreachable is what Unreachable errors match with errors.Is: no broker
// of the cluster could be connected to.
var ErrUnreachable = errors.New("cli: no broker reachable")

// UnreachableError says that none of Brokers could be reached, with the
// cause last.
type UnreachableError struct {
	// Brokers are the addresses tried.
	Brokers []string
	// Err is the last connection error.
	Err error
}

func (e *UnreachableError) Error() string {
	what := "cannot reach"
	if errors.Is(e.Err, syscall.ECONNREFUSED) {
		what = "nothing listens at"
	}
	return fmt.Sprintf("cli: %s %s: start a broker with `weir broker`, or point --brokers or WEIR_BROKERS at your cluster (%v)",
		what, strings.Join(e.Brokers, ","), e.Err)
}

// Is makes errors.Is(err, ErrUnreachable) hold.
func (e *UnreachableError) Is(target error) bool { return target == ErrUnreachable }

// Unwrap returns the connection error.
func (e *UnreachableError) Unwrap() error { return e.Err }
