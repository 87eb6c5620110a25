package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Move is one partition's reassignment as `weir topic reassign` and
// `weir cluster drain` submit it.
type Move struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	From      []int32 `json:"from"`
	To        []int32 `json:"to"`
	// Err is why the controller refused it; empty: started.
	Err string `json:"error,omitempty"`
}

// ParseReplicas reads "1,2,3" into broker ids.
func ParseReplicas(s string) ([]int32, error) {
	var out []int32
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		n, err := strconv.ParseInt(f, 10, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("cli: replicas %q: %q is not a broker id", s, f)
		}
		out = append(out, int32(n))
	}
	return out, nil
}

// Reassign moves partition of topic to replicas (the first the preferred
// leader) with AlterPartitionReassignments: the new replicas catch up as
// followers, then the assignment switches and the removed replicas drop
// their copies (follow it with ListPartitionReassignments, `weir topic
// describe`).
func Reassign(ctx context.Context, adm *kadm.Client, w io.Writer, out Output, topic string, partition int32, replicas []int32) error {
	return ReassignPlan(ctx, adm, w, out, Plan{Version: 1, Partitions: []PlanPartition{{Topic: topic, Partition: partition, Replicas: replicas}}}, 0)
}

// Drain moves every replica off broker (before it is removed): each
// partition holding it gets, in its place, the live broker that holds the
// fewest replicas (counting the moves planned so far), appended last, so
// that the partition's next replica becomes its preferred leader; the
// controller moves a leadership on the drained broker to a kept in-sync
// replica first. It fails, moving nothing, when a partition has no live
// broker to go to.
func Drain(ctx context.Context, adm *kadm.Client, w io.Writer, out Output, broker int32) error {
	md, err := adm.Metadata(ctx)
	if err != nil {
		return fmt.Errorf("cli: drain: metadata: %w", err)
	}
	load := map[int32]int{}
	for _, b := range md.Brokers {
		load[b.NodeID] = 0
	}
	for _, td := range md.Topics {
		for _, pd := range td.Partitions {
			for _, r := range pd.Replicas {
				if _, ok := load[r]; ok {
					load[r]++
				}
			}
		}
	}
	var moves []Move
	var stuck []string
	for _, td := range md.Topics.Sorted() {
		for _, pd := range td.Partitions.Sorted() {
			if !slices.Contains(pd.Replicas, broker) {
				continue
			}
			to := slices.DeleteFunc(slices.Clone(pd.Replicas), func(r int32) bool { return r == broker })
			best := int32(-1)
			for b, n := range load {
				if b == broker || slices.Contains(pd.Replicas, b) {
					continue
				}
				if best < 0 || cmp.Or(cmp.Compare(n, load[best]), cmp.Compare(b, best)) < 0 {
					best = b
				}
			}
			if best < 0 {
				stuck = append(stuck, fmt.Sprintf("%s/%d", td.Topic, pd.Partition))
				continue
			}
			load[best]++
			moves = append(moves, Move{Topic: td.Topic, Partition: pd.Partition, From: pd.Replicas, To: append(to, best)})
		}
	}
	if len(stuck) > 0 {
		return fmt.Errorf("cli: drain broker %d: no other live broker can take a replica of %s (each already holds one); add a broker or lower the replication factor first", broker, strings.Join(stuck, ", "))
	}
	if len(moves) == 0 {
		if out.JSON {
			return writeJSON(w, []Move{})
		}
		fmt.Fprintf(w, "broker %d holds no replica\n", broker)
		return nil
	}
	return submit(ctx, adm, w, out, moves)
}

// submit sends moves in one AlterPartitionReassignments and prints them.
func submit(ctx context.Context, adm *kadm.Client, w io.Writer, out Output, moves []Move) error {
	refused, err := startMoves(ctx, adm, moves)
	if err != nil {
		return err
	}
	if out.JSON {
		if err := writeJSON(w, moves); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TOPIC\tPARTITION\tFROM\tTO\tRESULT")
		for _, m := range moves {
			res := "started"
			if m.Err != "" {
				res = m.Err
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", m.Topic, m.Partition, ids(m.From), ids(m.To), res)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return refused
}

// startMoves sends moves in one AlterPartitionReassignments and sets the
// Err of each the controller refused. It returns the error that names the
// refused moves (nil when none was), or the request's error.
func startMoves(ctx context.Context, adm *kadm.Client, moves []Move) (refused, err error) {
	var req kadm.AlterPartitionAssignmentsReq
	for _, m := range moves {
		req.Assign(m.Topic, m.Partition, m.To)
	}
	rs, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("cli: reassign: %w", err)
	}
	var failed []string
	for i := range moves {
		m := &moves[i]
		if r, ok := rs[m.Topic][m.Partition]; ok && r.Err != nil {
			m.Err = KafkaError(r.Err, r.ErrMessage).Error()
			failed = append(failed, fmt.Sprintf("%s/%d", m.Topic, m.Partition))
		}
	}
	if len(failed) > 0 {
		return errors.New("cli: reassignment refused for " + strings.Join(failed, ", ")), nil
	}
	return nil, nil
}

func ids(ns []int32) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(int(n))
	}
	return strings.Join(s, ",")
}
