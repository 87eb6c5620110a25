package protocol

// DescribeConfigs, versions 0-4.
//
// TOPIC resources list every topic config Weir supports (or the names
// asked for) with its effective value and source: set on the topic
// (DYNAMIC_TOPIC_CONFIG), a broker-wide default (STATIC_BROKER_CONFIG) or
// Kafka's built-in default (DEFAULT_CONFIG); synonyms (v1+) show the chain.
// BROKER resources (name "" or this node's id) list the broker's own settings,
// read-only. Other resource types get INVALID_REQUEST; names Weir does not
// know are left out, as Kafka does.

import (
	"context"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/topics"
)

func init() { register(kmsg.DescribeConfigs, 0, 4, handleDescribeConfigs) }

func handleDescribeConfigs(_ context.Context, s *Server, r *Request) (kmsg.Response, error) {
	return describeConfigs(s, r, func(name string) (map[string]string, bool) {
		t, ok := s.Topics.Get(name)
		if !ok {
			return nil, false
		}
		return t.Configs(), true
	})
}

// describeConfigs answers DescribeConfigs with topicConfigs giving a
// topic's explicit configs (the local topic's on a single node, the
// metadata image's in a cluster).
func describeConfigs(s *Server, r *Request, topicConfigs func(name string) (map[string]string, bool)) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		or := kmsg.NewDescribeConfigsResponseResource()
		or.ResourceType, or.ResourceName = rr.ResourceType, rr.ResourceName
		var entries []configEntry
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			cfg, ok := topicConfigs(rr.ResourceName)
			if !ok {
				or.ErrorCode = kerr.UnknownTopicOrPartition.Code
				resp.Resources = append(resp.Resources, or)
				continue
			}
			entries = effectiveConfigs(s.Topics.Defaults(), cfg)
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(s.Node().ID)) {
				or.ErrorCode = kerr.InvalidRequest.Code
				or.ErrorMessage = errMessage(errorf("broker %q is not this broker (node %d)", rr.ResourceName, s.Node().ID))
				resp.Resources = append(resp.Resources, or)
				continue
			}
			entries = brokerConfigs(s)
		default:
			or.ErrorCode = kerr.InvalidRequest.Code
			or.ErrorMessage = errMessage(errorf("config resource type %d is not supported", rr.ResourceType))
			resp.Resources = append(resp.Resources, or)
			continue
		}
		for _, e := range entries {
			if rr.ConfigNames != nil && !slices.Contains(rr.ConfigNames, e.name) {
				continue
			}
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			c.Name = e.name
			v := e.value
			c.Value = &v
			c.ReadOnly = rr.ResourceType == kmsg.ConfigResourceTypeBroker
			c.IsDefault = e.source == sourceDefaultConfig
			c.Source = kmsg.ConfigSource(e.source)
			c.IsSensitive = e.sensitive
			c.ConfigType = configType(e.name, e.value)
			if req.IncludeDocumentation && e.doc != "" {
				d := e.doc
				c.Documentation = &d
			}
			if req.IncludeSynonyms {
				c.ConfigSynonyms = synonyms(s, rr.ResourceType, e)
			}
			or.Configs = append(or.Configs, c)
		}
		resp.Resources = append(resp.Resources, or)
	}
	return resp, nil
}

// synonyms lists where a topic config's value could come from, most
// specific first.
func synonyms(s *Server, rt kmsg.ConfigResourceType, e configEntry) []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	if rt != kmsg.ConfigResourceTypeTopic {
		return nil
	}
	var out []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
	add := func(v string, src int8) {
		syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
		syn.Name = e.name
		syn.Value = &v
		syn.Source = kmsg.ConfigSource(src)
		out = append(out, syn)
	}
	if e.source == sourceTopic {
		add(e.value, sourceTopic)
	}
	if v, set := s.Topics.Defaults().Value(e.name); set {
		add(v, sourceStaticBroker)
	}
	if d, ok := topics.LookupConfig(e.name); ok {
		add(d.Default, sourceDefaultConfig)
	}
	return out
}

// brokerConfigs are the broker's own settings as DescribeConfigs shows them.
func brokerConfigs(s *Server) []configEntry {
	cfg := s.Config()
	static := func(name, value, doc string) configEntry {
		return configEntry{name: name, value: value, source: sourceStaticBroker, doc: doc}
	}
	return []configEntry{
		static("auto.create.topics.enable", strconv.FormatBool(cfg.AutoCreateTopics), "create unknown topics on Metadata and Produce"),
		static("broker.id", strconv.Itoa(int(s.Node().ID)), "this broker's node id"),
		static("default.replication.factor", "1", "replication is not implemented yet"),
		static("num.partitions", strconv.Itoa(int(cfg.DefaultPartitions)), "partitions of auto-created topics"),
		static("socket.request.max.bytes", strconv.Itoa(int(cfg.MaxFrameBytes)), "largest request accepted"),
	}
}

// configType classifies a config for DescribeConfigs v3+.
func configType(name, value string) kmsg.ConfigType {
	switch {
	case name == "cleanup.policy":
		return kmsg.ConfigTypeList
	case value == "true" || value == "false":
		return kmsg.ConfigTypeBoolean
	}
	if _, err := strconv.ParseInt(value, 10, 64); err == nil {
		return kmsg.ConfigTypeLong
	}
	return kmsg.ConfigTypeString
}
