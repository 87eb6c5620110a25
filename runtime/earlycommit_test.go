package runtime_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/runtime"
)

// TestEarlyCommitDoesNotWaitForAcks: with the smallest memory budget, the
// count store's uncommitted batch passes its share while the task
// processes (the write-back cache evicts into it), and the store commits
// early. That commit checkpoints at the changelog offset acknowledged so
// far: with every Produce held back (no acknowledgement comes), processing
// goes on. An early commit that waited for the changelog's
// acknowledgements, with a context nothing ends, held App.mu (the poll
// loop, a commit's cache flush) for as long as the producer took.
func TestEarlyCommitDoesNotWaitForAcks(t *testing.T) {
	c := newWeir(t, 1)
	p := newProducer(t, c)
	base := time.UnixMilli(1_700_000_000_000).Truncate(time.Minute)
	seq := 0
	g := newAckGate()
	// NB: no commit is due during the test (a commit due while the last
	// is pending would wait for its acknowledgements, CommitTimeout), and
	// the producer has room for everything the orders make.
	in := startInstance(t, c, t.TempDir(), runtime.ClientOptions(kgo.Dialer(g.dial)),
		runtime.CommitInterval(time.Hour), runtime.MemoryBudget(16<<20), runtime.MaxBufferedProduce(1_000_000))
	t.Cleanup(func() { _ = g.Release() })
	in.waitMetricAbove(t, "weir_active_tasks", 0)

	g.Hold()
	// One customer per order: 100000 windows, about twice the share of
	// the batches (1.6 MiB) in writes.
	const n = 100_000
	p.send(t, n, n, base, &seq)
	waitFor(t, time.Minute, "every order processed with the producer's requests held back", func() error {
		in.checkRunning(t)
		if got := metricSum(t, in.app, "weir_records_processed_total"); got < n {
			return fmt.Errorf("%v of %d orders processed", got, n)
		}
		if g.Held() == 0 {
			return errors.New("no produce request held back")
		}
		return nil
	})
	if err := g.Release(); err != nil {
		t.Fatal(err)
	}
	// Close commits: the cached counts go out then.
	in.stop(t)
	waitCounts(t, c, p.expected())
}
