package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/weir-dev/weir/internal/cli"
)

func init() { subcommands = append(subcommands, newTransactionCmd) }

func newTransactionCmd() *cobra.Command {
	var cf clientFlags
	var out cli.Output
	cmd := &cobra.Command{
		Use:   "transaction",
		Short: "List and describe the transactional producers of any Kafka-compatible cluster",
	}
	cf.register(cmd)
	cmd.PersistentFlags().BoolVar(&out.JSON, "json", false, "print JSON for scripts instead of text")
	run := cf.admin
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List transactional ids with their producer id and transaction state",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return run(c, func(ctx context.Context, adm *kadm.Client) error {
				return listTransactions(ctx, adm, c.OutOrStdout(), out)
			})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "describe TRANSACTIONAL-ID...",
		Short: "Show a transactional id's state, producer id and epoch, timeout, start and partitions",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return run(c, func(ctx context.Context, adm *kadm.Client) error {
				return describeTransactions(ctx, adm, c.OutOrStdout(), out, args)
			})
		},
	})
	return cmd
}

// ListedTransaction is one row of `weir transaction list`.
type ListedTransaction struct {
	TransactionalID string `json:"transactional_id"`
	ProducerID      int64  `json:"producer_id"`
	State           string `json:"state"`
}

func listTransactions(ctx context.Context, adm *kadm.Client, w io.Writer, out cli.Output) error {
	ts, err := adm.ListTransactions(ctx, nil, nil)
	if err != nil {
		return fmt.Errorf("list transactions: %w", err)
	}
	rows := []ListedTransaction{}
	for _, t := range ts.Sorted() {
		rows = append(rows, ListedTransaction{TransactionalID: t.TxnID, ProducerID: t.ProducerID, State: t.State})
	}
	if out.JSON {
		return writeJSON(w, rows)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TRANSACTIONAL-ID\tPRODUCER-ID\tSTATE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", r.TransactionalID, r.ProducerID, r.State)
	}
	return tw.Flush()
}

// DescribedTransaction is `weir transaction describe` output for one id.
type DescribedTransaction struct {
	TransactionalID string   `json:"transactional_id"`
	State           string   `json:"state"`
	ProducerID      int64    `json:"producer_id"`
	ProducerEpoch   int16    `json:"producer_epoch"`
	TimeoutMillis   int32    `json:"timeout_ms"`
	Start           string   `json:"start,omitempty"`
	Partitions      []string `json:"partitions"`
	Error           string   `json:"error,omitempty"`
}

func describeTransactions(ctx context.Context, adm *kadm.Client, w io.Writer, out cli.Output, ids []string) error {
	ds, err := adm.DescribeTransactions(ctx, ids...)
	if err != nil {
		return fmt.Errorf("describe transactions: %w", err)
	}
	var rows []DescribedTransaction
	for _, id := range ids {
		d, ok := ds[id]
		row := DescribedTransaction{TransactionalID: id, Partitions: []string{}}
		switch {
		case !ok:
			row.Error = "not described by the cluster"
		case d.Err != nil:
			row.Error = d.Err.Error()
		default:
			row.State, row.ProducerID, row.ProducerEpoch, row.TimeoutMillis = d.State, d.ProducerID, d.ProducerEpoch, d.TimeoutMillis
			if d.StartTimestamp >= 0 {
				row.Start = time.UnixMilli(d.StartTimestamp).UTC().Format(time.RFC3339Nano)
			}
			for _, tp := range d.Topics.Sorted() {
				for _, p := range tp.Partitions {
					row.Partitions = append(row.Partitions, fmt.Sprintf("%s/%d", tp.Topic, p))
				}
			}
			slices.Sort(row.Partitions)
		}
		rows = append(rows, row)
	}
	if out.JSON {
		return writeJSON(w, rows)
	}
	var errs []string
	for i, r := range rows {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if r.Error != "" {
			fmt.Fprintf(w, "%s: %s\n", r.TransactionalID, r.Error)
			errs = append(errs, r.TransactionalID)
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "transactional id\t%s\n", r.TransactionalID)
		fmt.Fprintf(tw, "state\t%s\n", r.State)
		fmt.Fprintf(tw, "producer\tid %d, epoch %d\n", r.ProducerID, r.ProducerEpoch)
		fmt.Fprintf(tw, "timeout\t%v\n", time.Duration(r.TimeoutMillis)*time.Millisecond)
		if r.Start != "" {
			fmt.Fprintf(tw, "started\t%s\n", r.Start)
		}
		fmt.Fprintf(tw, "partitions\t%s\n", strings.Join(r.Partitions, " "))
		tw.Flush()
	}
	if len(errs) > 0 {
		return fmt.Errorf("could not describe %s", strings.Join(errs, ", "))
	}
	return nil
}
