package main

import (
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/internal/cli"
)

func init() { subcommands = append(subcommands, newProduceCmd) }

func newProduceCmd() *cobra.Command {
	var (
		cf          clientFlags
		out         cli.Output
		opts        cli.ProduceOptions
		headers     []string
		acks        string
		compression string
		keySep      string
	)
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Send each line of standard input as one record",
		Long: `Send each line of standard input as one record to TOPIC and print a
summary when the input ends. The first record the cluster refuses stops the
run. A missing topic is created if the broker auto-creates topics. With --key-separator, the text before the
first separator is the key. Records with a key go to the partition Kafka's
default partitioner picks (murmur2), so the same key lands where the Java
client and franz-go would put it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) (err error) {
			opts.Topic = args[0]
			if opts.KeySeparator, err = cli.Unescape(keySep); err != nil {
				return fmt.Errorf("--key-separator: %w", err)
			}
			hs, err := parseHeaders(headers)
			if err != nil {
				return err
			}
			opts.Headers = hs
			kopts, err := producerOpts(acks, compression, opts.Partition, cf)
			if err != nil {
				return err
			}
			ctx, stop := signalContext(c)
			defer stop()
			cl, err := cf.newClient(kopts...)
			if err != nil {
				return err
			}
			defer cl.Close()
			if err := cf.reach(ctx, cl); err != nil {
				return err
			}
			var n atomic.Int64
			opts.Count = &n
			_, stopProgress := cli.TerminalProgress(c.ErrOrStderr(), "produced", &n)
			_, err = cli.Produce(ctx, cl, c.InOrStdin(), c.OutOrStdout(), out, opts)
			stopProgress()
			return err
		},
	}
	cf.register(cmd)
	f := cmd.Flags()
	f.BoolVar(&out.JSON, "json", false, "print the summary as JSON")
	f.StringVarP(&keySep, "key-separator", "k", "", `split each line at the first occurrence into key and value; escapes \t \n \\ work (default: no keys)`)
	f.StringArrayVarP(&headers, "header", "H", nil, "add header key=value to every record (repeatable)")
	f.StringVar(&acks, "acks", "all", "acknowledgements to wait for: all, 1 or 0 (all is idempotent)")
	f.Int32VarP(&opts.Partition, "partition", "p", -1, "send every record to this partition (-1: Kafka's default partitioner)")
	f.StringVar(&compression, "compression", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	return cmd
}

// parseHeaders turns repeated --header key=value flags into record headers,
// keeping order and repeats.
func parseHeaders(kvs []string) ([]kgo.RecordHeader, error) {
	var hs []kgo.RecordHeader
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--header %q: want key=value", kv)
		}
		hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	return hs, nil
}

// producerOpts turns the produce flags into franz-go options.
func producerOpts(acks, compression string, partition int32, cf clientFlags) ([]kgo.Opt, error) {
	// Ask for auto-creation as Kafka's Java producer and kcat do; the broker
	// decides (Weir: --auto-create, Kafka: auto.create.topics.enable).
	opts := []kgo.Opt{kgo.RecordDeliveryTimeout(cf.timeout), kgo.AllowAutoTopicCreation()}
	switch acks {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return nil, fmt.Errorf("--acks %q: want all, 1 or 0", acks)
	}
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	codec, ok := codecs[compression]
	if !ok {
		return nil, fmt.Errorf("--compression %q: want none, gzip, snappy, lz4 or zstd", compression)
	}
	opts = append(opts, kgo.ProducerBatchCompression(codec))
	if partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	} else {
		// Kafka's default: murmur2 of the key, sticky batches for null keys.
		opts = append(opts, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	}
	return opts, nil
}
