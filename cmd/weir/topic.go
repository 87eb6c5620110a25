package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/weir-dev/weir/internal/cli"
)

func init() { subcommands = append(subcommands, newTopicCmd) }

func newTopicCmd() *cobra.Command {
	var cf clientFlags
	var out cli.Output
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Create, list, describe, alter and delete topics on any Kafka-compatible cluster",
	}
	cf.register(cmd)
	cmd.PersistentFlags().BoolVar(&out.JSON, "json", false, "print JSON for scripts instead of text")

	run := cf.admin

	var create cli.CreateTopicsRequest
	var createConfigs []string
	createCmd := &cobra.Command{
		Use:   "create TOPIC...",
		Short: "Create topics",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			configs, err := cli.ParseConfigs(createConfigs)
			if err != nil {
				return err
			}
			create.Topics, create.Configs = args, configs
			return run(c, func(ctx context.Context, adm *kadm.Client) error {
				return cli.CreateTopics(ctx, adm, c.OutOrStdout(), out, create)
			})
		},
	}
	createCmd.Flags().Int32VarP(&create.Partitions, "partitions", "p", -1, "number of partitions (-1: the broker's default)")
	createCmd.Flags().Int16VarP(&create.ReplicationFactor, "replication-factor", "r", -1, "replicas per partition (-1: the broker's default)")
	createCmd.Flags().StringArrayVarP(&createConfigs, "config", "c", nil, "topic config key=value (repeatable), e.g. retention.ms=86400000")

	var internal bool
	listCmd := &cobra.Command{
		Use:   "list",
		Short: "List topics",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return run(c, func(ctx context.Context, adm *kadm.Client) error {
				return cli.ListTopics(ctx, adm, c.OutOrStdout(), out, internal)
			})
		},
	}
	listCmd.Flags().BoolVar(&internal, "internal", false, "include internal topics")

	var allConfigs bool
	describeCmd := &cobra.Command{
		Use:   "describe TOPIC...",
		Short: "Show partitions, leaders, replicas and configs of topics",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return run(c, func(ctx context.Context, adm *kadm.Client) error {
				return cli.DescribeTopics(ctx, adm, c.OutOrStdout(), out, allConfigs, args...)
			})
		},
	}
	describeCmd.Flags().BoolVar(&allConfigs, "all-configs", false, "show every config with its source, not only those set on the topic")

	var alter cli.AlterTopicRequest
	var alterConfigs []string
	alterCmd := &cobra.Command{
		Use:   "alter TOPIC",
		Short: "Add partitions to a topic or change its configs",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			set, err := cli.ParseConfigs(alterConfigs)
			if err != nil {
				return err
			}
			alter.Topic, alter.Set = args[0], set
			return run(c, func(ctx context.Context, adm *kadm.Client) error {
				return cli.AlterTopic(ctx, adm, c.OutOrStdout(), out, alter)
			})
		},
	}
	alterCmd.Flags().IntVarP(&alter.Partitions, "partitions", "p", 0, "new total partition count (only grows; 0: unchanged)")
	alterCmd.Flags().StringArrayVarP(&alterConfigs, "config", "c", nil, "set topic config key=value (repeatable)")
	alterCmd.Flags().StringArrayVar(&alter.Delete, "delete-config", nil, "remove a topic config, back to the broker default (repeatable)")

	deleteCmd := &cobra.Command{
		Use:   "delete TOPIC...",
		Short: "Delete topics and their data",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return run(c, func(ctx context.Context, adm *kadm.Client) error {
				return cli.DeleteTopics(ctx, adm, c.OutOrStdout(), out, args...)
			})
		},
	}

	var rePartition int32
	var reReplicas, rePlan string
	var reThrottle int64
	var reVerify bool
	reassignCmd := &cobra.Command{
		Use:   "reassign [TOPIC --partition P --replicas 1,2,3 | --plan FILE] [--throttle BYTES_PER_S] [--verify]",
		Short: "Move partitions to other brokers (cluster mode): the new replicas catch up, then the removed ones drop their copies",
		Long: `Moves one partition (TOPIC --partition P --replicas 1,2,3, the first replica
the preferred leader) or every partition of a plan in kafka-reassign-partitions'
JSON (--plan FILE: {"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,3]}]}).
It first prints the current assignment as a plan that rolls the move back.

--throttle caps the catch-up of the new replicas, cluster-wide, at that many
bytes per second (the broker config follower.replication.throttled.rate;
replication to ISR members is never throttled). --verify reports whether
each move is done and, once all are, removes the throttle.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			plan, err := reassignPlan(c, args, rePartition, reReplicas, rePlan)
			if err != nil {
				return err
			}
			if reThrottle < 0 {
				return fmt.Errorf("reassign: --throttle %d: want bytes per second, > 0", reThrottle)
			}
			if reVerify && reThrottle != 0 {
				return fmt.Errorf("reassign: --verify does not take --throttle (it removes the throttle once every move is done)")
			}
			return run(c, func(ctx context.Context, adm *kadm.Client) error {
				if reVerify {
					return cli.VerifyPlan(ctx, adm, c.OutOrStdout(), out, plan)
				}
				return cli.ReassignPlan(ctx, adm, c.OutOrStdout(), out, plan, reThrottle)
			})
		},
	}
	reassignCmd.Flags().Int32Var(&rePartition, "partition", 0, "the partition to move")
	reassignCmd.Flags().StringVar(&reReplicas, "replicas", "", "the new replicas, comma-separated broker ids, the preferred leader first")
	reassignCmd.Flags().StringVar(&rePlan, "plan", "", "a reassignment plan in kafka-reassign-partitions' JSON (instead of TOPIC --partition --replicas)")
	reassignCmd.Flags().Int64Var(&reThrottle, "throttle", 0, "cap the new replicas' catch-up at this many bytes per second, cluster-wide (0: no throttle)")
	reassignCmd.Flags().BoolVar(&reVerify, "verify", false, "report whether each move is done and, once all are, remove the throttle")

	cmd.AddCommand(createCmd, listCmd, describeCmd, alterCmd, deleteCmd, reassignCmd)
	return cmd
}

// reassignPlan reads the plan of `weir topic reassign`: the --plan file, or
// the one partition TOPIC --partition --replicas names.
func reassignPlan(c *cobra.Command, args []string, partition int32, replicas, planFile string) (cli.Plan, error) {
	if planFile != "" {
		if len(args) > 0 || c.Flags().Changed("partition") || replicas != "" {
			return cli.Plan{}, fmt.Errorf("reassign: --plan %s takes no TOPIC, --partition or --replicas", planFile)
		}
		f, err := os.Open(planFile)
		if err != nil {
			return cli.Plan{}, fmt.Errorf("reassign: %w", err)
		}
		defer f.Close()
		return cli.ParsePlan(f, planFile)
	}
	if len(args) == 0 {
		return cli.Plan{}, fmt.Errorf("reassign: give TOPIC --partition P --replicas 1,2,3, or --plan FILE")
	}
	if !c.Flags().Changed("partition") || replicas == "" {
		return cli.Plan{}, fmt.Errorf("reassign %s: --partition and --replicas are required", args[0])
	}
	rs, err := cli.ParseReplicas(replicas)
	if err != nil {
		return cli.Plan{}, err
	}
	return cli.Plan{Version: 1, Partitions: []cli.PlanPartition{{Topic: args[0], Partition: partition, Replicas: rs}}}, nil
}
