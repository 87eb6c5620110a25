package main

import (
	"context"
	"fmt"

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
	var reReplicas string
	reassignCmd := &cobra.Command{
		Use:   "reassign TOPIC --partition P --replicas 1,2,3",
		Short: "Move a partition to other brokers (cluster mode): the new replicas catch up, then the removed ones drop their copies",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if !c.Flags().Changed("partition") || reReplicas == "" {
				return fmt.Errorf("reassign %s: --partition and --replicas are required", args[0])
			}
			replicas, err := cli.ParseReplicas(reReplicas)
			if err != nil {
				return err
			}
			return run(c, func(ctx context.Context, adm *kadm.Client) error {
				return cli.Reassign(ctx, adm, c.OutOrStdout(), out, args[0], rePartition, replicas)
			})
		},
	}
	reassignCmd.Flags().Int32Var(&rePartition, "partition", 0, "the partition to move")
	reassignCmd.Flags().StringVar(&reReplicas, "replicas", "", "the new replicas, comma-separated broker ids, the preferred leader first")

	cmd.AddCommand(createCmd, listCmd, describeCmd, alterCmd, deleteCmd, reassignCmd)
	return cmd
}
