package protocol

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-dev/weir/broker/internal/topics"
)

// errorCode maps an error from the topic registry or a partition log to a
// Kafka error code. Logs report Kafka conditions by wrapping kerr errors.
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	switch {
	case errors.As(err, &ke):
		return ke.Code
	case errors.Is(err, topics.ErrUnknownTopic):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, topics.ErrTopicExists):
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, topics.ErrInvalidTopic):
		return kerr.InvalidTopicException.Code
	case errors.Is(err, topics.ErrInvalidPartitions):
		return kerr.InvalidPartitions.Code
	case errors.Is(err, topics.ErrInvalidReplicas):
		return kerr.InvalidReplicationFactor.Code
	case topics.IsInvalidConfig(err):
		return kerr.InvalidConfig.Code
	case errors.Is(err, topics.ErrClosed):
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return kerr.RequestTimedOut.Code
	}
	return kerr.UnknownServerError.Code
}

// errMessage is the message to send beside a code: nil for success.
func errMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}

// errorf builds an error for a response message.
func errorf(format string, args ...any) error {
	return fmt.Errorf("broker: "+format, args...)
}

// wrapCode attaches a Kafka error code to err.
func wrapCode(code *kerr.Error, err error) error {
	return fmt.Errorf("%w: %w", code, err)
}

// codeAndMessage splits err into a response's code and message fields.
func codeAndMessage(err error) (int16, *string) {
	return errorCode(err), errMessage(err)
}
