package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Election is one partition's result of `weir cluster elect-leaders`.
type Election struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Result is "elected", or the Kafka error name (ELECTION_NOT_NEEDED,
	// PREFERRED_LEADER_NOT_AVAILABLE, ...).
	Result string `json:"result"`
	// Message explains a failure, when the broker gave one.
	Message string `json:"message,omitempty"`
}

// ElectLeaders asks the controller (through any broker, with kadm) to
// elect leaders: the preferred replica (the first of each assignment)
// where it is an in-sync replica, or, unclean, any live replica of a
// partition that has no leader. topic "" means every partition (the
// reply then lists only those where something was done or failed);
// partition < 0 every partition of topic. It returns an error when a
// partition named explicitly could not be elected for any reason but
// ELECTION_NOT_NEEDED.
func ElectLeaders(ctx context.Context, cl *kgo.Client, w io.Writer, out Output, topic string, partition int32, unclean bool) error {
	adm := kadm.NewClient(cl)
	set := kadm.TopicsSet{}
	if topic != "" {
		parts := []int32{partition}
		if partition < 0 {
			md, err := adm.Metadata(ctx, topic)
			if err != nil {
				return fmt.Errorf("cli: elect leaders: metadata of %q: %w", topic, err)
			}
			td, ok := md.Topics[topic]
			if !ok || td.Err != nil {
				return fmt.Errorf("cli: elect leaders: topic %q: %w", topic, cmpErr(td.Err, kerr.UnknownTopicOrPartition))
			}
			parts = td.Partitions.Numbers()
		}
		set.Add(topic, parts...)
	}
	how := kadm.ElectPreferredReplica
	if unclean {
		how = kadm.ElectLiveReplica
	}
	rs, err := adm.ElectLeaders(ctx, how, set)
	if err != nil {
		return fmt.Errorf("cli: elect leaders: %w", err)
	}
	var res []Election
	var failed []string
	for t, ps := range rs {
		for p, r := range ps {
			e := Election{Topic: t, Partition: p, Result: "elected", Message: r.ErrMessage}
			if r.Err != nil {
				var ke *kerr.Error
				if errors.As(r.Err, &ke) {
					e.Result = ke.Message
				} else {
					e.Result = r.Err.Error()
				}
				if !errors.Is(r.Err, kerr.ElectionNotNeeded) {
					failed = append(failed, fmt.Sprintf("%s/%d", t, p))
				}
			}
			res = append(res, e)
		}
	}
	slices.SortFunc(res, func(a, b Election) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition - b.Partition)
	})
	if out.JSON {
		if err := writeJSON(w, res); err != nil {
			return err
		}
	} else if len(res) == 0 {
		fmt.Fprintln(w, "no partition needed an election")
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TOPIC\tPARTITION\tRESULT\tMESSAGE")
		for _, e := range res {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", e.Topic, e.Partition, e.Result, e.Message)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if topic != "" && len(failed) > 0 {
		slices.Sort(failed)
		return fmt.Errorf("cli: elect leaders: no election for %s", strings.Join(failed, ", "))
	}
	return nil
}

func cmpErr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}
