// Command weir is Weir's binary: the broker, and admin and data commands that
// speak the Kafka protocol to any Kafka-compatible cluster. It stays thin:
// every command delegates to a package.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// subcommands is filled by each command file's init, so that files for
// different command groups do not have to touch one list.
var subcommands []func() *cobra.Command

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "weir",
		Short:         "Weir: stream processing for Go with a built-in Kafka-compatible log",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, sub := range subcommands {
		root.AddCommand(sub())
	}
	refuseUnknownSubcommands(root)
	return root
}

// refuseUnknownSubcommands makes every command that only groups others
// (weir, weir topic, weir group) fail on a word that names none of them:
// cobra's default prints help and exits 0 for `weir topic creat x`, which a
// script would take for success. Without arguments such a command prints its
// help, as before.
func refuseUnknownSubcommands(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		refuseUnknownSubcommands(sub)
	}
	if !cmd.HasSubCommands() || cmd.Runnable() {
		return
	}
	cmd.Args = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		hint := ""
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			hint = fmt.Sprintf("did you mean %q? ", s[0])
		}
		return fmt.Errorf("weir: unknown command %q for %q (%s`%s --help` lists them)", args[0], c.CommandPath(), hint, c.CommandPath())
	}
	cmd.SuggestionsMinimumDistance = 2
	cmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
}

// printError writes err to w, one "weir: " line per line of its text (an
// error joining several failures has one line for each), without repeating
// the prefix when a line already starts with it.
func printError(w io.Writer, err error) {
	for _, line := range strings.Split(strings.TrimRight(err.Error(), "\n"), "\n") {
		if !strings.HasPrefix(line, "weir: ") {
			line = "weir: " + line
		}
		fmt.Fprintln(w, line)
	}
}

func main() {
	if err := newRootCmd().Execute(); err != nil {
		printError(os.Stderr, err)
		os.Exit(1)
	}
}
