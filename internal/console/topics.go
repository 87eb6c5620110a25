package console

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-dev/weir/internal/cli"
)

// TopicSummary is one row of /api/topics.
type TopicSummary struct {
	Topic             string `json:"topic"`
	Internal          bool   `json:"internal"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replication_factor"`
	UnderReplicated   int    `json:"under_replicated"`
	Offline           int    `json:"offline"`
	// Records is the sum over partitions of end - start offsets.
	Records int64  `json:"records"`
	Error   string `json:"error,omitempty"`
}

func (s *Server) topics(ctx context.Context, _ *http.Request) (any, error) {
	md, err := s.adm.Metadata(ctx)
	if err != nil {
		return nil, fmt.Errorf("console: metadata: %w", err)
	}
	names := md.Topics.Names()
	starts, err := s.adm.ListStartOffsets(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("console: start offsets: %w", err)
	}
	ends, err := s.adm.ListEndOffsets(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("console: end offsets: %w", err)
	}
	out := []TopicSummary{}
	for _, t := range md.Topics.Sorted() {
		ts := TopicSummary{Topic: t.Topic, Internal: t.IsInternal, Partitions: len(t.Partitions)}
		if t.Err != nil {
			ts.Error = cli.KafkaError(t.Err, "").Error()
		}
		for _, p := range t.Partitions {
			ts.ReplicationFactor = max(ts.ReplicationFactor, len(p.Replicas))
			switch {
			case p.Leader < 0 || p.Err != nil:
				ts.Offline++
			case len(p.ISR) < len(p.Replicas):
				ts.UnderReplicated++
			}
			st, ok1 := starts.Lookup(t.Topic, p.Partition)
			en, ok2 := ends.Lookup(t.Topic, p.Partition)
			if ok1 && ok2 && st.Err == nil && en.Err == nil {
				ts.Records += en.Offset - st.Offset
			}
		}
		out = append(out, ts)
	}
	return out, nil
}

// Topic is /api/topics/{topic}'s answer.
type Topic struct {
	Topic      string      `json:"topic"`
	Internal   bool        `json:"internal"`
	Partitions []Partition `json:"partitions"`
	// SizesAvailable is false when the brokers do not answer
	// DescribeLogDirs: every partition's Bytes is then -1.
	SizesAvailable bool     `json:"sizes_available"`
	Configs        []Config `json:"configs"`
	ConfigsError   string   `json:"configs_error,omitempty"`
}

// Partition is one partition of a Topic.
type Partition struct {
	Partition   int32   `json:"partition"`
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leader_epoch"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	Offline     []int32 `json:"offline_replicas"`
	// Start and End are the log start offset and the high watermark, -1
	// when they could not be listed (Error says why).
	Start int64  `json:"start"`
	End   int64  `json:"end"`
	Bytes int64  `json:"bytes"`
	Error string `json:"error,omitempty"`
}

// Config is one topic config.
type Config struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	Source    string `json:"source"`
	Sensitive bool   `json:"sensitive,omitempty"`
}

func (s *Server) topic(ctx context.Context, r *http.Request) (any, error) {
	name := r.PathValue("topic")
	md, err := s.adm.Metadata(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("console: metadata of %q: %w", name, err)
	}
	td, ok := md.Topics[name]
	if !ok || td.Err != nil {
		if !ok || td.Err == kerr.UnknownTopicOrPartition {
			return nil, notFound("topic %q does not exist", name)
		}
		return nil, fmt.Errorf("console: topic %q: %w", name, cli.KafkaError(td.Err, ""))
	}
	starts, err := s.adm.ListStartOffsets(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("console: start offsets of %q: %w", name, err)
	}
	ends, err := s.adm.ListEndOffsets(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("console: end offsets of %q: %w", name, err)
	}
	sizes := s.partitionSizes(ctx, name)
	out := Topic{Topic: name, Internal: td.IsInternal, SizesAvailable: sizes != nil, Configs: []Config{}}
	for _, p := range td.Partitions.Sorted() {
		pp := Partition{Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
			Replicas: orEmpty(p.Replicas), ISR: orEmpty(p.ISR), Offline: orEmpty(p.OfflineReplicas), Start: -1, End: -1, Bytes: -1}
		if p.Err != nil {
			pp.Error = cli.KafkaError(p.Err, "").Error()
		}
		if o, ok := starts.Lookup(name, p.Partition); ok && o.Err == nil {
			pp.Start = o.Offset
		} else if ok && pp.Error == "" {
			pp.Error = cli.KafkaError(o.Err, "").Error()
		}
		if o, ok := ends.Lookup(name, p.Partition); ok && o.Err == nil {
			pp.End = o.Offset
		} else if ok && pp.Error == "" {
			pp.Error = cli.KafkaError(o.Err, "").Error()
		}
		if b, ok := sizes[p.Partition]; ok {
			pp.Bytes = b
		}
		out.Partitions = append(out.Partitions, pp)
	}
	cfgs, err := s.adm.DescribeTopicConfigs(ctx, name)
	if err == nil {
		var rc kadm.ResourceConfig
		rc, err = cfgs.On(name, nil)
		if err == nil && rc.Err != nil {
			err = cli.KafkaError(rc.Err, rc.ErrMessage)
		}
		for _, c := range rc.Configs {
			out.Configs = append(out.Configs, Config{Name: c.Key, Value: c.MaybeValue(), Source: c.Source.String(), Sensitive: c.Sensitive})
		}
		slices.SortFunc(out.Configs, func(a, b Config) int { return compareStrings(a.Name, b.Name) })
	}
	if err != nil {
		out.ConfigsError = err.Error()
	}
	return out, nil
}
