package quorum

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// BenchmarkPropose measures sequential proposals on a 3-voter loopback
// cluster: each op is one entry committed (persisted with a synced batch on
// two of three voters) and applied on the leader. "mem" keeps the raft
// storage in memory (syncs are free), "disk" on the OS filesystem under
// the benchmark's temporary directory.
func BenchmarkPropose(b *testing.B) {
	for _, where := range []string{"mem", "disk"} {
		b.Run(where, func(b *testing.B) {
			var voters []Voter
			var lns []net.Listener
			for i := 1; i <= 3; i++ {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				lns = append(lns, ln)
				voters = append(voters, Voter{ID: NodeID(i), Addr: ln.Addr().String()})
			}
			var nodes []*Node
			for i, v := range voters {
				o := Options{ID: v.ID, Voters: voters, Listener: lns[i], TickInterval: 10 * time.Millisecond,
					ElectionTicks: 20, HeartbeatTicks: 2, Logger: testLogger(b)}
				if where == "mem" {
					o.FS, o.Dir = vfs.NewMem(), "/raft"
				} else {
					o.FS, o.Dir = vfs.Default, b.TempDir()
				}
				n, err := New(o, &testSM{})
				if err != nil {
					b.Fatal(err)
				}
				if err := n.Start(context.Background()); err != nil {
					b.Fatal(err)
				}
				nodes = append(nodes, n)
				defer n.Close()
			}
			var lead *Node
			deadline := time.Now().Add(10 * time.Second)
			for lead == nil {
				for _, n := range nodes {
					if n.IsLeader() {
						lead = n
					}
				}
				if time.Now().After(deadline) {
					b.Fatal("no leader")
				}
				time.Sleep(5 * time.Millisecond)
			}
			data := make([]byte, 100)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := lead.Propose(ctx, data); err != nil {
					b.Fatal(fmt.Errorf("proposal %d: %w", i, err))
				}
			}
		})
	}
}
