package main

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/internal/cli"
)

func init() { subcommands = append(subcommands, newConsumeCmd) }

func newConsumeCmd() *cobra.Command {
	var (
		cf     clientFlags
		opts   cli.ConsumeOptions
		from   string
		format string
		asJSON bool
		iso    string
	)
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Print the records of a topic",
		Long: `Print the records of TOPIC, one per line, until --count records, the end
(--until-end), or Ctrl-C. No consumer group is joined and no offsets are
committed.

--from: beginning | end | N (offset) | -N (N before the end) |
        ts:T (T = Unix ms, RFC 3339 time, or duration back from now: ts:-15m)

--format verbs: %t topic, %p partition, %o offset, %T timestamp (Unix ms),
%k key, %v value, %K / %S key / value length (-1 if null), %h headers
(k=v,...), %% percent; escapes \n \t \r \\ \0.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opts.Topic = args[0]
			start, err := cli.ParseStart(from, time.Now)
			if err != nil {
				return err
			}
			opts.From = start
			opts.ResolveTimeout = cf.timeout
			if opts.Count < 0 {
				return fmt.Errorf("--count %d: want 0 (no limit) or more", opts.Count)
			}
			switch {
			case asJSON && format != "":
				return errors.New("--json and --format exclude each other")
			case asJSON:
				opts.Format = cli.FormatJSON{}
			case format != "":
				if opts.Format, err = cli.ParseFormat(format); err != nil {
					return err
				}
			}
			switch iso {
			case "read_uncommitted":
			case "read_committed":
				opts.ReadCommitted = true
			default:
				return fmt.Errorf("--isolation %q: want read_uncommitted or read_committed", iso)
			}
			ctx, stop := signalContext(c)
			defer stop()
			probe, err := cf.newClient()
			if err != nil {
				return err
			}
			err = cf.reach(ctx, probe)
			probe.Close()
			if err != nil {
				return err
			}
			var n atomic.Int64
			opts.Consumed = &n
			_, stopProgress := cli.TerminalProgress(c.ErrOrStderr(), "consumed", &n)
			_, err = cli.Consume(ctx, func(o ...kgo.Opt) (*kgo.Client, error) { return cf.newClient(o...) }, c.OutOrStdout(), opts)
			stopProgress()
			return err
		},
	}
	cf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&from, "from", "beginning", "where to start in each partition (see above)")
	f.Int32SliceVarP(&opts.Partitions, "partition", "p", nil, "read only these partitions (repeatable or comma-separated; default all)")
	f.IntVarP(&opts.Count, "count", "n", 0, "stop after this many records (0: no limit)")
	f.BoolVarP(&opts.UntilEnd, "until-end", "e", false, "stop at the end offsets the partitions had at start")
	f.StringVarP(&format, "format", "f", "", `output template, e.g. '%k\t%v\n' (default: one readable line per record)`)
	f.StringVar(&iso, "isolation", "read_uncommitted", "read_committed: only records of committed transactions, up to the last stable offset")
	f.BoolVar(&asJSON, "json", false, "print one JSON object per record (key/value as strings, or *_base64 when not UTF-8)")
	return cmd
}
