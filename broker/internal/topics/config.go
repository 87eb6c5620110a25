package topics

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// LogConfig is a topic's configuration as the partition logs use it.
type LogConfig struct {
	SegmentBytes      int64
	SegmentMS         int64
	RetentionMS       int64 // -1: keep forever
	RetentionBytes    int64 // -1: no size bound
	Compact           bool  // cleanup.policy contains compact
	Delete            bool  // cleanup.policy contains delete
	DeleteRetentionMS int64
	MaxMessageBytes   int32
	LogAppendTime     bool // message.timestamp.type=LogAppendTime
	MinInsyncReplicas int32
	// TimestampDifferenceMaxMS is message.timestamp.difference.max.ms: a
	// CreateTime batch whose first or max timestamp is further than this
	// from the broker's clock is refused (INVALID_TIMESTAMP). math.MaxInt64
	// (the default) disables the check.
	TimestampDifferenceMaxMS int64
}

// ErrInvalidConfig marks a config name or value the broker refuses.
var ErrInvalidConfig = errors.New("topics: invalid config")

// IsInvalidConfig reports whether err is (or wraps) ErrInvalidConfig.
func IsInvalidConfig(err error) bool { return errors.Is(err, ErrInvalidConfig) }

// ConfigDef describes one supported topic config.
type ConfigDef struct {
	Name      string
	Default   string // Kafka's default; the broker may override it
	Sensitive bool
	// Doc is the one-line description DescribeConfigs returns.
	Doc   string
	check func(v string) error
}

func intCheck(min int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		if n < min {
			return fmt.Errorf("%d is below the minimum %d", n, min)
		}
		return nil
	}
}

func oneOf(vals ...string) func(string) error {
	return func(v string) error {
		for _, ok := range vals {
			if v == ok {
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %s", v, strings.Join(vals, ", "))
	}
}

// configDefs are the topic configs Weir knows, by name.
var configDefs = map[string]ConfigDef{
	"retention.ms":                        {Default: "604800000", Doc: "how long to keep a segment (ms, -1 forever)", check: intCheck(-1)},
	"retention.bytes":                     {Default: "-1", Doc: "bytes to keep per partition (-1 unbounded)", check: intCheck(-1)},
	"cleanup.policy":                      {Default: "delete", Doc: "delete, compact or compact,delete", check: checkCleanupPolicy},
	"segment.bytes":                       {Default: "1073741824", Doc: "segment file size", check: intCheck(1024)},
	"segment.ms":                          {Default: "604800000", Doc: "roll a segment after this long (ms)", check: intCheck(1)},
	"delete.retention.ms":                 {Default: "86400000", Doc: "how long tombstones survive compaction (ms)", check: intCheck(0)},
	"min.insync.replicas":                 {Default: "1", Doc: "replicas that must hold an acks=all write", check: intCheck(1)},
	"unclean.leader.election.enable":      {Default: "false", Doc: "cluster mode: when every ISR member is down, elect another live replica (losing the records it lacks) rather than stay offline", check: oneOf("true", "false")},
	"max.message.bytes":                   {Default: "1048588", Doc: "largest batch accepted (bytes)", check: intCheck(0)},
	"message.timestamp.type":              {Default: "CreateTime", Doc: "CreateTime or LogAppendTime", check: oneOf("CreateTime", "LogAppendTime")},
	"message.timestamp.difference.max.ms": {Default: "9223372036854775807", Doc: "largest distance (ms) of a CreateTime batch's first or max timestamp from the broker's clock", check: intCheck(0)},
	"compression.type":                    {Default: "producer", Doc: "only producer: batches are stored as sent", check: oneOf("producer")},
}

func init() {
	for name, d := range configDefs {
		d.Name = name
		configDefs[name] = d
	}
}

func checkCleanupPolicy(v string) error {
	parts := strings.Split(v, ",")
	seen := map[string]bool{}
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p != "delete" && p != "compact" {
			return fmt.Errorf("%q is not delete, compact or compact,delete", v)
		}
		seen[p] = true
	}
	return nil
}

// ConfigNames returns the supported topic config names, sorted.
func ConfigNames() []string {
	out := make([]string, 0, len(configDefs))
	for n := range configDefs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// LookupConfig returns the definition of a supported config.
func LookupConfig(name string) (ConfigDef, bool) {
	d, ok := configDefs[name]
	return d, ok
}

// CheckConfig validates one config name and value.
func CheckConfig(name, value string) error {
	d, ok := configDefs[name]
	if !ok {
		return fmt.Errorf("%w: unknown topic config %q", ErrInvalidConfig, name)
	}
	if err := d.check(value); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalidConfig, name, err)
	}
	return nil
}

// CheckConfigs validates every entry and reports all problems at once.
func CheckConfigs(cfg map[string]string) error {
	var errs []error
	names := make([]string, 0, len(cfg))
	for n := range cfg {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := CheckConfig(n, cfg[n]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Defaults are broker-wide topic config defaults: Kafka's defaults
// overridden by explicit entries.
type Defaults map[string]string

// Value returns the effective default of name and whether it was set
// explicitly on the broker (rather than Kafka's built-in default).
func (d Defaults) Value(name string) (string, bool) {
	if v, ok := d[name]; ok {
		return v, true
	}
	return configDefs[name].Default, false
}

// Resolve builds the log configuration from a topic's explicit configs over
// the broker defaults. The inputs must have passed CheckConfigs.
func Resolve(defaults Defaults, explicit map[string]string) LogConfig {
	get := func(name string) string {
		if v, ok := explicit[name]; ok {
			return v
		}
		v, _ := defaults.Value(name)
		return v
	}
	num := func(name string) int64 {
		n, _ := strconv.ParseInt(get(name), 10, 64)
		return n
	}
	policy := get("cleanup.policy")
	mmb := num("max.message.bytes")
	if mmb > 1<<30 {
		mmb = 1 << 30
	}
	return LogConfig{
		SegmentBytes:      num("segment.bytes"),
		SegmentMS:         num("segment.ms"),
		RetentionMS:       num("retention.ms"),
		RetentionBytes:    num("retention.bytes"),
		Compact:           strings.Contains(policy, "compact"),
		Delete:            strings.Contains(policy, "delete"),
		DeleteRetentionMS: num("delete.retention.ms"),
		MaxMessageBytes:   int32(mmb),
		LogAppendTime:     get("message.timestamp.type") == "LogAppendTime",
		MinInsyncReplicas: int32(num("min.insync.replicas")),

		TimestampDifferenceMaxMS: num("message.timestamp.difference.max.ms"),
	}
}
