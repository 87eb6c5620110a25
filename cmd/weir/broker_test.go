package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBrokerConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weir.conf")
	conf := "# a comment\nlisten = 127.0.0.1:19999\ndata-dir = /tmp/from-file\nfsync = interval\ntopic-config = retention.ms=1000\nmetrics-addr = 127.0.0.1:9644\n"
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := newBrokerCmd()
	// The command line wins over the file.
	if err := cmd.Flags().Parse([]string{"--data-dir", "/tmp/from-flag"}); err != nil {
		t.Fatal(err)
	}
	if err := applyConfigFile(cmd.Flags(), path); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, name := range []string{"listen", "data-dir", "fsync", "topic-config", "metrics-addr"} {
		got[name] = cmd.Flags().Lookup(name).Value.String()
	}
	want := map[string]string{
		"listen":       "127.0.0.1:19999",
		"data-dir":     "/tmp/from-flag",
		"fsync":        "interval",
		"topic-config": "[retention.ms=1000]",
		"metrics-addr": "127.0.0.1:9644",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("settings (-want +got):\n%s", diff)
	}

	bad := filepath.Join(t.TempDir(), "bad.conf")
	if err := os.WriteFile(bad, []byte("no-such-flag = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := applyConfigFile(newBrokerCmd().Flags(), bad); err == nil {
		t.Fatal("unknown setting accepted")
	}
}

func TestBrokerSessionTimeoutFlags(t *testing.T) {
	cmd := newBrokerCmd()
	got := map[string]string{}
	for _, name := range []string{"group-min-session-timeout", "group-max-session-timeout"} {
		got[name] = cmd.Flags().Lookup(name).DefValue
	}
	want := map[string]string{"group-min-session-timeout": "6s", "group-max-session-timeout": "30m0s"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("flag defaults (-want +got):\n%s", diff)
	}
	if err := cmd.Flags().Parse([]string{"--group-min-session-timeout", "500ms", "--group-max-session-timeout", "1m"}); err != nil {
		t.Fatal(err)
	}
	for name, w := range map[string]string{"group-min-session-timeout": "500ms", "group-max-session-timeout": "1m0s"} {
		if v := cmd.Flags().Lookup(name).Value.String(); v != w {
			t.Errorf("--%s = %s, want %s", name, v, w)
		}
	}
}

// runBroker runs "weir broker" with args on a free loopback port and a
// fresh data directory, with its context already cancelled: a broker that
// starts stops again at once, so only the refusal of its settings is slow
// to come.
func runBroker(t *testing.T, args ...string) error {
	t.Helper()
	root := newRootCmd()
	root.SetArgs(append([]string{"broker", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--log-level", "error"}, args...))
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return root.ExecuteContext(ctx)
}

// TestBrokerFlagMistakes: settings that would be ignored or silently
// replaced by a default are refused, saying which.
func TestBrokerFlagMistakes(t *testing.T) {
	// The same broker with sound settings starts (and stops).
	if err := runBroker(t, "--fsync", "interval", "--fsync-interval", "200ms", "--default-partitions", "3",
		"--max-partitions-per-topic", "100", "--max-partitions-per-broker", "1000", "--group-initial-rebalance-delay", "0"); err != nil {
		t.Fatalf("sound settings refused: %v", err)
	}
	conf := filepath.Join(t.TempDir(), "weir.conf")
	if err := os.WriteFile(conf, []byte("default-partitions = 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--fsync", "group", "--fsync-interval", "5s"}, []string{`fsync interval 5s given with fsync policy "group", which would ignore it`}},
		{[]string{"--fsync-interval", "2s"}, []string{`fsync interval 2s given with fsync policy "group"`}},
		{[]string{"--fsync", "never", "--fsync-interval", "2s"}, []string{`fsync policy "never"`}},
		{[]string{"--default-partitions", "0"}, []string{"--default-partitions 0: must be above 0"}},
		{[]string{"--config", conf}, []string{"--default-partitions 0: must be above 0"}},
		{[]string{"--default-partitions", "-2"}, []string{"default partitions -2 outside 1..10000"}},
		{[]string{"--default-partitions", "20", "--max-partitions-per-topic", "10"}, []string{"default partitions 20 outside 1..10"}},
		{[]string{"--max-partitions-per-topic", "10", "--max-partitions-per-broker", "5"}, []string{"max partitions per topic 10 outside 1..5"}},
		{[]string{"--replica-lag-time", "0s"}, []string{"--replica-lag-time 0s: must be above 0"}},
		{[]string{"--leader-rebalance-interval", "0s"}, []string{"--leader-rebalance-interval 0s: must be above 0"}},
		// Every zero at once.
		{[]string{"--max-partitions-per-topic", "0", "--fsync-interval", "0s", "--offsets-topic-partitions", "0", "--max-frame-bytes", "0"},
			[]string{"--max-partitions-per-topic 0", "--fsync-interval 0s", "--offsets-topic-partitions 0", "--max-frame-bytes 0"}},
	} {
		err := runBroker(t, c.args...)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("weir broker %v: %v, want an error saying %q", c.args, err, w)
			}
		}
	}
}

func TestBrokerConnectionFlags(t *testing.T) {
	cmd := newBrokerCmd()
	names := []string{"frame-read-timeout", "connections-max-idle", "max-connections", "max-connections-per-ip"}
	got := map[string]string{}
	for _, name := range names {
		got[name] = cmd.Flags().Lookup(name).DefValue
	}
	// 0 for max-connections leaves the broker its default (derived from
	// the open-file limit).
	want := map[string]string{"frame-read-timeout": "30s", "connections-max-idle": "10m0s",
		"max-connections": "0", "max-connections-per-ip": "0"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("flag defaults (-want +got):\n%s", diff)
	}
	if err := cmd.Flags().Parse([]string{"--frame-read-timeout", "5s", "--connections-max-idle", "-1s",
		"--max-connections", "500", "--max-connections-per-ip", "20"}); err != nil {
		t.Fatal(err)
	}
	for name, w := range map[string]string{"frame-read-timeout": "5s", "connections-max-idle": "-1s",
		"max-connections": "500", "max-connections-per-ip": "20"} {
		if v := cmd.Flags().Lookup(name).Value.String(); v != w {
			t.Errorf("--%s = %s, want %s", name, v, w)
		}
	}
}
