package quorum

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// manualTicker is a Ticker the test drives.
type manualTicker struct{ c chan time.Time }

func (m *manualTicker) C() <-chan time.Time { return m.c }
func (m *manualTicker) Stop()               {}

// TestSingleVoter runs a one-voter quorum on hand-driven ticks, with a
// snapshot after every applied entry: the first is the leader's empty
// entry, which the state machine never sees, so the state machine's
// snapshot index trails the node's applied index.
func TestSingleVoter(t *testing.T) {
	fs := vfs.NewMem()
	tk := &manualTicker{c: make(chan time.Time)}
	open := func() (*Node, *testSM) {
		t.Helper()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		sm := &testSM{}
		n, err := New(Options{ID: 1, Voters: []Voter{{1, "127.0.0.1:1"}}, Dir: "/raft", FS: fs, Listener: ln,
			NewTicker: func(time.Duration) Ticker { return tk }, SnapshotEntries: 1, CatchUpEntries: 1, Logger: testLogger(t)}, sm)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return n, sm
	}
	n, _ := open()
	// Tick until it elects itself (after 10 to 20 ticks).
	for i := 0; !n.IsLeader(); i++ {
		if i > 100 {
			t.Fatalf("no leader after %d ticks: %+v", i, n.Status())
		}
		tk.c <- time.Time{}
	}
	poll(t, 5*time.Second, func() error {
		if s := n.Status(); s.Err != nil || s.Applied < 1 {
			return fmt.Errorf("status %+v", s)
		}
		return nil
	})
	for i := range 3 {
		idx, err := n.Propose(context.Background(), fmt.Appendf(nil, "e%d", i))
		if err != nil {
			t.Fatalf("Propose: %v (status %+v)", err, n.Status())
		}
		if want := uint64(i + 2); idx != want {
			t.Fatalf("entry %d at index %d, want %d", i, idx, want)
		}
	}
	if s := n.Status(); s.Err != nil || s.SnapshotIndex != 4 || s.Applied != 4 {
		t.Fatalf("status %+v, want snapshot and applied at 4", s)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n, sm := open()
	defer n.Close()
	ents, viol := sm.state()
	if len(viol) > 0 || len(ents) != 3 || ents[2] != (appliedEntry{Index: 4, Data: "e2"}) {
		t.Fatalf("restored state %+v, violations %v", ents, viol)
	}
}

// refusingSM refuses the entry "poison".
type refusingSM struct{ testSM }

func (r *refusingSM) Apply(index uint64, data []byte) error {
	if string(data) == "poison" {
		return fmt.Errorf("entry %d: poison", index)
	}
	return r.testSM.Apply(index, data)
}

// TestStateMachineRefusal: a state machine that refuses a committed entry
// stops the node; Status says why, the entries after it are never applied,
// and Propose answers at once instead of hanging.
func TestStateMachineRefusal(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sm := &refusingSM{}
	n, err := New(Options{ID: 1, Voters: []Voter{{1, "127.0.0.1:1"}}, Dir: "/raft", FS: vfs.NewMem(), Listener: ln,
		TickInterval: time.Millisecond, Logger: testLogger(t)}, sm)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	poll(t, 5*time.Second, func() error {
		if !n.IsLeader() {
			return errors.New("not leader yet")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := n.Propose(ctx, []byte("ok")); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Propose(ctx, []byte("poison")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Propose of the refused entry: %v, want ErrClosed", err)
	}
	s := n.Status()
	if s.Err == nil || !strings.Contains(s.Err.Error(), "state machine refused committed entry 3: entry 3: poison") {
		t.Fatalf("status error %v", s.Err)
	}
	if _, err := n.Propose(ctx, []byte("after")); !errors.Is(err, ErrClosed) || ctx.Err() != nil {
		t.Fatalf("Propose on the failed node: %v (ctx %v), want ErrClosed at once", err, ctx.Err())
	}
	ents, _ := sm.state()
	if len(ents) != 1 || ents[0].Data != "ok" {
		t.Fatalf("applied %+v", ents)
	}
}
