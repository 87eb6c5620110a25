package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
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

	drainCmd := &cobra.Command{
		Use:   "drain BROKER",
		Short: "Move every replica off a broker before it is removed (leadership first); follow with weir topic describe",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 32)
			if err != nil || id < 0 {
				return fmt.Errorf("drain %q: not a broker id", args[0])
			}
			return cf.client(c, func(ctx context.Context, cl *kgo.Client) error {
				return cli.Drain(ctx, kadm.NewClient(cl), c.OutOrStdout(), out, int32(id))
			})
		},
	}
	cmd.AddCommand(drainCmd)
	return cmd
}
