package protocol

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func produceN(t *testing.T, b *groupBroker, topic, prefix string, n int) {
	t.Helper()
	cl := b.client(kgo.DefaultProduceTopic(topic))
	for i := 0; i < n; i++ {
		v := prefix + strconv.Itoa(i)
		cl.Produce(context.Background(), &kgo.Record{Key: []byte(v), Value: []byte(v)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Error(err)
			}
		})
	}
	if err := cl.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func seenAll(c *consumption, prefix string, n int) func() bool {
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i := 0; i < n; i++ {
			if c.seen[prefix+strconv.Itoa(i)] == 0 {
				return false
			}
		}
		return true
	}
}

// Fan-out: two groups on one topic each receive every record.
func TestGroupFanOut(t *testing.T) {
	b := startGroupBroker(t, testGroupOptions())
	b.createTopic("orders", 3)
	const n = 300
	produceN(t, b, "orders", "r", n)

	analytics, notifications := newConsumption(), newConsumption()
	a1 := startMember(t, b, "a1", "analytics", "orders", analytics)
	n1 := startMember(t, b, "n1", "notifications", "orders", notifications)
	n2 := startMember(t, b, "n2", "notifications", "orders", notifications)
	waitFor(t, "analytics to read every record", 20*time.Second, seenAll(analytics, "r", n))
	waitFor(t, "notifications to read every record", 20*time.Second, seenAll(notifications, "r", n))
	for _, m := range []*member{a1, n1, n2} {
		m.leave(t)
	}
}

// A group with more members than partitions leaves the extra members idle
// and takes them in when a member leaves. Uses the eager range balancer.
func TestGroupMoreMembersThanPartitions(t *testing.T) {
	b := startGroupBroker(t, testGroupOptions())
	b.createTopic("orders", 2)
	c := newConsumption()
	rng := kgo.Balancers(kgo.RangeBalancer())
	ms := []*member{
		startMember(t, b, "x1", "g", "orders", c, rng),
		startMember(t, b, "x2", "g", "orders", c, rng),
		startMember(t, b, "x3", "g", "orders", c, rng),
	}
	owners := func(ms []*member) (busy []*member, idle []*member) {
		for _, m := range ms {
			if len(m.owned()) == 1 {
				busy = append(busy, m)
			} else if len(m.owned()) == 0 {
				idle = append(idle, m)
			}
		}
		return busy, idle
	}
	waitFor(t, "two busy members and one idle", 20*time.Second, func() bool {
		busy, idle := owners(ms)
		return len(busy) == 2 && len(idle) == 1 && busy[0].owned()[0] != busy[1].owned()[0]
	})
	produceN(t, b, "orders", "a", 100)
	waitFor(t, "the first records", 20*time.Second, seenAll(c, "a", 100))

	busy, idle := owners(ms)
	busy[0].leave(t)
	rest := []*member{busy[1], idle[0]}
	waitFor(t, "the idle member to take the leaver's partition", 20*time.Second, func() bool {
		b2, i2 := owners(rest)
		return len(b2) == 2 && len(i2) == 0 && b2[0].owned()[0] != b2[1].owned()[0]
	})
	produceN(t, b, "orders", "b", 100)
	waitFor(t, "the later records", 20*time.Second, seenAll(c, "b", 100))
	for _, m := range rest {
		m.leave(t)
	}
}
