package protocol

import (
	"github.com/weir-dev/weir/broker/internal/topics"
)

// Config sources as Kafka numbers them (DescribeConfigs v1+, CreateTopics v5+).
const (
	sourceTopic         int8 = 1 // DYNAMIC_TOPIC_CONFIG: set on the topic
	sourceStaticBroker  int8 = 4 // STATIC_BROKER_CONFIG: the broker's topic defaults
	sourceDefaultConfig int8 = 5 // DEFAULT_CONFIG: Kafka's built-in default
)

// configEntry is one effective topic config with its origin.
type configEntry struct {
	name, value string
	source      int8
	sensitive   bool
	doc         string
}

// effectiveConfigs lists every supported config of a topic with explicit
// settings (configs) over broker defaults, in name order.
func effectiveConfigs(defaults topics.Defaults, configs map[string]string) []configEntry {
	var out []configEntry
	for _, name := range topics.ConfigNames() {
		d, _ := topics.LookupConfig(name)
		e := configEntry{name: name, sensitive: d.Sensitive, doc: d.Doc}
		if v, ok := configs[name]; ok {
			e.value, e.source = v, sourceTopic
		} else if v, set := defaults.Value(name); set {
			e.value, e.source = v, sourceStaticBroker
		} else {
			e.value, e.source = v, sourceDefaultConfig
		}
		out = append(out, e)
	}
	return out
}
