package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ThrottleRateConfig is the broker config `weir topic reassign --throttle`
// sets cluster-wide (replica.ThrottleRateConfig: bytes per second for the
// catch-up of replicas a reassignment adds, never for ISR members) and
// `--verify` removes once every reassignment of its plan is done.
const ThrottleRateConfig = "follower.replication.throttled.rate"

// Plan is a reassignment plan in kafka-reassign-partitions' JSON:
//
//	{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,3]}]}
//
// log_dirs is accepted when every entry is "any" (Weir has one log
// directory choice per broker, not per replica).
type Plan struct {
	Version    int             `json:"version"`
	Partitions []PlanPartition `json:"partitions"`
}

// PlanPartition is one partition's new replicas, the first the preferred
// leader.
type PlanPartition struct {
	Topic     string   `json:"topic"`
	Partition int32    `json:"partition"`
	Replicas  []int32  `json:"replicas"`
	LogDirs   []string `json:"log_dirs,omitempty"`
}

// ParsePlan reads a plan from r (name is the file, for errors). Every
// problem names the entry it is in: an unknown field, a missing topic, a
// negative partition or broker id, a broker listed twice, no replicas,
// log_dirs other than "any" or of another length, a partition listed twice.
func ParsePlan(r io.Reader, name string) (Plan, error) {
	var p Plan
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Plan{}, fmt.Errorf("cli: plan %s: not a reassignment plan (%s): %w", name, `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,3]}]}`, err)
	}
	if dec.More() {
		return Plan{}, fmt.Errorf("cli: plan %s: more than one JSON document", name)
	}
	if p.Version != 1 {
		return Plan{}, fmt.Errorf("cli: plan %s: version %d, want 1", name, p.Version)
	}
	if len(p.Partitions) == 0 {
		return Plan{}, fmt.Errorf("cli: plan %s: no partitions", name)
	}
	seen := map[string]int{}
	for i, e := range p.Partitions {
		bad := func(f string, a ...any) error {
			return fmt.Errorf("cli: plan %s: partitions[%d] (topic %q partition %d): %s", name, i, e.Topic, e.Partition, fmt.Sprintf(f, a...))
		}
		switch {
		case e.Topic == "":
			return Plan{}, bad("no topic")
		case e.Partition < 0:
			return Plan{}, bad("negative partition")
		case len(e.Replicas) == 0:
			return Plan{}, bad("no replicas")
		case e.LogDirs != nil && len(e.LogDirs) != len(e.Replicas):
			return Plan{}, bad("%d log_dirs for %d replicas", len(e.LogDirs), len(e.Replicas))
		}
		for _, d := range e.LogDirs {
			if d != "any" {
				return Plan{}, bad("log_dirs %q: only \"any\" is supported", d)
			}
		}
		for j, r := range e.Replicas {
			if r < 0 {
				return Plan{}, bad("replica %d is not a broker id", r)
			}
			if slices.Contains(e.Replicas[:j], r) {
				return Plan{}, bad("broker %d listed twice in replicas %v", r, e.Replicas)
			}
		}
		k := e.Topic + "/" + strconv.Itoa(int(e.Partition))
		if prev, ok := seen[k]; ok {
			return Plan{}, bad("the same partition as partitions[%d]", prev)
		}
		seen[k] = i
	}
	return p, nil
}

// JSON returns the plan as kafka-reassign-partitions writes it: one line.
func (p Plan) JSON() string {
	var b bytes.Buffer
	_ = json.NewEncoder(&b).Encode(p) // a Plan always encodes
	return strings.TrimSpace(b.String())
}

// current returns the plan's partitions as the cluster now assigns them
// (the rollback plan), or an error naming the first entry whose topic or
// partition does not exist.
func current(ctx context.Context, adm *kadm.Client, p Plan) (Plan, error) {
	var topics []string
	for _, e := range p.Partitions {
		if !slices.Contains(topics, e.Topic) {
			topics = append(topics, e.Topic)
		}
	}
	md, err := adm.Metadata(ctx, topics...)
	if err != nil {
		return Plan{}, fmt.Errorf("cli: reassign: metadata: %w", err)
	}
	back := Plan{Version: 1}
	for i, e := range p.Partitions {
		td, ok := md.Topics[e.Topic]
		if !ok || td.Err != nil {
			return Plan{}, fmt.Errorf("cli: reassign: partitions[%d]: topic %q: %w", i, e.Topic, cmpErr(td.Err, kerr.UnknownTopicOrPartition))
		}
		pd, ok := td.Partitions[e.Partition]
		if !ok {
			return Plan{}, fmt.Errorf("cli: reassign: partitions[%d]: topic %q has no partition %d (it has %d)", i, e.Topic, e.Partition, len(td.Partitions))
		}
		back.Partitions = append(back.Partitions, PlanPartition{Topic: e.Topic, Partition: e.Partition, Replicas: slices.Clone(pd.Replicas)})
	}
	return back, nil
}

// ReassignPlan submits plan (AlterPartitionReassignments), after printing
// the current assignment of its partitions as a plan that rolls it back.
// With throttle > 0 it first sets ThrottleRateConfig cluster-wide to
// throttle bytes per second (VerifyPlan removes it).
func ReassignPlan(ctx context.Context, adm *kadm.Client, w io.Writer, out Output, plan Plan, throttle int64) error {
	back, err := current(ctx, adm, plan)
	if err != nil {
		return err
	}
	if !out.JSON {
		fmt.Fprintf(w, "Current assignment (save it to roll back with --plan):\n%s\n\n", back.JSON())
	}
	if throttle > 0 {
		if err := setThrottle(ctx, adm, strconv.FormatInt(throttle, 10)); err != nil {
			return err
		}
		if !out.JSON {
			fmt.Fprintf(w, "Catch-up throttled to %d bytes/s (%s); `weir topic reassign --plan FILE --verify` removes it once done.\n\n", throttle, ThrottleRateConfig)
		}
	}
	moves := make([]Move, len(plan.Partitions))
	for i, e := range plan.Partitions {
		moves[i] = Move{Topic: e.Topic, Partition: e.Partition, From: back.Partitions[i].Replicas, To: e.Replicas}
	}
	if out.JSON {
		return submitJSON(ctx, adm, w, moves, back)
	}
	return submit(ctx, adm, w, out, moves)
}

// submitJSON is submit for --json with a rollback plan: one document
// {"rollback": plan, "moves": [...]}.
func submitJSON(ctx context.Context, adm *kadm.Client, w io.Writer, moves []Move, back Plan) error {
	refused, err := startMoves(ctx, adm, moves)
	if err != nil {
		return err
	}
	doc := struct {
		Rollback Plan   `json:"rollback"`
		Moves    []Move `json:"moves"`
	}{back, moves}
	if err := writeJSON(w, doc); err != nil {
		return err
	}
	return refused
}

// setThrottle sets (value non-empty) or removes ThrottleRateConfig on the
// cluster-wide broker resource.
func setThrottle(ctx context.Context, adm *kadm.Client, value string) error {
	op := kadm.AlterConfig{Name: ThrottleRateConfig, Op: kadm.DeleteConfig}
	if value != "" {
		op = kadm.AlterConfig{Name: ThrottleRateConfig, Op: kadm.SetConfig, Value: &value}
	}
	rs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{op})
	if err == nil {
		for _, r := range rs {
			if r.Err != nil {
				err = KafkaError(r.Err, r.ErrMessage)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("cli: reassign: broker config %s: %w", ThrottleRateConfig, err)
	}
	return nil
}

// PlanStatus is one partition's state under VerifyPlan.
type PlanStatus struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Want      []int32 `json:"want"`
	Now       []int32 `json:"now"`
	// Status: "done" (the replicas are the plan's), "in progress" (a
	// reassignment is under way) or "differs" (none is, and the replicas
	// are not the plan's).
	Status string `json:"status"`
}

// VerifyPlan reports, per partition of plan, whether its reassignment is
// done, and fails unless all are. Once all are, it removes the throttle
// (ThrottleRateConfig).
func VerifyPlan(ctx context.Context, adm *kadm.Client, w io.Writer, out Output, plan Plan) error {
	// NB: the reassignments first (the controller answers), then the
	// assignment: one that ends in between reads as done, not differs.
	set := kadm.TopicsSet{}
	for _, e := range plan.Partitions {
		set.Add(e.Topic, e.Partition)
	}
	ongoing, err := adm.ListPartitionReassignments(ctx, set)
	if err != nil {
		return fmt.Errorf("cli: reassign --verify: list reassignments: %w", err)
	}
	now, err := current(ctx, adm, plan)
	if err != nil {
		return err
	}
	var sts []PlanStatus
	var notDone []string
	for i, e := range plan.Partitions {
		st := PlanStatus{Topic: e.Topic, Partition: e.Partition, Want: e.Replicas, Now: now.Partitions[i].Replicas, Status: "done"}
		switch _, running := ongoing[e.Topic][e.Partition]; {
		case running:
			st.Status = "in progress"
		case !slices.Equal(st.Now, e.Replicas):
			st.Status = "differs"
		}
		if st.Status != "done" {
			notDone = append(notDone, fmt.Sprintf("%s/%d (%s)", e.Topic, e.Partition, st.Status))
		}
		sts = append(sts, st)
	}
	// NB: deleting a config that is not set succeeds: the throttle is
	// removed whether or not this plan set it.
	removed := len(notDone) == 0
	if removed {
		if err := setThrottle(ctx, adm, ""); err != nil {
			return err
		}
	}
	if out.JSON {
		if err := writeJSON(w, struct {
			Partitions      []PlanStatus `json:"partitions"`
			ThrottleRemoved bool         `json:"throttle_removed"`
		}{sts, removed}); err != nil {
			return err
		}
	} else {
		for _, st := range sts {
			fmt.Fprintf(w, "%s/%d: %s (replicas %s, plan %s)\n", st.Topic, st.Partition, st.Status, ids(st.Now), ids(st.Want))
		}
		if removed {
			fmt.Fprintf(w, "Every reassignment is done; the catch-up throttle (%s) is removed.\n", ThrottleRateConfig)
		}
	}
	if len(notDone) > 0 {
		return fmt.Errorf("cli: reassignment not done for %s", strings.Join(notDone, ", "))
	}
	return nil
}
