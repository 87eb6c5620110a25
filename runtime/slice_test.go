package runtime_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func listEnds(t *testing.T, cl *kgo.Client, topic string) map[int32]int64 {
	t.Helper()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// TestWindowedCountCommitRestore runs one instance of the windowed count,
// stops it cleanly, and starts a new instance with an empty state
// directory: it must restore the window store from the changelog and
// continue the counts exactly (a clean stop commits everything, so there
// is nothing to replay and no duplicate).
func TestWindowedCountCommitRestore(t *testing.T) {
	for _, cl := range clusters {
		t.Run(cl.name, func(t *testing.T) { testCommitRestore(t, cl.new(t, 6)) })
	}
}

// TestSeparateBrokerProcess runs the same topology against `weir broker`
// started as its own process: the runtime needs nothing in-process.
func TestSeparateBrokerProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/weir")
	}
	testCommitRestore(t, newWeirProcess(t, 6))
}

func testCommitRestore(t *testing.T, c *cluster) {
	p := newProducer(t, c)
	base := time.UnixMilli(1_700_000_000_000).Truncate(time.Minute)
	seq := 0
	p.send(t, 600, 20, base, &seq)

	first := startInstance(t, c, t.TempDir())
	waitCounts(t, c, p.expected())
	first.stop(t)

	// Same windows, more orders: counts must add up across the restart.
	seq = 0
	p.send(t, 300, 20, base, &seq)
	second := startInstance(t, c, t.TempDir())
	waitCounts(t, c, p.expected())
	second.stop(t)
}
