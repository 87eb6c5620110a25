package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuf is a bytes buffer safe for a writer and a reader goroutine.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestConsoleCommand runs `weir console` in-process: it prints where it
// serves, answers the API and the UI there, and returns nil when its
// context ends (as on Ctrl-C).
func TestConsoleCommand(t *testing.T) {
	addr := weirCluster(t)
	mustRun(t, "", "topic", "create", "orders", "-p", "2", "--brokers", addr)
	root := newRootCmd()
	out := &syncBuf{}
	root.SetArgs([]string{"console", "--brokers", addr, "--listen", "127.0.0.1:0", "--apps", "127.0.0.1:1"})
	root.SetOut(out)
	root.SetErr(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	served := regexp.MustCompile(`serving (http://127\.0\.0\.1:[0-9]+)`)
	deadline := time.Now().Add(10 * time.Second)
	for !served.MatchString(out.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no serving line: %q", out.String())
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
	base := served.FindStringSubmatch(out.String())[1]
	resp, err := http.Get(base + "/api/topics")
	if err != nil {
		t.Fatal(err)
	}
	var topics []struct {
		Topic      string `json:"topic"`
		Partitions int    `json:"partitions"`
	}
	err = json.NewDecoder(resp.Body).Decode(&topics)
	resp.Body.Close()
	if err != nil || len(topics) != 1 || topics[0].Topic != "orders" || topics[0].Partitions != 2 {
		t.Errorf("/api/topics: %+v, %v", topics, err)
	}
	resp, err = http.Get(base + "/api/apps")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"url":"http://127.0.0.1:1"`) || !strings.Contains(string(body), `"up":false`) {
		t.Errorf("/api/apps for --apps 127.0.0.1:1: %s", body)
	}
	resp, err = http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "<title>Weir console</title>") {
		t.Errorf("/ is not the console's page: %.200s", page)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("console stopped with %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("console still running 10s after its context ended")
	}
}

func TestConsoleBadFlags(t *testing.T) {
	for args, want := range map[string]string{
		"console --apps ftp://x --listen 127.0.0.1:0": `application URL "ftp://x"`,
		"console --listen nonsense":                   "--listen nonsense",
	} {
		_, err := runWeir(t, "", strings.Fields(args)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("weir %s: %v, want an error naming %q", args, err, want)
		}
	}
}
