package main

import (
	"os"
	"path/filepath"
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
