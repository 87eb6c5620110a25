package stateengine

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A grouped table under random inserts and removals (heads, tails and
// entries between) against a map: each key's list holds exactly the
// model's entries of that key, in descending (end, start) order, and its
// back links (gprev) mirror its forward links.
func TestGroupedTableLinks(t *testing.T) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 11))
	for _, kind := range []*timedKind{windowKind, sessionKind} {
		t.Run(kind.what, func(t *testing.T) {
			tab := newGroupedTable(kind)
			type pos struct{ start, end int64 }
			model := map[string]map[pos]*centry{}
			for op := range 20_000 {
				user := fmt.Sprintf("k%d", rng.IntN(8))
				end := int64(rng.IntN(30))
				start := end
				if kind == sessionKind {
					start -= int64(rng.IntN(3))
				}
				key := kind.appendKey(nil, 0, []byte(user), start, end)
				en := tab.lookup(key)
				if (en == nil) != (model[user][pos{start, end}] == nil) {
					t.Fatalf("op %d: lookup of %s (%d, %d): got %v, model %v", op, user, start, end, en, model[user][pos{start, end}])
				}
				switch {
				case en == nil:
					en = tab.insert(key, []byte("v"))
					if model[user] == nil {
						model[user] = map[pos]*centry{}
					}
					model[user][pos{start, end}] = en
				case rng.IntN(2) == 0:
					tab.remove(en)
					delete(model[user], pos{start, end})
				}
				if op%97 != 0 {
					continue
				}
				for u, m := range model {
					var want, got []pos
					for p := range m {
						want = append(want, p)
					}
					slices.SortFunc(want, func(a, b pos) int {
						if a.end != b.end {
							return int(b.end - a.end)
						}
						return int(b.start - a.start)
					})
					ek := kind.appendKey(nil, 0, []byte(u), 0, 0)
					ek, _, _ = kind.splitKey(ek)
					var prev *centry
					for e := tab.group(ek); e != nil; e = e.gnext {
						if e.gprev != prev {
							t.Fatalf("op %d: key %s: entry (%d, %d) links back to %p, want %p", op, u, e.start, e.end, e.gprev, prev)
						}
						got = append(got, pos{e.start, e.end})
						prev = e
					}
					if diff := cmp.Diff(want, got, cmp.AllowUnexported(pos{})); diff != "" {
						t.Fatalf("op %d: key %s: list differs from the model (-want +got):\n%s", op, u, diff)
					}
				}
			}
		})
	}
}
