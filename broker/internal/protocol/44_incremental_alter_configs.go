package protocol

// IncrementalAlterConfigs, versions 0-1.
//
// Edits a TOPIC resource's explicit configs: SET sets a value, DELETE
// reverts to the default, APPEND and SUBTRACT add or remove an element of a
// list config (cleanup.policy). The result is validated as a whole before
// anything changes (INVALID_CONFIG with every problem otherwise);
// ValidateOnly checks without applying. BROKER resources are read-only:
// INVALID_REQUEST.

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.IncrementalAlterConfigs, 0, 1, handleIncrementalAlterConfigs) }

func handleIncrementalAlterConfigs(_ context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		or := kmsg.NewIncrementalAlterConfigsResponseResource()
		or.ResourceType, or.ResourceName = rr.ResourceType, rr.ResourceName
		err := alterTopicConfigs(s, rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(cur map[string]string) (map[string]string, error) {
			for _, c := range rr.Configs {
				val := ""
				if c.Value != nil {
					val = *c.Value
				}
				switch c.Op {
				case kmsg.IncrementalAlterConfigOpSet:
					if c.Value == nil {
						return nil, wrapCode(kerr.InvalidConfig, errorf("SET %s without a value", c.Name))
					}
					cur[c.Name] = val
				case kmsg.IncrementalAlterConfigOpDelete:
					delete(cur, c.Name)
				case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
					if c.Name != "cleanup.policy" {
						return nil, wrapCode(kerr.InvalidConfig, errorf("%s is not a list config", c.Name))
					}
					list := effectiveList(s, cur, c.Name)
					for _, v := range strings.Split(val, ",") {
						v = strings.TrimSpace(v)
						has := slices.Contains(list, v)
						if c.Op == kmsg.IncrementalAlterConfigOpAppend && !has {
							list = append(list, v)
						} else if c.Op == kmsg.IncrementalAlterConfigOpSubtract && has {
							list = slices.DeleteFunc(list, func(x string) bool { return x == v })
						}
					}
					if len(list) == 0 {
						return nil, wrapCode(kerr.InvalidConfig, errorf("%s cannot be empty", c.Name))
					}
					cur[c.Name] = strings.Join(list, ",")
				default:
					return nil, wrapCode(kerr.InvalidRequest, errorf("unknown config operation %d", c.Op))
				}
			}
			return cur, nil
		})
		or.ErrorCode, or.ErrorMessage = codeAndMessage(err)
		resp.Resources = append(resp.Resources, or)
	}
	return resp, nil
}

// effectiveList returns the current elements of a list config.
func effectiveList(s *Server, cur map[string]string, name string) []string {
	v, ok := cur[name]
	if !ok {
		v, _ = s.Topics.Defaults().Value(name)
	}
	var out []string
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}
