package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weir-dev/weir/internal/console"
)

func init() { subcommands = append(subcommands, newConsoleCmd) }

// defaultConsoleListen is where `weir console` serves without --listen.
const defaultConsoleListen = "127.0.0.1:9580"

func newConsoleCmd() *cobra.Command {
	var cf clientFlags
	var apps []string
	var listen string
	cmd := &cobra.Command{
		Use:   "console [--brokers HOST:PORT,...] [--apps URL,...] [--listen HOST:PORT]",
		Short: "Serve a web console: brokers and quorum, topics and messages, consumer groups and lag, stream applications",
		Long: `Serve a web console for the cluster at --brokers, and for the stream applications
whose metrics endpoints (the runtime's MetricsAddr option) --apps names. Open the
printed address in a browser; the pages update by themselves. Ctrl-C stops it.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var urls []string
			for _, a := range apps {
				if a = strings.TrimSpace(a); a == "" {
					continue
				}
				if !strings.Contains(a, "://") {
					a = "http://" + a
				}
				urls = append(urls, a)
			}
			srv, err := console.New(console.Options{Brokers: cf.brokerList(), Apps: urls, RequestTimeout: cf.timeout})
			if err != nil {
				return err
			}
			defer srv.Close()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("console: --listen %s: %w", listen, err)
			}
			hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
			ctx, stop := signalContext(c)
			defer stop()
			served := make(chan error, 1)
			go func() { served <- hs.Serve(ln) }()
			fmt.Fprintf(c.OutOrStdout(), "weir console: serving http://%s (brokers %s)\n", ln.Addr(), strings.Join(cf.brokerList(), ","))
			select {
			case err := <-served:
				return fmt.Errorf("console: %w", err)
			case <-ctx.Done():
			}
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("console: %w", err)
			}
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().StringSliceVar(&apps, "apps", nil, "comma-separated metrics addresses (http://HOST:PORT or HOST:PORT) of stream application instances to show")
	cmd.Flags().StringVar(&listen, "listen", defaultConsoleListen, "address to serve the console on")
	return cmd
}
