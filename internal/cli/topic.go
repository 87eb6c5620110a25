package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Output selects how admin commands print their results.
type Output struct {
	// JSON prints one JSON document instead of text for people. Default:
	// false.
	JSON bool
}

// ParseConfigs turns repeated "key=value" flags into a map, refusing
// entries without '=' or with an empty key.
func ParseConfigs(kvs []string) (map[string]string, error) {
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("cli: config %q: want key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// topicErr describes a failure of op on one topic with the broker's
// message, if any: one line, the broker's message before the code.
func topicErr(op, topic string, err error, msg string) error {
	return fmt.Errorf("cli: %s topic %q: %w", op, topic, KafkaError(err, msg))
}

// CreateTopicsRequest says which topics to create and how.
type CreateTopicsRequest struct {
	// Topics are the names to create.
	Topics []string
	// Partitions per topic; -1 (the default in weir) lets the broker choose.
	Partitions int32
	// ReplicationFactor per topic; -1 lets the broker choose.
	ReplicationFactor int16
	// Configs are topic configs to set (e.g. retention.ms).
	Configs map[string]string
}

// CreatedTopic is one entry of create's output.
type CreatedTopic struct {
	Topic             string `json:"topic"`
	ID                string `json:"id,omitempty"`
	Partitions        int32  `json:"partitions"`
	ReplicationFactor int16  `json:"replication_factor"`
	Error             string `json:"error,omitempty"`
}

// CreateTopics creates the topics and reports each. It returns an error
// naming every topic that failed, after printing the rest.
func CreateTopics(ctx context.Context, adm *kadm.Client, w io.Writer, out Output, req CreateTopicsRequest) error {
	if len(req.Topics) == 0 {
		return errors.New("cli: no topic named")
	}
	var configs map[string]*string
	if len(req.Configs) > 0 {
		configs = make(map[string]*string, len(req.Configs))
		for k, v := range req.Configs {
			configs[k] = kadm.StringPtr(v)
		}
	}
	resps, err := adm.CreateTopics(ctx, req.Partitions, req.ReplicationFactor, configs, req.Topics...)
	if err != nil {
		return fmt.Errorf("cli: create topics: %w", err)
	}
	var results []CreatedTopic
	var errs []error
	for _, name := range req.Topics {
		r, ok := resps[name]
		res := CreatedTopic{Topic: name, Partitions: r.NumPartitions, ReplicationFactor: r.ReplicationFactor}
		switch {
		case !ok:
			res.Error = "not in the broker's response"
			errs = append(errs, topicErr("create", name, errors.New(res.Error), ""))
		case r.Err != nil:
			res.Error = KafkaError(r.Err, r.ErrMessage).Error()
			errs = append(errs, topicErr("create", name, r.Err, r.ErrMessage))
		default:
			res.ID = r.ID.String()
		}
		results = append(results, res)
	}
	if out.JSON {
		if err := writeJSON(w, results); err != nil {
			return err
		}
	} else {
		// Failures are not printed here: the returned error says them once.
		for _, r := range results {
			if r.Error != "" {
				continue
			}
			fmt.Fprintf(w, "Created topic %s (%s, replication factor %d).\n", r.Topic, plural(int(r.Partitions), "partition"), r.ReplicationFactor)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return nil
}

// ListedTopic is one entry of list's output.
type ListedTopic struct {
	Topic             string `json:"topic"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replication_factor"`
	Internal          bool   `json:"internal,omitempty"`
}

// ListTopics prints every topic, sorted by name; internal topics only when
// internal is set.
func ListTopics(ctx context.Context, adm *kadm.Client, w io.Writer, out Output, internal bool) error {
	var tds kadm.TopicDetails
	var err error
	if internal {
		tds, err = adm.ListTopicsWithInternal(ctx)
	} else {
		tds, err = adm.ListTopics(ctx)
	}
	if err != nil {
		return fmt.Errorf("cli: list topics: %w", err)
	}
	results := []ListedTopic{}
	for _, name := range tds.Names() {
		td := tds[name]
		if td.Err != nil {
			continue // e.g. deleted between listing and describing
		}
		results = append(results, ListedTopic{Topic: name, Partitions: len(td.Partitions), ReplicationFactor: td.Partitions.NumReplicas(), Internal: td.IsInternal})
	}
	if out.JSON {
		return writeJSON(w, results)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tREPLICATION")
	for _, r := range results {
		name := r.Topic
		if r.Internal {
			name += " (internal)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\n", name, r.Partitions, r.ReplicationFactor)
	}
	return tw.Flush()
}

// DescribedTopic is one entry of describe's output.
type DescribedTopic struct {
	Topic      string               `json:"topic"`
	ID         string               `json:"id,omitempty"`
	Internal   bool                 `json:"internal,omitempty"`
	Partitions []DescribedPartition `json:"partitions"`
	Configs    []DescribedConfig    `json:"configs"`
}

// DescribedPartition is one partition in DescribedTopic.
type DescribedPartition struct {
	Partition   int32   `json:"partition"`
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leader_epoch"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	Error       string  `json:"error,omitempty"`
}

// DescribedConfig is one config in DescribedTopic.
type DescribedConfig struct {
	Name      string  `json:"name"`
	Value     *string `json:"value"`
	Source    string  `json:"source"`
	Sensitive bool    `json:"sensitive,omitempty"`
}

// DescribeTopics prints partitions (leader, replicas, ISR) and configs of
// each topic. Only configs set on the topic are shown unless allConfigs.
func DescribeTopics(ctx context.Context, adm *kadm.Client, w io.Writer, out Output, allConfigs bool, topics ...string) error {
	if len(topics) == 0 {
		return errors.New("cli: no topic named")
	}
	tds, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("cli: describe: %w", err)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return fmt.Errorf("cli: describe configs: %w", err)
	}
	var results []DescribedTopic
	var errs []error
	for _, name := range topics {
		td, ok := tds[name]
		if !ok || td.Err != nil {
			e := td.Err
			if !ok {
				e = errors.New("not in the broker's response")
			}
			errs = append(errs, topicErr("describe", name, e, ""))
			continue
		}
		d := DescribedTopic{Topic: name, ID: td.ID.String(), Internal: td.IsInternal, Partitions: []DescribedPartition{}, Configs: []DescribedConfig{}}
		for _, p := range td.Partitions.Sorted() {
			dp := DescribedPartition{Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, Replicas: p.Replicas, ISR: p.ISR}
			if p.Err != nil {
				dp.Error = p.Err.Error()
			}
			d.Partitions = append(d.Partitions, dp)
		}
		rc, err := rcs.On(name, nil)
		if err == nil && rc.Err != nil {
			err = rc.Err
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("cli: describe configs of topic %q: %w", name, KafkaError(err, rc.ErrMessage)))
		}
		for _, c := range rc.Configs {
			if !allConfigs && c.Source != kmsg.ConfigSourceDynamicTopicConfig {
				continue
			}
			d.Configs = append(d.Configs, DescribedConfig{Name: c.Key, Value: c.Value, Source: c.Source.String(), Sensitive: c.Sensitive})
		}
		slices.SortFunc(d.Configs, func(a, b DescribedConfig) int { return strings.Compare(a.Name, b.Name) })
		results = append(results, d)
	}
	if out.JSON {
		if results == nil {
			results = []DescribedTopic{}
		}
		if err := writeJSON(w, results); err != nil {
			return err
		}
	} else {
		for i, d := range results {
			if i > 0 {
				fmt.Fprintln(w)
			}
			writeDescribed(w, d, allConfigs)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return nil
}

func writeDescribed(w io.Writer, d DescribedTopic, allConfigs bool) {
	fmt.Fprintf(w, "Topic: %s\n", d.Topic)
	if d.ID != "" && d.ID != (kadm.TopicID{}).String() {
		fmt.Fprintf(w, "ID: %s\n", d.ID)
	}
	if d.Internal {
		fmt.Fprintln(w, "Internal: yes")
	}
	withErr := slices.ContainsFunc(d.Partitions, func(p DescribedPartition) bool { return p.Error != "" })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if withErr {
		fmt.Fprintln(tw, "PARTITION\tLEADER\tEPOCH\tREPLICAS\tISR\tERROR")
	} else {
		fmt.Fprintln(tw, "PARTITION\tLEADER\tEPOCH\tREPLICAS\tISR")
	}
	for _, p := range d.Partitions {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s", p.Partition, p.Leader, p.LeaderEpoch, ints(p.Replicas), ints(p.ISR))
		if withErr {
			fmt.Fprintf(tw, "\t%s", p.Error)
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
	switch {
	case len(d.Configs) == 0 && !allConfigs:
		fmt.Fprintln(w, "Configs: broker defaults")
	case len(d.Configs) > 0:
		fmt.Fprintln(w, "Configs:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, c := range d.Configs {
			v := "<null>"
			if c.Sensitive {
				v = "<sensitive>"
			} else if c.Value != nil {
				v = *c.Value
			}
			if allConfigs {
				fmt.Fprintf(tw, "  %s=%s\t(%s)\n", c.Name, v, c.Source)
			} else {
				fmt.Fprintf(tw, "  %s=%s\n", c.Name, v)
			}
		}
		_ = tw.Flush()
	}
}

func ints(v []int32) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

// AlterTopicRequest says how to change one topic.
type AlterTopicRequest struct {
	// Topic is the topic to change.
	Topic string
	// Partitions, when above 0, is the new partition count (Kafka only
	// grows it).
	Partitions int
	// Set are configs to set.
	Set map[string]string
	// Delete are configs to remove, returning them to the broker default.
	Delete []string
}

// AlteredTopic is alter's output.
type AlteredTopic struct {
	Topic      string            `json:"topic"`
	Partitions int               `json:"partitions,omitempty"`
	Set        map[string]string `json:"set,omitempty"`
	Deleted    []string          `json:"deleted,omitempty"`
}

// AlterTopic changes a topic's partition count and configs (incrementally:
// configs not named keep their values).
func AlterTopic(ctx context.Context, adm *kadm.Client, w io.Writer, out Output, req AlterTopicRequest) error {
	if req.Topic == "" {
		return errors.New("cli: no topic named")
	}
	if req.Partitions <= 0 && len(req.Set) == 0 && len(req.Delete) == 0 {
		return errors.New("cli: alter: nothing to change (use --partitions, --config or --delete-config)")
	}
	res := AlteredTopic{Topic: req.Topic}
	if req.Partitions > 0 {
		resps, err := adm.UpdatePartitions(ctx, req.Partitions, req.Topic)
		if err != nil {
			return fmt.Errorf("cli: alter partitions: %w", err)
		}
		r, err := resps.On(req.Topic, nil)
		if err == nil {
			err = r.Err
		}
		if err != nil {
			return topicErr("add partitions to", req.Topic, err, r.ErrMessage)
		}
		res.Partitions = req.Partitions
	}
	if len(req.Set) > 0 || len(req.Delete) > 0 {
		var alters []kadm.AlterConfig
		for _, k := range sortedKeys(req.Set) {
			alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kadm.StringPtr(req.Set[k])})
		}
		for _, k := range req.Delete {
			alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
		}
		resps, err := adm.AlterTopicConfigs(ctx, alters, req.Topic)
		if err != nil {
			return fmt.Errorf("cli: alter configs: %w", err)
		}
		r, err := resps.On(req.Topic, nil)
		if err == nil {
			err = r.Err
		}
		if err != nil {
			return topicErr("alter configs of", req.Topic, err, r.ErrMessage)
		}
		res.Set, res.Deleted = req.Set, req.Delete
	}
	if out.JSON {
		return writeJSON(w, res)
	}
	var what []string
	if res.Partitions > 0 {
		what = append(what, fmt.Sprintf("partitions=%d", res.Partitions))
	}
	for _, k := range sortedKeys(res.Set) {
		what = append(what, fmt.Sprintf("set %s=%s", k, res.Set[k]))
	}
	for _, k := range res.Deleted {
		what = append(what, "deleted "+k)
	}
	_, err := fmt.Fprintf(w, "Altered topic %s: %s.\n", res.Topic, strings.Join(what, ", "))
	return err
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// DeletedTopic is one entry of delete's output.
type DeletedTopic struct {
	Topic string `json:"topic"`
	Error string `json:"error,omitempty"`
}

// DeleteTopics deletes the topics and reports each; the error names every
// topic that failed.
func DeleteTopics(ctx context.Context, adm *kadm.Client, w io.Writer, out Output, topics ...string) error {
	if len(topics) == 0 {
		return errors.New("cli: no topic named")
	}
	resps, err := adm.DeleteTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("cli: delete topics: %w", err)
	}
	var results []DeletedTopic
	var errs []error
	for _, name := range topics {
		r, ok := resps[name]
		res := DeletedTopic{Topic: name}
		switch {
		case !ok:
			res.Error = "not in the broker's response"
			errs = append(errs, topicErr("delete", name, errors.New(res.Error), ""))
		case r.Err != nil:
			res.Error = KafkaError(r.Err, r.ErrMessage).Error()
			errs = append(errs, topicErr("delete", name, r.Err, r.ErrMessage))
		}
		results = append(results, res)
	}
	if out.JSON {
		if err := writeJSON(w, results); err != nil {
			return err
		}
	} else {
		// Failures are not printed here: the returned error says them once.
		for _, r := range results {
			if r.Error == "" {
				fmt.Fprintf(w, "Deleted topic %s.\n", r.Topic)
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return nil
}

// plural writes "1 partition", "3 partitions".
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
