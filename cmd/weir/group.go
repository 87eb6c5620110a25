package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/weir-dev/weir/internal/cli"
)

func init() { subcommands = append(subcommands, newGroupCmd) }

func newGroupCmd() *cobra.Command {
	var cf clientFlags
	var out cli.Output
	cmd := &cobra.Command{
		Use:   "group",
		Short: "List, describe, reset offsets of and delete consumer groups on any Kafka-compatible cluster",
	}
	cf.register(cmd)
	cmd.PersistentFlags().BoolVar(&out.JSON, "json", false, "print JSON for scripts instead of text")
	run := cf.admin

	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List consumer groups with their state and protocol type",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return run(c, func(ctx context.Context, adm *kadm.Client) error {
				return listGroups(ctx, adm, c.OutOrStdout(), out)
			})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "describe GROUP",
		Short: "Show a group's state, members and, per partition, committed offset, log end and lag",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return run(c, func(ctx context.Context, adm *kadm.Client) error {
				return describeGroup(ctx, adm, c.OutOrStdout(), out, args[0])
			})
		},
	})
	var reset resetRequest
	resetCmd := &cobra.Command{
		Use:   "reset-offsets GROUP --topic T (--to-earliest|--to-latest|--to-offset N|--to-datetime TS) [--execute]",
		Short: "Move a group's committed offsets (a dry run unless --execute; refused while the group has members)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			reset.group = args[0]
			reset.toOffsetSet = c.Flags().Changed("to-offset")
			return run(c, func(ctx context.Context, adm *kadm.Client) error {
				return resetOffsets(ctx, adm, c.OutOrStdout(), out, reset, time.Now)
			})
		},
	}
	resetCmd.Flags().StringVar(&reset.topic, "topic", "", "topic whose offsets to reset (required)")
	resetCmd.Flags().BoolVar(&reset.toEarliest, "to-earliest", false, "reset to the log start")
	resetCmd.Flags().BoolVar(&reset.toLatest, "to-latest", false, "reset to the log end")
	resetCmd.Flags().Int64Var(&reset.toOffset, "to-offset", 0, "reset to this offset (clamped to the log's bounds)")
	resetCmd.Flags().StringVar(&reset.toDatetime, "to-datetime", "", "reset to the first record at or after this time (RFC 3339, 2006-01-02T15:04:05 in UTC, or Unix milliseconds)")
	resetCmd.Flags().BoolVar(&reset.execute, "execute", false, "commit the new offsets (default: only show them)")
	cmd.AddCommand(resetCmd)
	cmd.AddCommand(&cobra.Command{
		Use:   "delete GROUP...",
		Short: "Delete groups without members, with their committed offsets",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return run(c, func(ctx context.Context, adm *kadm.Client) error {
				return deleteGroups(ctx, adm, c.OutOrStdout(), out, args)
			})
		},
	})
	return cmd
}

// ListedGroup is one line of `weir group list`.
type ListedGroup struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
}

func listGroups(ctx context.Context, adm *kadm.Client, w io.Writer, out cli.Output) error {
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		return fmt.Errorf("list groups: %w", err)
	}
	var rows []ListedGroup
	for _, g := range groups.Sorted() {
		rows = append(rows, ListedGroup{Group: g.Group, State: g.State, ProtocolType: g.ProtocolType})
	}
	if out.JSON {
		return writeJSON(w, rows)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tSTATE\tPROTOCOL-TYPE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Group, r.State, r.ProtocolType)
	}
	return tw.Flush()
}

// DescribedGroup is `weir group describe` output.
type DescribedGroup struct {
	Group        string            `json:"group"`
	State        string            `json:"state"`
	ProtocolType string            `json:"protocol_type"`
	Protocol     string            `json:"protocol"`
	Members      []DescribedMember `json:"members"`
	Partitions   []PartitionLag    `json:"partitions"`
	TotalLag     int64             `json:"total_lag"`
}

// DescribedMember is one member of a described group.
type DescribedMember struct {
	MemberID   string  `json:"member_id"`
	InstanceID *string `json:"instance_id,omitempty"`
	ClientID   string  `json:"client_id"`
	ClientHost string  `json:"client_host"`
	// Assigned lists "topic/partition" entries of a consumer member.
	Assigned []string `json:"assigned"`
}

// PartitionLag is one partition's row of a described group.
type PartitionLag struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Committed is -1 when the group has no commit for the partition.
	Committed int64  `json:"committed"`
	LogEnd    int64  `json:"log_end"`
	Lag       int64  `json:"lag"`
	MemberID  string `json:"member_id,omitempty"`
	Error     string `json:"error,omitempty"`
}

func describeGroup(ctx context.Context, adm *kadm.Client, w io.Writer, out cli.Output, group string) error {
	lags, err := adm.Lag(ctx, group)
	if err != nil {
		return fmt.Errorf("describe group %s: %w", group, err)
	}
	l, ok := lags[group]
	if !ok {
		return fmt.Errorf("describe group %s: no answer", group)
	}
	if err := l.Error(); err != nil {
		return fmt.Errorf("describe group %s: %w", group, cli.KafkaError(err, ""))
	}
	if l.State == "Dead" && len(l.Members) == 0 && len(l.Lag) == 0 {
		return fmt.Errorf("describe group %s: the group does not exist", group)
	}
	d := DescribedGroup{Group: group, State: l.State, ProtocolType: l.ProtocolType, Protocol: l.Protocol}
	for _, m := range l.Members {
		dm := DescribedMember{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, ClientHost: m.ClientHost, Assigned: []string{}}
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range c.Topics {
				for _, p := range t.Partitions {
					dm.Assigned = append(dm.Assigned, t.Topic+"/"+strconv.Itoa(int(p)))
				}
			}
		}
		d.Members = append(d.Members, dm)
	}
	d.Partitions = []PartitionLag{}
	for _, ml := range l.Lag.Sorted() {
		pl := PartitionLag{Topic: ml.Topic, Partition: ml.Partition, Committed: ml.Commit.At, LogEnd: ml.End.Offset, Lag: ml.Lag}
		if ml.Member != nil {
			pl.MemberID = ml.Member.MemberID
		}
		if ml.Err != nil {
			pl.Error = cli.KafkaError(ml.Err, "").Error()
		} else {
			d.TotalLag += max(ml.Lag, 0)
		}
		d.Partitions = append(d.Partitions, pl)
	}
	if out.JSON {
		return writeJSON(w, d)
	}
	proto := d.ProtocolType
	if d.Protocol != "" {
		proto += "/" + d.Protocol
	}
	if proto == "" {
		proto = "-"
	}
	fmt.Fprintf(w, "Group %s: state %s, protocol %s, %d members\n", d.Group, d.State, proto, len(d.Members))
	if len(d.Members) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\nMEMBER-ID\tINSTANCE-ID\tCLIENT-ID\tHOST\tASSIGNED")
		for _, m := range d.Members {
			inst := "-"
			if m.InstanceID != nil {
				inst = *m.InstanceID
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.MemberID, inst, m.ClientID, m.ClientHost, strings.Join(m.Assigned, ","))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nTOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG\tMEMBER-ID")
	for _, p := range d.Partitions {
		cur := strconv.FormatInt(p.Committed, 10)
		if p.Committed < 0 {
			cur = "-"
		}
		lag := strconv.FormatInt(p.Lag, 10)
		if p.Error != "" {
			lag = "error: " + p.Error
		}
		mid := p.MemberID
		if mid == "" {
			mid = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\n", p.Topic, p.Partition, cur, p.LogEnd, lag, mid)
	}
	fmt.Fprintf(tw, "TOTAL\t\t\t\t%d\t\n", d.TotalLag)
	return tw.Flush()
}

// resetRequest is what `weir group reset-offsets` was asked.
type resetRequest struct {
	group, topic         string
	toEarliest, toLatest bool
	toOffset             int64
	toOffsetSet          bool
	toDatetime           string
	execute              bool
}

// ResetOffset is one partition's planned (or executed) reset.
type ResetOffset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Current is -1 when the group has no commit for the partition.
	Current int64 `json:"current"`
	New     int64 `json:"new"`
}

// parseDatetime accepts RFC 3339, a UTC time without zone, or Unix
// milliseconds.
func parseDatetime(s string) (int64, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ms, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixMilli(), nil
		}
	}
	return 0, fmt.Errorf("--to-datetime %q: want RFC 3339 (2006-01-02T15:04:05Z), 2006-01-02T15:04:05 (UTC) or Unix milliseconds", s)
}

func resetOffsets(ctx context.Context, adm *kadm.Client, w io.Writer, out cli.Output, r resetRequest, now func() time.Time) error {
	modes := 0
	for _, on := range []bool{r.toEarliest, r.toLatest, r.toOffsetSet, r.toDatetime != ""} {
		if on {
			modes++
		}
	}
	if modes != 1 {
		return errors.New("reset-offsets: give exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime")
	}
	if r.topic == "" {
		return errors.New("reset-offsets: --topic is required")
	}
	described, err := adm.DescribeGroups(ctx, r.group)
	if err != nil {
		return fmt.Errorf("reset-offsets: describe %s: %w", r.group, err)
	}
	if g, ok := described[r.group]; ok {
		if g.Err != nil {
			return fmt.Errorf("reset-offsets: describe %s: %w", r.group, cli.KafkaError(g.Err, g.ErrMessage))
		}
		if len(g.Members) > 0 {
			return fmt.Errorf("reset-offsets: group %s has %d active members (state %s); stop them first", r.group, len(g.Members), g.State)
		}
	}
	starts, err := adm.ListStartOffsets(ctx, r.topic)
	if err != nil {
		return fmt.Errorf("reset-offsets: %w", err)
	}
	if err := starts.Error(); err != nil {
		return fmt.Errorf("reset-offsets: topic %s: %w", r.topic, cli.KafkaError(err, ""))
	}
	ends, err := adm.ListEndOffsets(ctx, r.topic)
	if err != nil {
		return fmt.Errorf("reset-offsets: %w", err)
	}
	var after kadm.ListedOffsets
	if r.toDatetime != "" {
		ms, err := parseDatetime(r.toDatetime)
		if err != nil {
			return err
		}
		if after, err = adm.ListOffsetsAfterMilli(ctx, ms, r.topic); err != nil {
			return fmt.Errorf("reset-offsets: %w", err)
		}
	}
	current, err := adm.FetchOffsetsForTopics(ctx, r.group, r.topic)
	if err != nil {
		return fmt.Errorf("reset-offsets: fetch offsets of %s: %w", r.group, err)
	}
	var plan []ResetOffset
	var commit kadm.Offsets
	var problems []error
	starts.Each(func(s kadm.ListedOffset) {
		e, _ := ends.Lookup(s.Topic, s.Partition)
		if e.Err != nil {
			problems = append(problems, fmt.Errorf("reset-offsets: partition %d: %w", s.Partition, cli.KafkaError(e.Err, "")))
			return
		}
		var to int64
		switch {
		case r.toEarliest:
			to = s.Offset
		case r.toLatest:
			to = e.Offset
		case r.toOffsetSet:
			to = min(max(r.toOffset, s.Offset), e.Offset)
		default:
			a, ok := after.Lookup(s.Topic, s.Partition)
			if !ok || a.Err != nil || a.Offset < 0 {
				to = e.Offset // nothing at or after the time
			} else {
				to = min(max(a.Offset, s.Offset), e.Offset)
			}
		}
		cur := int64(-1)
		if c, ok := current.Lookup(s.Topic, s.Partition); ok && c.Err == nil {
			cur = c.At
		}
		plan = append(plan, ResetOffset{Topic: s.Topic, Partition: s.Partition, Current: cur, New: to})
		commit.Add(kadm.Offset{Topic: s.Topic, Partition: s.Partition, At: to, LeaderEpoch: -1})
	})
	if len(problems) > 0 {
		return errors.Join(problems...)
	}
	sortResets(plan)
	if r.execute {
		resps, err := adm.CommitOffsets(ctx, r.group, commit)
		if err != nil {
			return fmt.Errorf("reset-offsets: commit: %w", err)
		}
		if err := resps.Error(); err != nil {
			return fmt.Errorf("reset-offsets: commit: %w", cli.KafkaError(err, ""))
		}
	}
	if out.JSON {
		return writeJSON(w, struct {
			Group    string        `json:"group"`
			Executed bool          `json:"executed"`
			Offsets  []ResetOffset `json:"offsets"`
		}{r.group, r.execute, plan})
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCURRENT-OFFSET\tNEW-OFFSET")
	for _, p := range plan {
		cur := strconv.FormatInt(p.Current, 10)
		if p.Current < 0 {
			cur = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", p.Topic, p.Partition, cur, p.New)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.execute {
		fmt.Fprintf(w, "Committed the new offsets for group %s.\n", r.group)
	} else {
		fmt.Fprintln(w, "Dry run: nothing committed. Add --execute to commit these offsets.")
	}
	return nil
}

func sortResets(p []ResetOffset) {
	slices.SortFunc(p, func(a, b ResetOffset) int { return cmp.Compare(a.Partition, b.Partition) })
}

func deleteGroups(ctx context.Context, adm *kadm.Client, w io.Writer, out cli.Output, groups []string) error {
	resps, err := adm.DeleteGroups(ctx, groups...)
	if err != nil {
		return fmt.Errorf("delete groups: %w", err)
	}
	type deleted struct {
		Group string `json:"group"`
		Error string `json:"error,omitempty"`
	}
	var rows []deleted
	var failed []error
	for _, r := range resps.Sorted() {
		d := deleted{Group: r.Group}
		if r.Err != nil {
			d.Error = cli.KafkaError(r.Err, "").Error()
			failed = append(failed, fmt.Errorf("delete group %s: %w", r.Group, cli.KafkaError(r.Err, "")))
		}
		rows = append(rows, d)
	}
	if out.JSON {
		if err := writeJSON(w, rows); err != nil {
			return err
		}
	} else {
		// Failures are not printed here: the returned error says them once.
		for _, r := range rows {
			if r.Error == "" {
				fmt.Fprintf(w, "Deleted group %s.\n", r.Group)
			}
		}
	}
	if len(failed) > 0 {
		return errors.Join(failed...)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
