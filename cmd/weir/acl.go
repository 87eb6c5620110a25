package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker"
)

func init() { subcommands = append(subcommands, newACLCmd) }

// aclFlags are the flags naming ACLs, as Kafka's kafka-acls names them.
type aclFlags struct {
	principal string
	host      string
	ops       []string
	deny      bool
	topic     string
	group     string
	txnID     string
	cluster   bool
	pattern   string
}

func (f *aclFlags) register(cmd *cobra.Command, forAdd bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.principal, "principal", "", "the principal, e.g. User:alice (User:* for everyone)")
	fl.StringVar(&f.host, "host", "", "the host the principal connects from (default for add: * for every host)")
	fl.StringSliceVar(&f.ops, "operation", nil, "operations: read, write, create, delete, alter, describe, cluster_action, describe_configs, alter_configs, idempotent_write, all (repeatable or comma-separated)")
	fl.BoolVar(&f.deny, "deny", false, "a DENY binding (default ALLOW)")
	fl.StringVar(&f.topic, "topic", "", "a topic resource (with --pattern prefixed: a name prefix; * for every topic)")
	fl.StringVar(&f.group, "group", "", "a consumer group resource")
	fl.StringVar(&f.txnID, "transactional-id", "", "a transactional id resource")
	fl.BoolVar(&f.cluster, "cluster", false, "the cluster resource")
	def := "literal"
	if !forAdd {
		def = "any"
	}
	fl.StringVar(&f.pattern, "pattern", def, "literal or prefixed (list and remove also: any, match)")
}

// resource returns the one resource named by the flags, or ANY when none
// is and any is allowed.
func (f *aclFlags) resource(anyOK bool) (kmsg.ACLResourceType, *string, error) {
	type res struct {
		rt   kmsg.ACLResourceType
		name string
	}
	var rs []res
	if f.topic != "" {
		rs = append(rs, res{kmsg.ACLResourceTypeTopic, f.topic})
	}
	if f.group != "" {
		rs = append(rs, res{kmsg.ACLResourceTypeGroup, f.group})
	}
	if f.txnID != "" {
		rs = append(rs, res{kmsg.ACLResourceTypeTransactionalId, f.txnID})
	}
	if f.cluster {
		rs = append(rs, res{kmsg.ACLResourceTypeCluster, "kafka-cluster"})
	}
	switch {
	case len(rs) > 1:
		return 0, nil, errors.New("name one resource: --topic, --group, --transactional-id or --cluster")
	case len(rs) == 0 && anyOK:
		return kmsg.ACLResourceTypeAny, nil, nil
	case len(rs) == 0:
		return 0, nil, errors.New("name a resource: --topic, --group, --transactional-id or --cluster")
	}
	return rs[0].rt, &rs[0].name, nil
}

// bindings returns the ACLs weir acl add creates: one per operation.
func (f *aclFlags) bindings() ([]broker.ACL, error) {
	rt, name, err := f.resource(false)
	if err != nil {
		return nil, err
	}
	if f.principal == "" {
		return nil, errors.New("--principal is required, e.g. User:alice")
	}
	if len(f.ops) == 0 {
		return nil, errors.New("--operation is required, e.g. --operation read")
	}
	pt, err := kmsg.ParseACLResourcePatternType(f.pattern)
	if err != nil {
		return nil, fmt.Errorf("--pattern %q: want literal or prefixed", f.pattern)
	}
	host := f.host
	if host == "" {
		host = "*"
	}
	perm := kmsg.ACLPermissionTypeAllow
	if f.deny {
		perm = kmsg.ACLPermissionTypeDeny
	}
	var out []broker.ACL
	for _, o := range f.ops {
		op, err := kmsg.ParseACLOperation(o)
		if err != nil {
			return nil, fmt.Errorf("--operation %q: not an operation", o)
		}
		a := broker.ACL{ResourceType: rt, ResourceName: *name, PatternType: pt, Principal: f.principal, Host: host, Operation: op, Permission: perm}
		if err := a.Validate(); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// filter returns the filter weir acl list and remove select with.
func (f *aclFlags) filter() (broker.ACLFilter, error) {
	flt := broker.MatchAnyACL()
	rt, name, err := f.resource(true)
	if err != nil {
		return flt, err
	}
	flt.ResourceType, flt.ResourceName = rt, name
	if flt.PatternType, err = kmsg.ParseACLResourcePatternType(f.pattern); err != nil {
		return flt, fmt.Errorf("--pattern %q: want any, match, literal or prefixed", f.pattern)
	}
	if f.principal != "" {
		flt.Principal = &f.principal
	}
	if f.host != "" {
		flt.Host = &f.host
	}
	if len(f.ops) > 1 {
		return flt, errors.New("list and remove take at most one --operation")
	}
	if len(f.ops) == 1 {
		if flt.Operation, err = kmsg.ParseACLOperation(f.ops[0]); err != nil {
			return flt, fmt.Errorf("--operation %q: not an operation", f.ops[0])
		}
	}
	if f.deny {
		flt.Permission = kmsg.ACLPermissionTypeDeny
	}
	return flt, flt.Validate()
}

func newACLCmd() *cobra.Command {
	var cf clientFlags
	var dataDir string
	cmd := &cobra.Command{
		Use:   "acl",
		Short: "Add, list and remove ACLs (through a broker, or in a stopped broker's --data-dir)",
		Long: `Add, list and remove the ACLs a broker started with --authorizer checks
every request against, with Kafka's model: a principal (User:name) from a host
may (or, with --deny, may not) perform operations on a topic, group,
transactional id or the cluster, named literally or by prefix.

With --data-dir the command edits a stopped single-node broker's data directory;
otherwise it goes through a running broker (--brokers) with CreateAcls,
DescribeAcls and DeleteAcls.`,
	}
	cf.register(cmd)
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", "", "edit this stopped broker's data directory instead of going through a broker")

	var add aclFlags
	addCmd := &cobra.Command{
		Use:   "add --principal P --operation OP (--topic T|--group G|--transactional-id ID|--cluster) [--pattern prefixed] [--deny] [--host H]",
		Short: "Add ACLs: one per operation",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			acls, err := add.bindings()
			if err != nil {
				return err
			}
			if dataDir != "" {
				return broker.AddACLs(dataDir, acls)
			}
			return cf.client(c, func(ctx context.Context, cl *kgo.Client) error {
				req := kmsg.NewPtrCreateACLsRequest()
				for _, a := range acls {
					cr := kmsg.NewCreateACLsRequestCreation()
					cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = a.ResourceType, a.ResourceName, a.PatternType
					cr.Principal, cr.Host, cr.Operation, cr.PermissionType = a.Principal, a.Host, a.Operation, a.Permission
					req.Creations = append(req.Creations, cr)
				}
				resp, err := req.RequestWith(ctx, cl)
				if err != nil {
					return err
				}
				var errs []error
				for i, r := range resp.Results {
					if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
						errs = append(errs, fmt.Errorf("%s: %w%s", acls[i], err, msgSuffix(r.ErrorMessage)))
					}
				}
				return errors.Join(errs...)
			})
		},
	}
	add.register(addCmd, true)
	cmd.AddCommand(addCmd)

	var list aclFlags
	listCmd := &cobra.Command{
		Use:   "list [--principal P] [--topic T|--group G|--transactional-id ID|--cluster] [--pattern match]",
		Short: "List ACLs (all, or those the flags select)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			f, err := list.filter()
			if err != nil {
				return err
			}
			if dataDir != "" {
				acls, err := broker.ListACLs(dataDir, f)
				if err != nil {
					return err
				}
				return printACLs(c.OutOrStdout(), acls)
			}
			return cf.client(c, func(ctx context.Context, cl *kgo.Client) error {
				req := kmsg.NewPtrDescribeACLsRequest()
				req.ResourceType, req.ResourceName, req.ResourcePatternType = f.ResourceType, f.ResourceName, f.PatternType
				req.Principal, req.Host, req.Operation, req.PermissionType = f.Principal, f.Host, f.Operation, f.Permission
				resp, err := req.RequestWith(ctx, cl)
				if err != nil {
					return err
				}
				if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
					return fmt.Errorf("%w%s", err, msgSuffix(resp.ErrorMessage))
				}
				var acls []broker.ACL
				for _, r := range resp.Resources {
					for _, a := range r.ACLs {
						acls = append(acls, broker.ACL{ResourceType: r.ResourceType, ResourceName: r.ResourceName, PatternType: r.ResourcePatternType,
							Principal: a.Principal, Host: a.Host, Operation: a.Operation, Permission: a.PermissionType})
					}
				}
				return printACLs(c.OutOrStdout(), acls)
			})
		},
	}
	list.register(listCmd, false)
	cmd.AddCommand(listCmd)

	var rm aclFlags
	rmCmd := &cobra.Command{
		Use:   "remove [--principal P] [--topic T|--group G|--transactional-id ID|--cluster] [--operation OP]",
		Short: "Remove the ACLs the flags select, and print them",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			f, err := rm.filter()
			if err != nil {
				return err
			}
			if f.Principal == nil && f.ResourceName == nil && f.ResourceType == kmsg.ACLResourceTypeAny {
				return errors.New("name a --principal or a resource: remove does not delete every ACL at once")
			}
			if dataDir != "" {
				acls, err := broker.DeleteACLs(dataDir, f)
				if err != nil {
					return err
				}
				return printACLs(c.OutOrStdout(), acls)
			}
			return cf.client(c, func(ctx context.Context, cl *kgo.Client) error {
				req := kmsg.NewPtrDeleteACLsRequest()
				df := kmsg.NewDeleteACLsRequestFilter()
				df.ResourceType, df.ResourceName, df.ResourcePatternType = f.ResourceType, f.ResourceName, f.PatternType
				df.Principal, df.Host, df.Operation, df.PermissionType = f.Principal, f.Host, f.Operation, f.Permission
				req.Filters = append(req.Filters, df)
				resp, err := req.RequestWith(ctx, cl)
				if err != nil {
					return err
				}
				r := resp.Results[0]
				if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
					return fmt.Errorf("%w%s", err, msgSuffix(r.ErrorMessage))
				}
				var acls []broker.ACL
				for _, a := range r.MatchingACLs {
					acls = append(acls, broker.ACL{ResourceType: a.ResourceType, ResourceName: a.ResourceName, PatternType: a.ResourcePatternType,
						Principal: a.Principal, Host: a.Host, Operation: a.Operation, Permission: a.PermissionType})
				}
				return printACLs(c.OutOrStdout(), acls)
			})
		},
	}
	rm.register(rmCmd, false)
	cmd.AddCommand(rmCmd)
	return cmd
}

func msgSuffix(m *string) string {
	if m == nil || *m == "" {
		return ""
	}
	return ": " + *m
}

func printACLs(w io.Writer, acls []broker.ACL) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PRINCIPAL\tHOST\tPERMISSION\tOPERATION\tRESOURCE\tPATTERN\tNAME")
	for _, a := range acls {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Principal, a.Host, a.Permission, strings.ToUpper(a.Operation.String()),
			a.ResourceType, a.PatternType, a.ResourceName)
	}
	return tw.Flush()
}
