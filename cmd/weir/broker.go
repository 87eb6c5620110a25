package main

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/weir-dev/weir/broker"
)

func init() { subcommands = append(subcommands, newBrokerCmd) }

func newBrokerCmd() *cobra.Command {
	var (
		opts       broker.Options
		fsync      string
		autoCreate bool
		topicCfgs  []string
		configFile string
		logLevel   string
		logFormat  string
		listeners  []string
		advListen  []string
		cpuProfile string
	)
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run a Weir broker: a durable log served over the Kafka protocol",
		Long: `Run a Weir broker: a durable, partitioned log that Kafka clients (franz-go,
librdkafka/kcat, kafka-python, ...) talk to unchanged.

With no flags it listens on 127.0.0.1:9092 and keeps its data in ./weir-data.
--config names a file of "flag = value" lines (the flag names below, without
dashes; '#' starts a comment); flags given on the command line win.
SIGINT or SIGTERM stops it gracefully: in-flight requests finish and every
log is synced and closed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configFile != "" {
				if err := applyConfigFile(cmd.Flags(), configFile); err != nil {
					return err
				}
			}
			if err := checkZeroFlags(cmd.Flags()); err != nil {
				return err
			}
			logger, err := newLogger(logLevel, logFormat)
			if err != nil {
				return err
			}
			if f := cmd.Flags().Lookup("group-initial-rebalance-delay"); f.Changed && opts.GroupInitialRebalanceDelay == 0 {
				opts.GroupInitialRebalanceDelay = -1 // 0 in Options would mean the 3s default
			}
			opts.Logger = logger
			if err := applyListeners(cmd.Flags(), &opts, listeners, advListen); err != nil {
				return err
			}
			opts.Fsync = broker.FsyncPolicy(fsync)
			opts.DisableAutoCreateTopics = !autoCreate
			opts.TopicDefaults = map[string]string{}
			for _, kv := range topicCfgs {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("--topic-config %q: want name=value", kv)
				}
				opts.TopicDefaults[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if cpuProfile != "" {
				stopProfile, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stopProfile()
			}
			return broker.ListenAndServe(ctx, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Listen, "listen", "127.0.0.1:9092", "TCP address to listen on")
	f.StringVar(&opts.AdvertisedAddr, "advertised-addr", "", "host:port clients are told to connect to (default: the listen address)")
	f.StringVar(&opts.DataDir, "data-dir", "weir-data", "directory for topics and logs")
	f.Int32Var(&opts.NodeID, "node-id", 0, "this broker's node id")
	f.StringVar(&fsync, "fsync", "group", "durability: group (fsync before acking, shared by concurrent producers), interval, never")
	f.DurationVar(&opts.FsyncInterval, "fsync-interval", 0, "fsync period with --fsync interval (default 1s)")
	f.BoolVar(&autoCreate, "auto-create", true, "create unknown topics named by Metadata and Produce requests")
	f.Int32Var(&opts.DefaultPartitions, "default-partitions", 1, "partitions of auto-created topics")
	f.Int32Var(&opts.MaxPartitionsPerTopic, "max-partitions-per-topic", broker.DefaultMaxPartitionsPerTopic, "most partitions one topic may have")
	f.Int32Var(&opts.MaxPartitionsPerBroker, "max-partitions-per-broker", broker.DefaultMaxPartitionsPerBroker, "most partitions all topics together may have")
	f.StringArrayVar(&topicCfgs, "topic-config", nil, "broker-wide default for a topic config, name=value (repeatable), e.g. retention.ms=86400000")
	f.Int32Var(&opts.MaxFrameBytes, "max-frame-bytes", 100<<20, "largest request accepted")
	f.DurationVar(&opts.FrameReadTimeout, "frame-read-timeout", 30*time.Second, "how long a request may take to arrive from its first byte before its connection is closed (negative: no bound)")
	f.DurationVar(&opts.ConnectionsMaxIdle, "connections-max-idle", 10*time.Minute, "close a connection with no traffic and no request in hand for this long (negative: never)")
	f.IntVar(&opts.MaxConnections, "max-connections", 0, "most client connections served at once (default: 3/4 of the open-file limit; negative: no limit)")
	f.IntVar(&opts.MaxConnectionsPerIP, "max-connections-per-ip", 0, "most client connections served at once from one IP address (0: no limit)")
	f.DurationVar(&opts.GroupInitialRebalanceDelay, "group-initial-rebalance-delay", 3*time.Second, "how long an empty consumer group's first rebalance waits for more members (0 or negative: no wait)")
	f.DurationVar(&opts.GroupMinSessionTimeout, "group-min-session-timeout", 6*time.Second, "shortest session timeout a consumer group member may ask for")
	f.DurationVar(&opts.GroupMaxSessionTimeout, "group-max-session-timeout", 30*time.Minute, "longest session timeout a consumer group member may ask for")
	f.DurationVar(&opts.OffsetsRetention, "offsets-retention", 7*24*time.Hour, "how long committed offsets of a group that stays empty are kept")
	f.Int32Var(&opts.OffsetsTopicPartitions, "offsets-topic-partitions", 50, "partitions of __consumer_offsets when it is created")
	f.Int16Var(&opts.OffsetsTopicReplicationFactor, "offsets-topic-replication-factor", 3, "in a cluster, the replication factor __consumer_offsets is created with, capped at the brokers registered then (offsets.topic.replication.factor)")
	f.StringVar(&opts.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics over HTTP on this address at /metrics, e.g. 127.0.0.1:9644 (default: off)")
	f.StringVar(&opts.ControllerVoters, "controller-voters", "", "run as a node of a cluster: the controller voters as id@host:port,... (the same on every node; --node-id must be one of them; default: a single-node broker)")
	f.BoolVar(&opts.RejoinQuorum, "rejoin", false, "bring this controller voter back after its raft storage (DATA_DIR/metadata-raft) was lost or moved away: the other voters remove it and add it back, and it catches up from them (needs a majority of them up)")
	f.DurationVar(&opts.ReplicaLagTime, "replica-lag-time", 10*time.Second, "in a cluster, a follower not caught up with its leader for this long leaves the partition's in-sync replicas (replica.lag.time.max.ms)")
	f.DurationVar(&opts.LeaderRebalanceInterval, "leader-rebalance-interval", 30*time.Second, "in a cluster, how often the controller moves leaderships back to preferred replicas (the first of each assignment) that are in sync again (negative: never; weir cluster elect-leaders moves them on demand)")
	f.DurationVar(&opts.BrokerSessionTimeout, "broker-session-timeout", 9*time.Second, "in a cluster, a broker whose heartbeats stop for this long is fenced and its partitions get new leaders (broker.session.timeout.ms)")
	f.StringVar(&opts.Roles, "roles", "", "this node's roles in a cluster: broker, controller, or broker,controller (default with --controller-voters: broker,controller)")
	f.StringArrayVar(&listeners, "listener", nil, "a listener NAME=PROTOCOL://host:port, PROTOCOL one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL (repeatable; replaces --listen), e.g. SECURE=SASL_SSL://0.0.0.0:9094")
	f.StringArrayVar(&advListen, "advertised-listener", nil, "the address advertised for a listener, NAME=host:port (repeatable; default: its bound address)")
	f.StringVar(&opts.InterBrokerListener, "inter-broker-listener", "", "in a cluster, the --listener other brokers connect to (PLAINTEXT, or SSL with --tls-client-ca: brokers authenticate with their certificate, principal User:<subject>; default: the first listener)")
	f.BoolVar(&opts.ControllerTLS, "controller-tls", false, "in a cluster, speak mutual TLS on the controller listener (raft and broker-to-controller), with --tls-cert/--tls-key, peers verified against --tls-client-ca")
	f.StringVar(&opts.TLSCertFile, "tls-cert", "", "PEM certificate (chain) of SSL and SASL_SSL listeners, reloaded when the file changes")
	f.StringVar(&opts.TLSKeyFile, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&opts.TLSClientCAFile, "tls-client-ca", "", "PEM CA certificates to verify client certificates against (mutual TLS; principal User:<subject>)")
	f.StringVar(&opts.TLSClientAuth, "tls-client-auth", "", "with --tls-client-ca: required (default) or requested")
	f.StringVar(&opts.SASLPlainUsersFile, "sasl-plain-users", "", "enable SASL PLAIN against this file of user:password lines (SCRAM-SHA-256/512 are always on, see weir user)")
	f.BoolVar(&opts.Authorizer, "authorizer", false, "check every request against ACLs (see weir acl); with no ACL on a resource, deny")
	f.StringSliceVar(&opts.SuperUsers, "super-users", nil, "principals allowed everything, comma-separated, e.g. User:admin")
	f.DurationVar(&opts.ConnectionsMaxReauth, "connections-max-reauth", 0, "end SASL sessions after this long: clients re-authenticate (KIP-368) or are disconnected (default 0: never)")
	f.BoolVar(&opts.AllowEveryoneIfNoACLFound, "allow-everyone-if-no-acl-found", false, "with --authorizer: allow operations on resources no ACL names")
	f.StringVar(&configFile, "config", "", "file of flag = value lines")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "text or json")
	// For the benchmarks (bench log --profile-dir), not for operators.
	f.StringVar(&cpuProfile, "cpu-profile", "", "write a CPU profile of the broker's whole run to this file when it stops gracefully")
	_ = f.MarkHidden("cpu-profile")
	return cmd
}

// zeroMeansDefault are the flags whose 0 the broker's Options would
// silently replace with a default: a 0 given on the command line or in the
// config file is a mistake to report, not to reinterpret.
var zeroMeansDefault = []string{
	"default-partitions", "max-partitions-per-topic", "max-partitions-per-broker",
	"fsync-interval", "max-frame-bytes", "group-min-session-timeout",
	"group-max-session-timeout", "offsets-retention", "offsets-topic-partitions",
	"offsets-topic-replication-factor",
	"frame-read-timeout", "connections-max-idle", "max-connections",
	"replica-lag-time", "leader-rebalance-interval", "broker-session-timeout",
}

// checkZeroFlags reports every flag of zeroMeansDefault set to 0.
func checkZeroFlags(fs *pflag.FlagSet) error {
	var errs []error
	for _, name := range zeroMeansDefault {
		f := fs.Lookup(name)
		if f == nil || !f.Changed {
			continue
		}
		if v := f.Value.String(); v == "0" || v == "0s" {
			errs = append(errs, fmt.Errorf("--%s %s: must be above 0 (leave it out for the default)", name, v))
		}
	}
	return errors.Join(errs...)
}

// newLogger builds the structured logger on stderr.
func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	ho := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, ho)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, ho)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// applyConfigFile sets every flag named in path that was not given on the
// command line.
func applyConfigFile(fs *pflag.FlagSet, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s:%d: want name = value", path, n)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		fl := fs.Lookup(k)
		if fl == nil || k == "config" {
			return fmt.Errorf("%s:%d: unknown setting %q", path, n, k)
		}
		if fl.Changed && fl.Value.Type() != "stringArray" {
			continue // the command line wins
		}
		if err := fs.Set(k, v); err != nil {
			return fmt.Errorf("%s:%d: %s: %w", path, n, k, err)
		}
	}
	return sc.Err()
}

// applyListeners turns --listener and --advertised-listener into
// opts.Listeners. With --listener, --listen must not be given.
func applyListeners(fs *pflag.FlagSet, opts *broker.Options, listeners, advertised []string) error {
	if len(listeners) == 0 {
		if len(advertised) > 0 {
			return errors.New("--advertised-listener needs --listener")
		}
		return nil
	}
	if fs.Lookup("listen").Changed || fs.Lookup("advertised-addr").Changed {
		return errors.New("--listen/--advertised-addr and --listener both given: list every listener with --listener")
	}
	opts.Listen = ""
	for _, s := range listeners {
		l, err := broker.ParseListener(s)
		if err != nil {
			return fmt.Errorf("--listener: %w", err)
		}
		opts.Listeners = append(opts.Listeners, l)
	}
	for _, s := range advertised {
		name, addr, ok := strings.Cut(s, "=")
		if !ok {
			return fmt.Errorf("--advertised-listener %q: want NAME=host:port", s)
		}
		found := false
		for i := range opts.Listeners {
			if opts.Listeners[i].Name == name {
				opts.Listeners[i].Advertised, found = addr, true
			}
		}
		if !found {
			return fmt.Errorf("--advertised-listener %q: no --listener is named %q", s, name)
		}
	}
	return nil
}

// startCPUProfile starts a CPU profile written to path; the returned
// function stops it and closes the file.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}
