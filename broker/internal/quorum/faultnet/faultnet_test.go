package faultnet

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer echoes every connection until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(c, c); _ = c.Close() })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// roundTrip writes p and reads len(p) bytes back within timeout.
func roundTrip(c net.Conn, p string, timeout time.Duration) (string, error) {
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte(p)); err != nil {
		return "", err
	}
	b := make([]byte, len(p))
	_, err := io.ReadFull(c, b)
	return string(b), err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestFaults(t *testing.T) {
	n := New(1, nil)
	addr := echoServer(t)
	n.Register(1, "127.0.0.1:1")
	n.Register(2, addr)
	ctx := context.Background()
	dial := func() net.Conn {
		t.Helper()
		c, err := n.Dialer(1).DialContext(ctx, "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}

	c := dial()
	if got, err := roundTrip(c, "hello", 5*time.Second); err != nil || got != "hello" {
		t.Fatalf("clean link: %q %v", got, err)
	}

	// Blackhole 1->2: the write succeeds, nothing comes back.
	n.Blackhole(1, 2)
	if _, err := roundTrip(c, "lost", 200*time.Millisecond); !isTimeout(err) {
		t.Fatalf("blackholed link: %v, want a timeout", err)
	}
	// Healed, the connection that lost bytes breaks; a new one works.
	n.HealAll()
	if _, err := roundTrip(c, "again", 5*time.Second); err == nil {
		t.Fatalf("a connection that lost bytes kept working")
	}
	c = dial()
	if got, err := roundTrip(c, "fresh", 5*time.Second); err != nil || got != "fresh" {
		t.Fatalf("after heal: %q %v", got, err)
	}

	// Blackhole 2->1 only: the request arrives, the answer does not.
	n.Blackhole(2, 1)
	if _, err := roundTrip(c, "one-way", 200*time.Millisecond); !isTimeout(err) {
		t.Fatalf("answer direction blackholed: %v, want a timeout", err)
	}
	n.HealAll()

	// Cut: dials refused, open connections broken.
	c = dial()
	n.Cut(1, 2)
	if _, err := roundTrip(c, "x", 5*time.Second); err == nil {
		t.Fatalf("cut link carried data")
	}
	if _, err := n.Dialer(1).DialContext(ctx, "tcp", addr); !errors.Is(err, ErrCut) {
		t.Fatalf("dial over a cut link: %v, want ErrCut", err)
	}
	n.Heal(1, 2)

	// Delay: the round trip takes at least the delay.
	c = dial()
	n.Delay(1, 2, 50*time.Millisecond)
	start := time.Now()
	if got, err := roundTrip(c, "slow", 5*time.Second); err != nil || got != "slow" {
		t.Fatalf("delayed link: %q %v", got, err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("delayed round trip took %v, under the 50ms delay", d)
	}
	n.HealAll()

	// Drop with probability 1: the write breaks the connection.
	c = dial()
	n.Drop(1, 2, 1)
	if _, err := roundTrip(c, "x", 5*time.Second); err == nil {
		t.Fatalf("dropping link carried data")
	}
	if s := n.Stats(1, 2); s.Dropped != 1 || s.Blackholed < 1 || s.Refused < 1 || s.Delayed < 1 {
		t.Fatalf("stats %+v do not count the faults applied", s)
	}
}

// TestHoldRelease: a held write returns at once and arrives only at
// Release, even after its sender closed the connection; writes Hold does
// not match pass.
func TestHoldRelease(t *testing.T) {
	n := New(1, nil)
	addr := echoServer(t)
	n.Register(1, "127.0.0.1:1")
	n.Register(2, addr)
	dial := func() net.Conn {
		t.Helper()
		c, err := n.Dialer(1).DialContext(context.Background(), "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	n.Hold(1, 2, func(p []byte) bool { return string(p) == "late" })

	other := dial()
	defer other.Close()
	if got, err := roundTrip(other, "free", 5*time.Second); err != nil || got != "free" {
		t.Fatalf("a write Hold does not match: %q %v", got, err)
	}

	c := dial()
	if _, err := roundTrip(c, "late", 200*time.Millisecond); !isTimeout(err) {
		t.Fatalf("held write: %v, want a timeout (nothing arrived)", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	n.Heal(1, 2)
	if s := n.Stats(1, 2); s.Held != 1 {
		t.Fatalf("stats %+v, want 1 held write", s)
	}
	// Released after the close, it arrives: the echo server answers it.
	if k, err := n.Release(1, 2); k != 1 || err != nil {
		t.Fatalf("Release: %d connections, %v; want 1 and no error", k, err)
	}
	if k, err := n.Release(1, 2); k != 0 || err != nil {
		t.Fatalf("second Release: %d connections, %v; want 0", k, err)
	}
}
