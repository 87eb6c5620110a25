package client

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
)

// ErrTopicSetup is matched by every error Prepare returns for a topic
// problem the user must fix (missing input topic, co-partitioning, wrong
// internal topic partition count).
var ErrTopicSetup = errors.New("runtime: topics are not set up for this application")

// IsTopicSetup reports whether err is a topic setup problem.
func IsTopicSetup(err error) bool { return errors.Is(err, ErrTopicSetup) }

// Plan is what Prepare found and made: every topic the application reads,
// with partition counts, and the topic each store's changelog lives in.
type Plan struct {
	// Sources maps the real name of every topic a sub-topology reads to
	// its sub-topology.
	Sources map[string]streams.SubtopologyID
	// Partitions maps every source, internal and changelog topic (real
	// names) to its partition count.
	Partitions map[string]int32
	// Changelogs maps store name to its changelog topic (real name);
	// unlogged stores are absent; a store whose source topic serves as its
	// changelog maps to that topic.
	Changelogs map[string]string
	// Globals maps every topic a global sub-topology reads to that
	// sub-topology. These topics are read whole by every instance, outside
	// the group, and are not in Sources.
	Globals map[string]streams.SubtopologyID
	// Created lists the internal topics Prepare created.
	Created []string
}

// Prepare checks the application's topics and creates the internal ones
// that are missing: repartition topics (cleanup.policy=delete) and changelog
// topics (configs from state.ChangelogTopicFor), each with the partition
// count the topology needs. It refuses, with a message saying what to do,
// when an input topic is missing, topics that must be co-partitioned are
// not, or an existing internal topic has the wrong partition count.
// replicationFactor -1 means the default: min(3, brokers), with
// min.insync.replicas 2 at 3 (defaultReplication).
func Prepare(ctx context.Context, adm *kadm.Client, app string, topo *streams.Topology, replicationFactor int16) (*Plan, error) {
	plan := &Plan{
		Sources:    map[string]streams.SubtopologyID{},
		Partitions: map[string]int32{},
		Changelogs: map[string]string{},
		Globals:    map[string]streams.SubtopologyID{},
	}
	var external []string
	for _, st := range topo.Subtopologies() {
		if st.Global {
			for _, tp := range st.SourceTopics {
				plan.Globals[tp] = st.ID
				external = append(external, tp)
			}
			continue
		}
		for _, tp := range st.SourceTopics {
			if topo.IsInternalTopic(tp) {
				plan.Sources[streams.InternalTopicName(app, tp)] = st.ID
				continue
			}
			plan.Sources[tp] = st.ID
			external = append(external, tp)
		}
	}
	sort.Strings(external)
	var problems []string
	if len(external) > 0 {
		md, err := adm.ListTopics(ctx, external...)
		if err != nil {
			return nil, fmt.Errorf("runtime: list input topics: %w", err)
		}
		for _, tp := range external {
			d, ok := md[tp]
			if !ok || d.Err != nil {
				problems = append(problems, fmt.Sprintf("input topic %q does not exist: create it first (weir topic create %s --partitions N)", tp, tp))
				continue
			}
			plan.Partitions[tp] = int32(len(d.Partitions))
		}
	}
	if len(problems) > 0 {
		return nil, setupError(problems)
	}
	count := func(tp string) int { return int(plan.Partitions[tp]) }
	if err := topo.CheckCopartitioning(count); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTopicSetup, err)
	}

	// Desired internal topics: repartition topics, then changelogs.
	type want struct {
		partitions int32
		configs    map[string]string
		what       string
	}
	wants := map[string]want{}
	internal := topo.InternalTopicPartitions(count)
	for name, n := range internal {
		real := streams.InternalTopicName(app, name)
		wants[real] = want{partitions: int32(n), configs: map[string]string{"cleanup.policy": "delete"}, what: "repartition"}
		plan.Partitions[real] = int32(n)
	}
	// A sub-topology has as many tasks as its widest input.
	tasks := map[streams.SubtopologyID]int32{}
	for real, st := range plan.Sources {
		tasks[st] = max(tasks[st], plan.Partitions[real])
	}
	for _, st := range topo.Subtopologies() {
		for _, name := range st.Stores {
			spec, _ := topo.Store(name)
			if spec.Unlogged || spec.Global {
				continue
			}
			if spec.SourceTopic != "" {
				plan.Changelogs[name] = spec.SourceTopic
				continue
			}
			ct := state.ChangelogTopicFor(app, spec.Spec)
			wants[ct.Name] = want{partitions: tasks[st.ID], configs: ct.Configs, what: "changelog"}
			plan.Changelogs[name] = ct.Name
			plan.Partitions[ct.Name] = tasks[st.ID]
		}
	}
	if len(wants) == 0 {
		return plan, nil
	}
	names := make([]string, 0, len(wants))
	for n := range wants {
		names = append(names, n)
	}
	sort.Strings(names)
	md, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("runtime: list internal topics: %w", err)
	}
	var minISR string
	if replicationFactor < 0 {
		replicationFactor, minISR, err = defaultReplication(ctx, adm)
		if err != nil {
			return nil, err
		}
	}
	var raced []string
	for _, n := range names {
		w := wants[n]
		d, ok := md[n]
		if ok && d.Err == nil {
			if got := int32(len(d.Partitions)); got != w.partitions {
				problems = append(problems, fmt.Sprintf("%s topic %q has %d partitions but the topology needs %d: delete it (weir topic delete %s) and restart to recreate it, or reset the application", w.what, n, got, w.partitions, n))
			}
			continue
		}
		if w.partitions <= 0 {
			problems = append(problems, fmt.Sprintf("%s topic %q: cannot tell its partition count (the sub-topology that writes it has no input partitions)", w.what, n))
			continue
		}
		configs := map[string]*string{}
		for k, v := range w.configs {
			configs[k] = kadm.StringPtr(v)
		}
		if _, ok := configs["min.insync.replicas"]; !ok && minISR != "" {
			configs["min.insync.replicas"] = kadm.StringPtr(minISR)
		}
		resp, err := adm.CreateTopic(ctx, w.partitions, replicationFactor, configs, n)
		if err == nil {
			err = resp.Err
		}
		switch {
		case errors.Is(err, kerr.TopicAlreadyExists):
			// Another instance created it a moment ago: check it below.
			raced = append(raced, n)
		case err != nil:
			return nil, fmt.Errorf("runtime: create %s topic %q: %w", w.what, n, err)
		default:
			plan.Created = append(plan.Created, n)
		}
	}
	if len(raced) > 0 {
		md, err := adm.ListTopics(ctx, raced...)
		if err != nil {
			return nil, fmt.Errorf("runtime: list internal topics: %w", err)
		}
		for _, n := range raced {
			w := wants[n]
			if d, ok := md[n]; ok && d.Err == nil && int32(len(d.Partitions)) != w.partitions {
				problems = append(problems, fmt.Sprintf("%s topic %q has %d partitions but the topology needs %d: delete it (weir topic delete %s) and restart to recreate it, or reset the application", w.what, n, len(d.Partitions), w.partitions, n))
			}
		}
	}
	if len(problems) > 0 {
		return nil, setupError(problems)
	}
	return plan, nil
}

// DefaultReplicationFactor is the replication factor of the internal
// topics an application creates when it names none, capped at the
// cluster's brokers.
const DefaultReplicationFactor = 3

// defaultReplication returns the replication factor internal topics get by
// default, min(DefaultReplicationFactor, brokers), and the
// min.insync.replicas to create them with: "2" at a replication factor of
// 3 or more (an acknowledged write then survives the loss of any one
// replica while one more may be down), "" otherwise (the broker's
// default). It is set explicitly so that brokers whose own default is 1
// (Apache Kafka's) give the same guarantee.
func defaultReplication(ctx context.Context, adm *kadm.Client) (int16, string, error) {
	bs, err := adm.ListBrokers(ctx)
	if err != nil {
		return 0, "", fmt.Errorf("runtime: list the cluster's brokers for the internal topics' replication factor: %w", err)
	}
	rf := int16(min(DefaultReplicationFactor, max(len(bs), 1)))
	if rf >= 3 {
		return rf, "2", nil
	}
	return rf, "", nil
}

func setupError(problems []string) error {
	return fmt.Errorf("%w:\n  %s", ErrTopicSetup, strings.Join(problems, "\n  "))
}
