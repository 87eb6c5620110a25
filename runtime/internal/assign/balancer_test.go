package assign

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestLayoutTasks(t *testing.T) {
	l := Layout{Topics: map[string]int{"orders": 0, "payments": 0, "clicks": 1}}
	got := l.Tasks(map[string]int32{"orders": 3, "payments": 2, "clicks": 1})
	want := []TaskID{{0, 0}, {0, 1}, {0, 2}, {1, 0}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("tasks (-want +got):\n%s", d)
	}
}

// member is a kgo client in the group, tracking what it owns.
type member struct {
	cl *kgo.Client
	mu sync.Mutex
	// owned is topic -> partition -> true. Guarded by mu.
	owned map[string]map[int32]bool
}

func (m *member) snapshot() map[string]map[int32]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]map[int32]bool{}
	for t, ps := range m.owned {
		for p := range ps {
			if out[t] == nil {
				out[t] = map[int32]bool{}
			}
			out[t][p] = true
		}
	}
	return out
}

func joinMember(t *testing.T, addrs []string, layout Layout, topics ...string) *member {
	t.Helper()
	m := &member{owned: map[string]map[int32]bool{}}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addrs...),
		kgo.ConsumerGroup("app"),
		kgo.ConsumeTopics(topics...),
		kgo.Balancers(NewBalancer(layout, 0, nil)),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for tp, ps := range a {
				if m.owned[tp] == nil {
					m.owned[tp] = map[int32]bool{}
				}
				for _, p := range ps {
					m.owned[tp][p] = true
				}
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for tp, ps := range r {
				for _, p := range ps {
					delete(m.owned[tp], p)
				}
			}
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	// Polling drives the group's join and heartbeats.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx)
		}
	}()
	t.Cleanup(func() { cancel(); <-done; cl.Close() })
	return m
}

// checkGroup reports why the members' ownership is not yet a complete,
// balanced, co-partitioned assignment, or "" if it is.
func checkGroup(ms []*member, counts map[string]int32, layout Layout) string {
	seen := map[string]map[int32]int{}
	var taskCounts []int
	for i, m := range ms {
		own := m.snapshot()
		tasks := map[TaskID]map[string]bool{}
		for tp, ps := range own {
			for p := range ps {
				if seen[tp] == nil {
					seen[tp] = map[int32]int{}
				}
				if j, dup := seen[tp][p]; dup {
					return fmt.Sprintf("%s/%d owned by members %d and %d", tp, p, j, i)
				}
				seen[tp][p] = i
				tk := TaskID{layout.Topics[tp], p}
				if tasks[tk] == nil {
					tasks[tk] = map[string]bool{}
				}
				tasks[tk][tp] = true
			}
		}
		for tk, tps := range tasks {
			for tp, s := range layout.Topics {
				if s == tk.Subtopology && !tps[tp] {
					return fmt.Sprintf("member %d runs task %v without %s/%d", i, tk, tp, tk.Partition)
				}
			}
		}
		taskCounts = append(taskCounts, len(tasks))
	}
	for tp, n := range counts {
		if len(seen[tp]) != int(n) {
			return fmt.Sprintf("%d of %d partitions of %s owned", len(seen[tp]), n, tp)
		}
	}
	lo, hi := taskCounts[0], taskCounts[0]
	for _, c := range taskCounts {
		lo, hi = min(lo, c), max(hi, c)
	}
	if hi-lo > 1 {
		return fmt.Sprintf("unbalanced task counts %v", taskCounts)
	}
	return ""
}

func waitGroup(t *testing.T, ms []*member, counts map[string]int32, layout Layout) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for why := checkGroup(ms, counts, layout); why != ""; why = checkGroup(ms, counts, layout) {
		if time.Now().After(deadline) {
			t.Fatalf("group did not settle: %s", why)
		}
		<-tick.C
	}
}

// TestBalancerWithKgo runs the balancer inside real franz-go consumers
// against an in-memory cluster: three members, then one leaves.
func TestBalancerWithKgo(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "orders", "payments"), kfake.SeedTopics(3, "clicks"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	layout := Layout{Topics: map[string]int{"orders": 0, "payments": 0, "clicks": 1}}
	counts := map[string]int32{"orders": 4, "payments": 4, "clicks": 3}
	topics := []string{"orders", "payments", "clicks"}

	a := joinMember(t, c.ListenAddrs(), layout, topics...)
	b := joinMember(t, c.ListenAddrs(), layout, topics...)
	waitGroup(t, []*member{a, b}, counts, layout)

	third := joinMember(t, c.ListenAddrs(), layout, topics...)
	waitGroup(t, []*member{a, b, third}, counts, layout)

	before := b.snapshot()
	third.cl.LeaveGroup()
	waitGroup(t, []*member{a, b}, counts, layout)
	// Sticky: b keeps everything it had.
	after := b.snapshot()
	for tp, ps := range before {
		for p := range ps {
			if !after[tp][p] {
				t.Errorf("b lost %s/%d when another member left", tp, p)
			}
		}
	}
}
