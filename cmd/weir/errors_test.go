package main

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-dev/weir/internal/cli"
)

// TestErrorIsOneLineHintFirst checks what a refused request prints: one
// line per failure on stderr, the broker's message before the code's name,
// and nothing about the failure on stdout (it used to be printed there too,
// and the code's name and description stood before the broker's message).
func TestErrorIsOneLineHintFirst(t *testing.T) {
	b := "--brokers=" + weirCluster(t)
	mustRun(t, "", "topic", "create", "orders", b)

	out, err := runWeir(t, "", "topic", "create", "orders", b)
	if err == nil {
		t.Fatal("creating an existing topic succeeded")
	}
	if !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Errorf("error %q does not match kerr.TopicAlreadyExists", err)
	}
	if out != "" {
		t.Errorf("stdout %q, want nothing: the error says it once", out)
	}
	var stderr bytes.Buffer
	printError(&stderr, err)
	line := strings.TrimSuffix(stderr.String(), "\n")
	if strings.Contains(line, "\n") {
		t.Fatalf("error printed on several lines:\n%s", stderr.String())
	}
	// Weir's broker sends a message naming the topic; it comes first, the
	// code's name once at the end, and kerr's generic description not at
	// all.
	if !strings.HasPrefix(line, `weir: cli: create topic "orders": `) || !strings.HasSuffix(line, " (TOPIC_ALREADY_EXISTS)") ||
		strings.Count(line, "TOPIC_ALREADY_EXISTS") != 1 || strings.Contains(line, kerr.TopicAlreadyExists.Description) {
		t.Errorf("error line %q, want `weir: cli: create topic \"orders\": <broker's message> (TOPIC_ALREADY_EXISTS)`", line)
	}

	// Two failures: one line each, both prefixed; the topic that could be
	// created is reported on stdout.
	out, err = runWeir(t, "", "topic", "create", "orders", "fresh", "-p", "0", b)
	if err == nil {
		t.Fatal("create with a bad partition count succeeded")
	}
	if out != "" {
		t.Errorf("stdout %q, want nothing", out)
	}
	stderr.Reset()
	printError(&stderr, err)
	lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], `weir: cli: create topic "orders": `) ||
		!strings.HasPrefix(lines[1], `weir: cli: create topic "fresh": `) || !strings.HasSuffix(lines[1], "(INVALID_PARTITIONS)") {
		t.Errorf("two failures printed as:\n%s", stderr.String())
	}
}

// TestUnknownSubcommandFails: a mistyped subcommand is an error (exit 1),
// not help with exit 0, and the error suggests the command meant; a group
// command alone still prints its help.
func TestUnknownSubcommandFails(t *testing.T) {
	for _, c := range []struct {
		args    []string
		suggest string
	}{
		{[]string{"topic", "creat", "x"}, `did you mean "create"?`},
		{[]string{"topc"}, `did you mean "topic"?`},
		{[]string{"group", "lst"}, `did you mean "list"?`},
		{[]string{"group", "frobnicate"}, "`weir group --help` lists them"},
	} {
		_, err := runWeir(t, "", c.args...)
		if err == nil {
			t.Errorf("weir %s succeeded", strings.Join(c.args, " "))
			continue
		}
		if !strings.Contains(err.Error(), "unknown command") || !strings.Contains(err.Error(), c.suggest) || strings.Contains(err.Error(), "\n") {
			t.Errorf("weir %s: error %q, want one line saying unknown command and %q", strings.Join(c.args, " "), err, c.suggest)
		}
	}
	for _, args := range [][]string{{"topic"}, {"group"}, {}} {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetArgs(args)
		root.SetOut(&out)
		if err := root.Execute(); err != nil {
			t.Errorf("weir %s: %v, want its help", strings.Join(args, " "), err)
		}
		if !strings.Contains(out.String(), "Available Commands:") {
			t.Errorf("weir %s printed %q, want its help", strings.Join(args, " "), out.String())
		}
	}
}

// refusedAddr returns a loopback address where nothing listens: a port just
// freed.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestRefusedConnectionFailsFast: with nothing listening at the broker
// address, every client command fails at once with an error saying so,
// instead of retrying the dial for its whole --timeout (produce used to wait
// the full 30 s by default).
func TestRefusedConnectionFailsFast(t *testing.T) {
	addr := refusedAddr(t)
	const timeout = 20 * time.Second
	for _, args := range [][]string{
		{"produce", "orders"},
		{"consume", "orders", "--until-end"},
		{"topic", "list"},
		{"group", "list"},
	} {
		args = append(args, "--brokers="+addr, "--timeout="+timeout.String())
		start := time.Now()
		_, err := runWeir(t, "k:v\n", args...)
		took := time.Since(start)
		if err == nil {
			t.Fatalf("weir %s succeeded with nothing listening at %s", strings.Join(args, " "), addr)
		}
		if !errors.Is(err, cli.ErrUnreachable) || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("weir %s: error %q, want one saying nothing listens at %s", strings.Join(args, " "), err, addr)
		}
		if !strings.Contains(err.Error(), "nothing listens at "+addr) {
			t.Errorf("weir %s: error %q does not name the address first", strings.Join(args, " "), err)
		}
		// A refusal is known within milliseconds; half the timeout leaves
		// room for a loaded machine while still failing the old behaviour.
		if took > timeout/2 {
			t.Errorf("weir %s took %v to report a refused connection (timeout %v)", strings.Join(args, " "), took, timeout)
		}
	}
}
