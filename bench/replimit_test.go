package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestReplimitReplicates runs three nodes in this process and a phase at
// each factor: every node's files then hold, byte for byte, the batches
// its stream sent and, at factor 3, those of the two other streams; and a
// corrupt batch is refused.
func TestReplimitReplicates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := replimitConfig{Size: 100, Records: 300, BatchBytes: 1000, InFlight: 2, Rounds: 1, Timeout: time.Minute}
	frame := replimitFrame(cfg)
	body := frame[4:]
	for _, tc := range []struct {
		factor int
		splice bool
	}{{1, false}, {3, false}, {3, true}} {
		if tc.splice && runtime.GOOS != "linux" {
			continue // splice(2) is Linux's
		}
		factor := tc.factor
		t.Run(fmt.Sprintf("factor %d splice %v", factor, tc.splice), func(t *testing.T) {
			addrs, dirs := startReplNodes(t, ctx, tc.splice)
			if err := replimitPhase(ctx, addrs, factor, cfg.batches(), cfg.InFlight, frame); err != nil {
				t.Fatal(err)
			}
			want := bytes.Repeat(body, cfg.batches())
			for i, d := range dirs {
				files, _ := filepath.Glob(filepath.Join(d, "stream-*"))
				if len(files) != factor {
					t.Fatalf("node %d has %d stream files, want %d", i, len(files), factor)
				}
				for _, f := range files {
					got, err := os.ReadFile(f)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("%s: %d bytes, want the %d batches (%d bytes)", f, len(got), cfg.batches(), len(want))
					}
				}
			}
		})
	}
	t.Run("corrupt batch", func(t *testing.T) {
		addrs, _ := startReplNodes(t, ctx, false)
		bad := bytes.Clone(frame)
		bad[len(bad)-1] ^= 1
		err := replimitPhase(ctx, addrs[:1], 1, 1, 1, bad)
		if err == nil {
			t.Fatal("a batch with a wrong CRC was acknowledged")
		}
	})
}

// startReplNodes serves three nodes on loopback listeners until the test
// ends.
func startReplNodes(t *testing.T, ctx context.Context, splice bool) ([]string, []string) {
	t.Helper()
	lns := make([]net.Listener, 3)
	addrs := make([]string, 3)
	dirs := make([]string, 3)
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i], addrs[i], dirs[i] = ln, ln.Addr().String(), t.TempDir()
	}
	nctx, stop := context.WithCancel(ctx)
	done := make(chan struct{}, 3)
	for i, ln := range lns {
		var peers []string
		for j, a := range addrs {
			if j != i {
				peers = append(peers, a)
			}
		}
		go func() {
			_ = serveReplNode(nctx, ln, dirs[i], peers, splice)
			done <- struct{}{}
		}()
	}
	t.Cleanup(func() {
		stop()
		for range lns {
			<-done
		}
	})
	return addrs, dirs
}
