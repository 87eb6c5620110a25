package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/weir-dev/weir/broker"
)

func init() { subcommands = append(subcommands, newUserCmd) }

// passwordEnv is the environment variable weir user create reads the
// password from, without --password-file.
const passwordEnv = "WEIR_USER_PASSWORD"

func newUserCmd() *cobra.Command {
	var cf clientFlags
	var dataDir string
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Create, list and delete SASL/SCRAM users (through a broker, or in a stopped broker's --data-dir)",
		Long: `Create, list and delete the SCRAM-SHA-256 and SCRAM-SHA-512 users a broker
authenticates on its SASL listeners. Passwords are stored salted and hashed.

With --data-dir the command edits a stopped single-node broker's data directory
(to create the first user of a broker whose listeners all need SASL); otherwise
it goes through a running broker (--brokers) with AlterUserScramCredentials.
A password is read from --password-file or $` + passwordEnv + `, never from the
command line.`,
	}
	cf.register(cmd)
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", "", "edit this stopped broker's data directory instead of going through a broker")
	var mech, passFile string
	var iterations int
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a user, or change its password",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			pw, err := readPassword(passFile)
			if err != nil {
				return err
			}
			mech = strings.ToUpper(mech)
			if dataDir != "" {
				return broker.SetSCRAMUser(dataDir, args[0], mech, pw, iterations)
			}
			m, err := kadmMechanism(mech)
			if err != nil {
				return err
			}
			return cf.admin(c, func(ctx context.Context, adm *kadm.Client) error {
				res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: args[0], Mechanism: m, Iterations: int32(iterations), Password: pw}})
				if err != nil {
					return err
				}
				return res.Error()
			})
		},
	}
	create.Flags().StringVar(&mech, "mechanism", broker.SCRAMSHA512, "SCRAM-SHA-512 or SCRAM-SHA-256")
	create.Flags().IntVar(&iterations, "iterations", 8192, "PBKDF2 iterations, 4096 to 16384")
	create.Flags().StringVar(&passFile, "password-file", "", "read the password from this file (its first line); default $"+passwordEnv)
	cmd.AddCommand(create)

	var delMech string
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a user's credential for a mechanism",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			delMech = strings.ToUpper(delMech)
			if dataDir != "" {
				return broker.DeleteSCRAMUser(dataDir, args[0], delMech)
			}
			m, err := kadmMechanism(delMech)
			if err != nil {
				return err
			}
			return cf.admin(c, func(ctx context.Context, adm *kadm.Client) error {
				res, err := adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: args[0], Mechanism: m}}, nil)
				if err != nil {
					return err
				}
				return res.Error()
			})
		},
	}
	del.Flags().StringVar(&delMech, "mechanism", broker.SCRAMSHA512, "SCRAM-SHA-512 or SCRAM-SHA-256")
	cmd.AddCommand(del)

	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List users with their mechanisms and iterations",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if dataDir != "" {
				users, err := broker.ListSCRAMUsers(dataDir)
				if err != nil {
					return err
				}
				return printUsers(c.OutOrStdout(), users)
			}
			return cf.admin(c, func(ctx context.Context, adm *kadm.Client) error {
				res, err := adm.DescribeUserSCRAMs(ctx)
				if err != nil {
					return err
				}
				var users []broker.SCRAMUser
				for _, u := range res.Sorted() {
					if u.Err != nil {
						return fmt.Errorf("user %s: %w", u.User, u.Err)
					}
					su := broker.SCRAMUser{Name: u.User, Mechanisms: map[string]int{}}
					for _, ci := range u.CredInfos {
						su.Mechanisms[mechanismName(ci.Mechanism)] = int(ci.Iterations)
					}
					users = append(users, su)
				}
				return printUsers(c.OutOrStdout(), users)
			})
		},
	})
	return cmd
}

func kadmMechanism(m string) (kadm.ScramMechanism, error) {
	switch m {
	case broker.SCRAMSHA256:
		return kadm.ScramSha256, nil
	case broker.SCRAMSHA512:
		return kadm.ScramSha512, nil
	}
	return 0, fmt.Errorf("--mechanism %q: want SCRAM-SHA-512 or SCRAM-SHA-256", m)
}

// readPassword reads the password from file (its first line) or from
// $WEIR_USER_PASSWORD.
func readPassword(file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--password-file: %w", err)
		}
		pw, _, _ := strings.Cut(string(b), "\n")
		pw = strings.TrimRight(pw, "\r")
		if pw == "" {
			return "", fmt.Errorf("--password-file %s: the first line is empty", file)
		}
		return pw, nil
	}
	if pw := os.Getenv(passwordEnv); pw != "" {
		return pw, nil
	}
	return "", errors.New("no password: give --password-file or set $" + passwordEnv + " (never on the command line)")
}

func printUsers(w io.Writer, users []broker.SCRAMUser) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tMECHANISM\tITERATIONS")
	for _, u := range users {
		ms := make([]string, 0, len(u.Mechanisms))
		for m := range u.Mechanisms {
			ms = append(ms, m)
		}
		sort.Strings(ms)
		for _, m := range ms {
			fmt.Fprintf(tw, "%s\t%s\t%d\n", u.Name, m, u.Mechanisms[m])
		}
	}
	return tw.Flush()
}

func mechanismName(m kadm.ScramMechanism) string {
	switch m {
	case kadm.ScramSha256:
		return broker.SCRAMSHA256
	case kadm.ScramSha512:
		return broker.SCRAMSHA512
	}
	return fmt.Sprintf("unknown(%d)", m)
}
