package metadata

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// checkConfig asks Options.ValidateConfig about one value being set.
func (c *Controller) checkConfig(res ConfigResource, key, value string) *apiError {
	if key == "" {
		return refuse(kerr.InvalidConfig, "empty config key")
	}
	if c.opts.ValidateConfig != nil {
		if err := c.opts.ValidateConfig(res, key, value); err != nil {
			return refuse(kerr.InvalidConfig, "%s %q: %s=%q: %v", res.Type, res.Name, key, value, err)
		}
	}
	return nil
}

// IncrementalAlterConfigs changes the configs of topics and brokers (the
// empty name: the default of every broker). Operations: SET, DELETE, and
// APPEND and SUBTRACT on comma-separated lists. Each resource succeeds or
// fails on its own; the changes of all that succeed are one entry.
func (c *Controller) IncrementalAlterConfigs(req *kmsg.IncrementalAlterConfigsRequest) ([]Record, *kmsg.IncrementalAlterConfigsResponse, error) {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	listed := map[ConfigResource]int{}
	for _, r := range req.Resources {
		listed[ConfigResource{Type: ConfigType(r.ResourceType), Name: r.ResourceName}]++
	}
	var out []Record
	for _, r := range req.Resources {
		rr := kmsg.NewIncrementalAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		res := ConfigResource{Type: ConfigType(r.ResourceType), Name: r.ResourceName}
		var aerr *apiError
		var records []Record
		if listed[res] > 1 {
			aerr = refuse(kerr.InvalidRequest, "%s %q is listed more than once", res.Type, res.Name)
		} else {
			records, aerr = c.planConfigs(res, r.Configs)
		}
		if aerr != nil {
			rr.ErrorCode, rr.ErrorMessage = aerr.err.Code, &aerr.msg
		} else if !req.ValidateOnly {
			if err := c.emit(&out, records...); err != nil {
				return nil, nil, err
			}
		}
		resp.Resources = append(resp.Resources, rr)
	}
	// A config change may allow unclean election on a leaderless
	// partition: it takes effect at once, as in Kafka.
	if err := c.electLeaderless(&out); err != nil {
		return nil, nil, err
	}
	return out, resp, nil
}

func (c *Controller) planConfigs(res ConfigResource, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig) ([]Record, *apiError) {
	switch res.Type {
	case ConfigTopic:
		if why := checkTopicName(TopicName(res.Name)); why != "" {
			return nil, refuse(kerr.InvalidTopicException, "%s", why)
		}
		if _, ok := c.img.names[TopicName(res.Name)]; !ok {
			return nil, refuse(kerr.UnknownTopicOrPartition, "topic %q does not exist", res.Name)
		}
	case ConfigBroker:
		if res.Name != "" {
			if n, err := strconv.ParseInt(res.Name, 10, 32); err != nil || n < 0 || strconv.FormatInt(n, 10) != res.Name {
				return nil, refuse(kerr.InvalidRequest, "broker resource %q is neither empty nor a node id", res.Name)
			}
		}
	default:
		return nil, refuse(kerr.InvalidRequest, "configs of resource type %d are not supported", int8(res.Type))
	}
	// Work on a copy of the current values, so that several operations on
	// one key in one request compose in order.
	cur := c.img.Config(res)
	if cur == nil {
		cur = map[string]string{}
	}
	touched := map[string]bool{}
	for _, op := range ops {
		if op.Name == "" {
			return nil, refuse(kerr.InvalidConfig, "empty config key")
		}
		switch op.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if op.Value == nil {
				return nil, refuse(kerr.InvalidRequest, "SET of %q without a value", op.Name)
			}
			cur[op.Name] = *op.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(cur, op.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if op.Value == nil {
				return nil, refuse(kerr.InvalidRequest, "%s of %q without a value", op.Op, op.Name)
			}
			v, ok := cur[op.Name]
			if c.opts.ListConfig != nil {
				def, isList := c.opts.ListConfig(res, op.Name)
				if !isList {
					return nil, refuse(kerr.InvalidConfig, "%s %q: %s of %q: it is not a list config", res.Type, res.Name, op.Op, op.Name)
				}
				if !ok {
					v = def
				}
			}
			list := splitList(v)
			for _, item := range splitList(*op.Value) {
				if op.Op == kmsg.IncrementalAlterConfigOpAppend && !slices.Contains(list, item) {
					list = append(list, item)
				} else if op.Op == kmsg.IncrementalAlterConfigOpSubtract {
					list = slices.DeleteFunc(list, func(s string) bool { return s == item })
				}
			}
			if len(list) == 0 && c.opts.ListConfig != nil {
				return nil, refuse(kerr.InvalidConfig, "%s %q: %s of %q leaves the list empty", res.Type, res.Name, op.Op, op.Name)
			}
			cur[op.Name] = strings.Join(list, ",")
		default:
			return nil, refuse(kerr.InvalidRequest, "unknown config operation %d on %q", int8(op.Op), op.Name)
		}
		touched[op.Name] = true
	}
	var records []Record
	for _, k := range slices.Sorted(maps.Keys(touched)) {
		v, set := cur[k]
		if set {
			if aerr := c.checkConfig(res, k, v); aerr != nil {
				return nil, aerr
			}
			records = append(records, ConfigRecord{Resource: res, Key: k, Value: &v})
		} else {
			records = append(records, ConfigRecord{Resource: res, Key: k})
		}
	}
	return records, nil
}

// AlterConfigs (the legacy, non-incremental request) replaces the whole
// config set of each resource: keys it lists are set, keys it leaves out
// are deleted. Each resource succeeds or fails on its own.
func (c *Controller) AlterConfigs(req *kmsg.AlterConfigsRequest) ([]Record, *kmsg.AlterConfigsResponse, error) {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	listed := map[ConfigResource]int{}
	for _, r := range req.Resources {
		listed[ConfigResource{Type: ConfigType(r.ResourceType), Name: r.ResourceName}]++
	}
	var out []Record
	for _, r := range req.Resources {
		rr := kmsg.NewAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		res := ConfigResource{Type: ConfigType(r.ResourceType), Name: r.ResourceName}
		var aerr *apiError
		var records []Record
		if listed[res] > 1 {
			aerr = refuse(kerr.InvalidRequest, "%s %q is listed more than once", res.Type, res.Name)
		} else {
			var ops []kmsg.IncrementalAlterConfigsRequestResourceConfig
			given := map[string]bool{}
			for _, kv := range r.Configs {
				switch {
				case given[kv.Name]:
					aerr = refuse(kerr.InvalidRequest, "config %q is listed more than once", kv.Name)
				case kv.Value == nil:
					aerr = refuse(kerr.InvalidRequest, "config %q has a null value", kv.Name)
				}
				given[kv.Name] = true
				ops = append(ops, kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: kv.Name, Op: kmsg.IncrementalAlterConfigOpSet, Value: kv.Value})
			}
			for _, k := range slices.Sorted(maps.Keys(c.img.configs[res])) {
				if !given[k] {
					ops = append(ops, kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: k, Op: kmsg.IncrementalAlterConfigOpDelete})
				}
			}
			if aerr == nil {
				records, aerr = c.planConfigs(res, ops)
			}
		}
		if aerr != nil {
			rr.ErrorCode, rr.ErrorMessage = aerr.err.Code, &aerr.msg
		} else if !req.ValidateOnly {
			if err := c.emit(&out, records...); err != nil {
				return nil, nil, err
			}
		}
		resp.Resources = append(resp.Resources, rr)
	}
	// A config change may allow unclean election on a leaderless
	// partition: it takes effect at once, as in Kafka.
	if err := c.electLeaderless(&out); err != nil {
		return nil, nil, err
	}
	return out, resp, nil
}

// splitList splits a comma-separated list config, dropping the spaces
// around its elements and empty elements.
func splitList(v string) []string {
	var out []string
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}
