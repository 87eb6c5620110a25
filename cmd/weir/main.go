// Command weir is Weir's binary: the broker, and admin and data commands that
// speak the Kafka protocol to any Kafka-compatible cluster. It stays thin:
// every command delegates to a package.
package main

import (
	"fmt"
	"os"

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
	return root
}

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "weir:", err)
		os.Exit(1)
	}
}
