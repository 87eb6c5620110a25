// Command bench runs Weir's end-to-end benchmarks: franz-go clients against
// a Weir broker and, in the same run, against a peer (franz-go's in-memory
// kfake cluster), printing both and their ratio. See bench/README.md.
//
//	go run ./bench log        # produce, consume and latency: Weir vs kfake
//
// Each workload lives in its own file and registers its subcommand in init.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// workloads is filled by each workload file's init.
var workloads []func() *cobra.Command

func main() {
	root := &cobra.Command{
		Use:           "bench",
		Short:         "Weir's end-to-end benchmarks, each run beside a peer",
		SilenceUsage:  true,
		SilenceErrors: true,
		// A workload's --profile-dir and --trace-dir are made if they do
		// not exist yet.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			for _, name := range []string{"profile-dir", "trace-dir"} {
				f := cmd.Flags().Lookup(name)
				if f == nil || f.Value.String() == "" {
					continue
				}
				if err := os.MkdirAll(f.Value.String(), 0o755); err != nil {
					return fmt.Errorf("--%s: %w", name, err)
				}
			}
			return nil
		},
	}
	for _, w := range workloads {
		root.AddCommand(w())
	}
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
