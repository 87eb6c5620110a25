package main

import (
	"context"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/internal/cli"
)

func init() { subcommands = append(subcommands, newClusterCmd) }

func newClusterCmd() *cobra.Command {
	var cf clientFlags
	var out cli.Output
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Inspect a Weir cluster: its metadata quorum, brokers and controller",
	}
	cf.register(cmd)
	cmd.PersistentFlags().BoolVar(&out.JSON, "json", false, "print JSON for scripts instead of text")

	describeCmd := &cobra.Command{
		Use:   "describe",
		Short: "Show every node: voter, broker address, fenced, controller, and its raft leader, term, commit and applied offsets",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return cf.client(c, func(ctx context.Context, cl *kgo.Client) error {
				return cli.DescribeCluster(ctx, cl, c.OutOrStdout(), out)
			})
		},
	}
	cmd.AddCommand(describeCmd)
	return cmd
}
