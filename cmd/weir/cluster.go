package main

import (
	"context"
	"fmt"

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

	var topic string
	var partition int32
	var unclean bool
	electCmd := &cobra.Command{
		Use:   "elect-leaders",
		Short: "Move leaderships back to preferred replicas (the first of each assignment) that are in sync, or with --unclean elect any live replica of leaderless partitions",
		Long: "Asks the controller (ElectLeaders) to elect leaders: by default each partition's preferred replica, where it is an in-sync replica\n" +
			"and does not lead already; with --unclean, a live replica of each partition that has no leader, outside its in-sync replicas if\n" +
			"none of them is up (the records that replica lacks are lost). Without --topic every partition of the cluster; with --topic and no\n" +
			"--partition every partition of that topic. The controller also moves leaderships back by itself every --leader-rebalance-interval.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if c.Flags().Changed("partition") && topic == "" {
				return fmt.Errorf("--partition %d needs --topic", partition)
			}
			return cf.client(c, func(ctx context.Context, cl *kgo.Client) error {
				return cli.ElectLeaders(ctx, cl, c.OutOrStdout(), out, topic, partition, unclean)
			})
		},
	}
	electCmd.Flags().StringVar(&topic, "topic", "", "only this topic (default: every partition of the cluster)")
	electCmd.Flags().Int32Var(&partition, "partition", -1, "only this partition of --topic (default: all of them)")
	electCmd.Flags().BoolVar(&unclean, "unclean", false, "unclean election: a leaderless partition gets any live replica, losing what it lacks")
	cmd.AddCommand(electCmd)
	return cmd
}
