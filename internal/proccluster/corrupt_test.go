package proccluster_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TestFaultCorruptRaftStorageRefused: a node's raft storage is corrupted
// on disk while it is down (a flipped bit in the middle of its Pebble
// table, which Pebble's block checksum covers). `weir broker` refuses to
// start: it exits non-zero with a message naming the directory and the
// way out, without a panic. Then the way out: with the directory moved
// away and --rejoin, the node is taken back, serves every topic, and is a
// voter the others count on (with another node killed, topics are still
// created).
func TestFaultCorruptRaftStorageRefused(t *testing.T) {
	rng := faultTest(t)
	f := startFaultCluster(t, 2*time.Minute)
	c, ctx := f.c, f.ctx
	for i := range 5 {
		name := fmt.Sprintf("before%d", i)
		if r, err := f.adm.CreateTopic(ctx, 1, 3, nil, name); err != nil || r.Err != nil {
			t.Fatalf("create %s: %v %v", name, err, r.Err)
		}
	}
	n := c.Node(int32(1 + rng.IntN(3)))
	dir := filepath.Join(n.DataDir, "metadata-raft")
	// A restart replays the raft WAL into a table (Pebble flushes what it
	// recovers): after the second kill the records sit in an .sst file.
	n.Kill()
	n.Restart()
	n.Kill()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	flipped := 0
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".sst") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		at := len(data) / 3 // within the first data block
		data[at] ^= 0x10
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("node %d: flipped a bit of byte %d of %s (%d bytes)", n.ID, at, path, len(data))
		flipped++
	}
	if flipped == 0 {
		t.Fatalf("no .sst in %s: %v", dir, ents)
	}
	err = n.RestartExpectingExit(30 * time.Second)
	log := n.Tail(20)
	if err == nil {
		t.Fatalf("node %d started on corrupt raft storage and exited 0:\n%s", n.ID, log)
	}
	// The message the operator sees: where, and what to do.
	for _, w := range []string{"corrupt raft storage in " + dir, "refuses to start", "move this directory away"} {
		if !strings.Contains(log, w) {
			t.Fatalf("node %d exited (%v) without %q in its output:\n%s", n.ID, err, w, log)
		}
	}
	if strings.Contains(log, "panic:") {
		t.Fatalf("node %d panicked on corrupt raft storage:\n%s", n.ID, log)
	}
	t.Logf("node %d refused to start (%v)", n.ID, err)

	if err := os.Rename(dir, dir+".corrupt"); err != nil {
		t.Fatal(err)
	}
	// NB: started without --rejoin, the node stops with LostStorageError
	// only if the leader counts on its acknowledgements (a leader elected
	// after it went down catches it up instead): that is shown in-process
	// by quorum's TestRejoinAfterLostStorage, with a leader that does.
	n.RestartWith("--rejoin")
	cl2, err := n.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	adm := kadm.NewClient(cl2)
	eventually(t, 30*time.Second, fmt.Sprintf("node %d serves the topics created before", n.ID), func() error {
		md, err := n.Metadata(ctx)
		if err != nil {
			return err
		}
		have := map[string]bool{}
		for _, tp := range md.Topics {
			if tp.Topic != nil {
				have[*tp.Topic] = true
			}
		}
		for i := range 5 {
			if !have[fmt.Sprintf("before%d", i)] {
				return fmt.Errorf("node %d's metadata lacks before%d", n.ID, i)
			}
		}
		return nil
	})
	// NB: until the voters have taken it back, the node does not vote:
	// killing another node before that leaves no majority (a limit of
	// rejoining, stated in quorum/rejoin.go).
	eventually(t, 30*time.Second, fmt.Sprintf("node %d taken back as a voter", n.ID), func() error {
		if !strings.Contains(n.Tail(400), "quorum: rejoined the voters") {
			return fmt.Errorf("node %d has not logged that it rejoined", n.ID)
		}
		return nil
	})
	other := c.Node(int32(n.ID%3 + 1))
	other.Kill()
	// Two voters left, one the rejoined node: a topic is created only if
	// it votes and acknowledges as a voter.
	eventually(t, 30*time.Second, "a topic created with a node killed and the rejoined one up", func() error {
		r, err := adm.CreateTopic(ctx, 1, 2, nil, "after-rejoin")
		if err == nil && r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			err = r.Err
		}
		return err
	})
	other.Restart()
	t.Logf("node %d rejoined; with node %d killed a topic was created", n.ID, other.ID)
}
