package protocol

// AlterConfigs, versions 0-2.
//
// Replaces the whole explicit config set of a TOPIC resource with the
// entries given (an entry absent from the request reverts to its default,
// as in Kafka's non-incremental alter). Every entry is validated first; on
// any invalid entry nothing changes and INVALID_CONFIG names the problems.
// ValidateOnly checks without applying. BROKER resources are read-only
// (their settings come from flags and the config file): INVALID_REQUEST.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/topics"
)

func init() { register(kmsg.AlterConfigs, 0, 2, handleAlterConfigs) }

func handleAlterConfigs(_ context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		or := kmsg.NewAlterConfigsResponseResource()
		or.ResourceType, or.ResourceName = rr.ResourceType, rr.ResourceName
		err := alterTopicConfigs(s, rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(map[string]string) (map[string]string, error) {
			next := map[string]string{}
			for _, c := range rr.Configs {
				if c.Value != nil {
					next[c.Name] = *c.Value
				}
			}
			return next, nil
		})
		or.ErrorCode, or.ErrorMessage = codeAndMessage(err)
		resp.Resources = append(resp.Resources, or)
	}
	return resp, nil
}

// alterTopicConfigs computes a topic's new explicit configs with edit,
// validates them, and applies them unless validateOnly.
func alterTopicConfigs(s *Server, rt kmsg.ConfigResourceType, name string, validateOnly bool,
	edit func(cur map[string]string) (map[string]string, error)) error {
	if err := checkAlterableType(rt); err != nil {
		return err
	}
	t, ok := s.Topics.Get(name)
	if !ok {
		return wrapCode(kerr.UnknownTopicOrPartition, errorf("unknown topic %q", name))
	}
	next, err := edit(t.Configs())
	if err != nil {
		return err
	}
	if err := topics.CheckConfigs(next); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	return s.Topics.SetConfigs(name, next)
}

// checkAlterableType refuses altering the configs of anything but topics.
func checkAlterableType(rt kmsg.ConfigResourceType) error {
	switch rt {
	case kmsg.ConfigResourceTypeTopic:
		return nil
	case kmsg.ConfigResourceTypeBroker:
		return wrapCode(kerr.InvalidRequest, errorf("broker configs are read-only: set them with weir broker flags or its config file"))
	default:
		return wrapCode(kerr.InvalidRequest, errorf("config resource type %d is not supported", rt))
	}
}
