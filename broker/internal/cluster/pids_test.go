package cluster

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPIDBlock: ids come from the current block, then from the spare one;
// a spare is wanted when none is kept and the current block is nine
// tenths used; a block that arrives while the current one has ids left
// becomes the spare.
func TestPIDBlock(t *testing.T) {
	var b pidBlock
	if !b.lowLocked() {
		t.Fatal("an empty block does not ask for a spare")
	}
	if _, ok := b.takeLocked(); ok {
		t.Fatal("an id from no block")
	}
	b.installLocked(100, 10)
	var got []int64
	for range 9 {
		id, _ := b.takeLocked()
		got = append(got, id)
		if low := b.lowLocked(); low != (len(got) == 9) {
			t.Fatalf("after %d ids: low %v", len(got), low)
		}
	}
	b.installLocked(500, 10) // the spare: 109 is still to hand out
	if b.lowLocked() {
		t.Fatal("low with a spare kept")
	}
	for range 3 {
		id, ok := b.takeLocked()
		if !ok {
			t.Fatal("no id with a spare kept")
		}
		got = append(got, id)
	}
	want := []int64{100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 500, 501}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("ids (-want +got):\n%s", d)
	}
}
