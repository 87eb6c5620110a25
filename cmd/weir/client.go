package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/internal/cli"
)

// defaultBrokers is where the client commands connect without --brokers or
// WEIR_BROKERS: a `weir broker` started with its defaults.
const defaultBrokers = "127.0.0.1:9092"

// clientFlags are the connection flags shared by topic, produce and consume.
type clientFlags struct {
	brokers string
	timeout time.Duration
	sec     clientSecurity
}

func (f *clientFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.brokers, "brokers", "",
		"comma-separated bootstrap brokers (default $WEIR_BROKERS, else "+defaultBrokers+")")
	cmd.PersistentFlags().DurationVar(&f.timeout, "timeout", 30*time.Second,
		"give up on the cluster after this long (admin requests, produce delivery, consume's offset lookups)")
	f.sec.register(cmd)
}

// brokerList resolves --brokers, then WEIR_BROKERS, then the default.
func (f *clientFlags) brokerList() []string {
	s := f.brokers
	if s == "" {
		s = os.Getenv("WEIR_BROKERS")
	}
	if s == "" {
		s = defaultBrokers
	}
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// newClient makes a franz-go client for the resolved brokers.
func (f *clientFlags) newClient(opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{kgo.SeedBrokers(f.brokerList()...), kgo.ClientID("weir-cli")}
	sec, err := f.sec.opts()
	if err != nil {
		return nil, err
	}
	return kgo.NewClient(append(append(base, sec...), opts...)...)
}

// reach checks that a broker of the cluster answers, so that a command
// fails at once, saying so, when nothing listens at the addresses: franz-go
// would otherwise retry the dial until the command's whole timeout passed
// (for produce, 30 s by default) before reporting the refusal. It gives up
// after --timeout, when no broker answered by then either.
func (f *clientFlags) reach(ctx context.Context, cl *kgo.Client) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		if ctx.Err() != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err // stopped (Ctrl-C)
		}
		return &cli.UnreachableError{Brokers: f.brokerList(), Err: err}
	}
	return nil
}

// client runs fn with a client for the resolved brokers and a context
// bounded by --timeout and ended by Ctrl-C.
func (f *clientFlags) client(c *cobra.Command, fn func(ctx context.Context, cl *kgo.Client) error) error {
	ctx, stop := signalContext(c)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	cl, err := f.newClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := f.reach(ctx, cl); err != nil {
		return err
	}
	return fn(ctx, cl)
}

// admin runs f with an admin client for the resolved brokers and a context
// bounded by --timeout and ended by Ctrl-C.
func (f *clientFlags) admin(c *cobra.Command, fn func(ctx context.Context, adm *kadm.Client) error) error {
	return f.client(c, func(ctx context.Context, cl *kgo.Client) error {
		return fn(ctx, kadm.NewClient(cl))
	})
}

// signalContext is cmd's context, ended by SIGINT or SIGTERM so that commands
// can finish cleanly (flush produced records, print what was consumed). A
// second signal kills the process as usual.
func signalContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // restore default handling for the next signal
	}()
	return ctx, stop
}
