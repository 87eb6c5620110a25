package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/weir-dev/weir/internal/cli"
)

// GroupSummary is one row of /api/groups.
type GroupSummary struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Coordinator  int32  `json:"coordinator"`
	Members      int    `json:"members"`
	// TotalLag sums the partitions' lag (kadm's computation), -1 when it
	// could not be computed (Error says why).
	TotalLag int64  `json:"total_lag"`
	Error    string `json:"error,omitempty"`
}

func (s *Server) groups(ctx context.Context, _ *http.Request) (any, error) {
	listed, err := s.adm.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("console: list groups: %w", err)
	}
	out := []GroupSummary{}
	if len(listed) == 0 {
		return out, nil
	}
	lags, err := s.adm.Lag(ctx, listed.Groups()...)
	if err != nil {
		return nil, fmt.Errorf("console: group lag: %w", err)
	}
	for _, g := range listed.Sorted() {
		gs := GroupSummary{Group: g.Group, State: g.State, ProtocolType: g.ProtocolType, Coordinator: g.Coordinator, TotalLag: -1}
		if l, ok := lags[g.Group]; ok {
			if err := l.Error(); err != nil {
				gs.Error = cli.KafkaError(err, "").Error()
			} else {
				gs.State, gs.Members, gs.TotalLag = l.State, len(l.Members), totalLag(l.Lag)
			}
		}
		out = append(out, gs)
	}
	return out, nil
}

// totalLag sums the partitions' lag, skipping those in error.
func totalLag(l kadm.GroupLag) int64 {
	var n int64
	for _, ps := range l {
		for _, p := range ps {
			if p.Err == nil {
				n += max(p.Lag, 0)
			}
		}
	}
	return n
}

// Group is /api/groups/{group}'s answer.
type Group struct {
	Group        string         `json:"group"`
	State        string         `json:"state"`
	ProtocolType string         `json:"protocol_type"`
	Protocol     string         `json:"protocol"`
	Coordinator  int32          `json:"coordinator"`
	Members      []GroupMember  `json:"members"`
	Partitions   []PartitionLag `json:"partitions"`
	TotalLag     int64          `json:"total_lag"`
}

// GroupMember is a member with the partitions assigned to it.
type GroupMember struct {
	MemberID   string   `json:"member_id"`
	InstanceID string   `json:"instance_id,omitempty"`
	ClientID   string   `json:"client_id"`
	ClientHost string   `json:"client_host"`
	Assigned   []string `json:"assigned"`
}

// PartitionLag is one partition's committed offset, end and lag, as
// kadm's Lag computes them.
type PartitionLag struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Committed is -1 when the group has no commit for the partition.
	Committed int64  `json:"committed"`
	Start     int64  `json:"start"`
	End       int64  `json:"end"`
	Lag       int64  `json:"lag"`
	MemberID  string `json:"member_id,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Error     string `json:"error,omitempty"`
}

func (s *Server) group(ctx context.Context, r *http.Request) (any, error) {
	name := r.PathValue("group")
	lags, err := s.adm.Lag(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("console: lag of group %q: %w", name, err)
	}
	l, ok := lags[name]
	if !ok {
		return nil, fmt.Errorf("console: group %q: no answer", name)
	}
	if err := l.Error(); err != nil {
		return nil, fmt.Errorf("console: group %q: %w", name, cli.KafkaError(err, ""))
	}
	if l.State == "Dead" && len(l.Members) == 0 && len(l.Lag) == 0 {
		return nil, notFound("group %q does not exist", name)
	}
	g := Group{Group: name, State: l.State, ProtocolType: l.ProtocolType, Protocol: l.Protocol,
		Coordinator: l.Coordinator.NodeID, Members: []GroupMember{}, Partitions: []PartitionLag{}, TotalLag: totalLag(l.Lag)}
	for _, m := range l.Members {
		g.Members = append(g.Members, groupMember(m))
	}
	for _, ml := range l.Lag.Sorted() {
		pl := PartitionLag{Topic: ml.Topic, Partition: ml.Partition, Committed: ml.Commit.At, Start: ml.Start.Offset, End: ml.End.Offset, Lag: ml.Lag}
		if ml.Member != nil {
			pl.MemberID, pl.ClientID = ml.Member.MemberID, ml.Member.ClientID
		}
		if ml.Err != nil {
			pl.Error = cli.KafkaError(ml.Err, "").Error()
		}
		g.Partitions = append(g.Partitions, pl)
	}
	return g, nil
}

// groupMember is m with the partitions assigned to it, sorted.
func groupMember(m kadm.DescribedGroupMember) GroupMember {
	gm := GroupMember{MemberID: m.MemberID, ClientID: m.ClientID, ClientHost: m.ClientHost, Assigned: []string{}}
	if m.InstanceID != nil {
		gm.InstanceID = *m.InstanceID
	}
	if c, ok := m.Assigned.AsConsumer(); ok {
		for _, t := range c.Topics {
			ps := slices.Clone(t.Partitions)
			slices.Sort(ps)
			for _, p := range ps {
				gm.Assigned = append(gm.Assigned, t.Topic+"/"+itoa(p))
			}
		}
	}
	return gm
}

// ResetRequest is the body of POST /api/groups/{group}/reset: move the
// group's committed offsets of Topic (every partition, or Partitions) To
// "earliest", "latest", "offset" (Offset, clamped into the log) or "time"
// (the first record at or after Time: RFC 3339 or Unix milliseconds; the
// end when there is none). Without Execute it is a dry run.
type ResetRequest struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions,omitempty"`
	To         string  `json:"to"`
	Offset     int64   `json:"offset,omitempty"`
	Time       string  `json:"time,omitempty"`
	Execute    bool    `json:"execute"`
}

// ResetPlan is the answer: per partition, the current and the new offset,
// and whether they were committed.
type ResetPlan struct {
	Group    string        `json:"group"`
	Executed bool          `json:"executed"`
	Offsets  []ResetOffset `json:"offsets"`
}

// ResetOffset is one partition's planned (or committed) reset.
type ResetOffset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Current is -1 when the group has no commit for the partition.
	Current int64 `json:"current"`
	New     int64 `json:"new"`
}

func (s *Server) reset(ctx context.Context, r *http.Request) (any, error) {
	group := r.PathValue("group")
	if err := sameOrigin(r); err != nil {
		return nil, err
	}
	var req ResetRequest
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, badRequest("reset body: %v", err)
	}
	if req.Topic == "" {
		return nil, badRequest("reset: topic is required")
	}
	var timeMs int64
	switch req.To {
	case "earliest", "latest":
	case "offset":
		if req.Offset < 0 {
			return nil, badRequest("reset: offset %d: want >= 0", req.Offset)
		}
	case "time":
		ms, err := parseTime(req.Time)
		if err != nil {
			return nil, err
		}
		timeMs = ms
	default:
		return nil, badRequest("reset: to %q: want earliest, latest, offset or time", req.To)
	}
	described, err := s.adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("console: describe group %q: %w", group, err)
	}
	if g, ok := described[group]; ok {
		if g.Err != nil {
			return nil, fmt.Errorf("console: describe group %q: %w", group, cli.KafkaError(g.Err, g.ErrMessage))
		}
		if len(g.Members) > 0 {
			return nil, &httpError{status: http.StatusConflict,
				err: fmt.Errorf("console: group %q has %d active members (state %s): stop them before resetting its offsets", group, len(g.Members), g.State)}
		}
	}
	starts, err := s.adm.ListStartOffsets(ctx, req.Topic)
	if err != nil {
		return nil, fmt.Errorf("console: start offsets of %q: %w", req.Topic, err)
	}
	if len(starts[req.Topic]) == 0 {
		return nil, notFound("topic %q does not exist", req.Topic)
	}
	ends, err := s.adm.ListEndOffsets(ctx, req.Topic)
	if err != nil {
		return nil, fmt.Errorf("console: end offsets of %q: %w", req.Topic, err)
	}
	var after kadm.ListedOffsets
	if req.To == "time" {
		if after, err = s.adm.ListOffsetsAfterMilli(ctx, timeMs, req.Topic); err != nil {
			return nil, fmt.Errorf("console: offsets after %d ms: %w", timeMs, err)
		}
	}
	current, err := s.adm.FetchOffsetsForTopics(ctx, group, req.Topic)
	if err != nil {
		return nil, fmt.Errorf("console: committed offsets of %q: %w", group, err)
	}
	for _, p := range req.Partitions {
		if _, ok := starts.Lookup(req.Topic, p); !ok {
			return nil, notFound("topic %q has no partition %d", req.Topic, p)
		}
	}
	plan := ResetPlan{Group: group, Offsets: []ResetOffset{}}
	var commit kadm.Offsets
	var problems []error
	starts.Each(func(st kadm.ListedOffset) {
		if len(req.Partitions) > 0 && !slices.Contains(req.Partitions, st.Partition) {
			return
		}
		en, _ := ends.Lookup(st.Topic, st.Partition)
		if st.Err != nil || en.Err != nil {
			problems = append(problems, fmt.Errorf("console: reset: partition %d: %w", st.Partition, cli.KafkaError(errors.Join(st.Err, en.Err), "")))
			return
		}
		var to int64
		switch req.To {
		case "earliest":
			to = st.Offset
		case "latest":
			to = en.Offset
		case "offset":
			to = min(max(req.Offset, st.Offset), en.Offset)
		default:
			to = en.Offset // nothing at or after the time
			if a, ok := after.Lookup(st.Topic, st.Partition); ok && a.Err == nil && a.Offset >= 0 {
				to = min(max(a.Offset, st.Offset), en.Offset)
			}
		}
		cur := int64(-1)
		if c, ok := current.Lookup(st.Topic, st.Partition); ok && c.Err == nil {
			cur = c.At
		}
		plan.Offsets = append(plan.Offsets, ResetOffset{Topic: st.Topic, Partition: st.Partition, Current: cur, New: to})
		commit.Add(kadm.Offset{Topic: st.Topic, Partition: st.Partition, At: to, LeaderEpoch: -1})
	})
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	slices.SortFunc(plan.Offsets, func(a, b ResetOffset) int { return int(a.Partition - b.Partition) })
	if req.Execute {
		resps, err := s.adm.CommitOffsets(ctx, group, commit)
		if err != nil {
			return nil, fmt.Errorf("console: commit offsets of %q: %w", group, err)
		}
		if err := resps.Error(); err != nil {
			return nil, fmt.Errorf("console: commit offsets of %q: %w", group, cli.KafkaError(err, ""))
		}
		plan.Executed = true
	}
	return plan, nil
}
