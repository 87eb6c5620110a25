package runtime_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weir-dev/weir/streams"
)

// TestRestartedInstanceGetsItsStateBack: two instances run the windowed
// count and stop; one (A) comes back first and runs every task, then the
// other (B) comes back with its state directory. From its first join, B
// advertises the tasks its state directory holds (read from the stores'
// checkpoints at startup), so the assignor moves exactly those tasks to it
// and B restores only the changelog tail A wrote meanwhile. B first ran
// tasks 0-2 (it started alone, and kept the lowest tasks when A joined
// with no state); without the advertisement A, owning every task, would
// keep 0-2 again and B would get 3-5, whose state it lacks (see
// TestAssignJoinerGetsItsStateBack's control).
func TestRestartedInstanceGetsItsStateBack(t *testing.T) {
	c := newWeir(t, 6)
	p := newProducer(t, c)
	base := time.UnixMilli(1_700_000_000_000).Truncate(time.Minute)
	seq := 0
	dirA, dirB := t.TempDir(), t.TempDir()
	b := startInstance(t, c, dirB)
	waitTasks(t, 6, b)
	a := startInstance(t, c, dirA)
	waitTasks(t, 6, a, b)
	p.send(t, 600, 30, base, &seq)
	waitCounts(t, c, p.expected())
	held := b.app.Tasks()
	// B first: A takes B's tasks over for the moment it still runs, and
	// B's state directory keeps only the state of the tasks it held.
	b.stop(t)
	a.stop(t)
	if want := []streams.TaskID{{Partition: 0}, {Partition: 1}, {Partition: 2}}; !slices.Equal(held, want) {
		t.Fatalf("B ran %v before the restart, want %v", held, want)
	}
	before := changelogEnds(t, c)

	a = startInstance(t, c, dirA)
	waitTasks(t, 6, a)
	p.send(t, 300, 30, base, &seq)
	waitCounts(t, c, p.expected())
	ends := changelogEnds(t, c)

	b = startInstance(t, c, dirB)
	waitTasks(t, 6, a, b)
	if diff := cmp.Diff(held, b.app.Tasks()); diff != "" {
		t.Fatalf("B's tasks after its restart (-held before +now):\n%s", diff)
	}
	restored := restoredPerTask(t, b.app)
	var tail, replayed float64
	for _, id := range held {
		tail += float64(ends[int32(id.Partition)] - before[int32(id.Partition)])
		replayed += restored[id.String()]
	}
	t.Logf("B got back %v; restored %v changelog records, the tail written while it was away holds %v", held, replayed, tail)
	if replayed != tail {
		t.Errorf("B restored %v changelog records, want the tail of %v", replayed, tail)
	}
	waitCounts(t, c, p.expected())
	a.stop(t)
	b.stop(t)
}
