package assign

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func tasks(subs int, parts int32) []TaskID {
	var out []TaskID
	for s := range subs {
		for p := range parts {
			out = append(out, TaskID{s, p})
		}
	}
	return out
}

func TestAssignFresh(t *testing.T) {
	got := Assign(Input{
		Tasks:   tasks(2, 3),
		Members: []Member{{ID: "b"}, {ID: "a"}},
	})
	want := Assignment{
		Active: map[string][]TaskID{
			"a": {{0, 0}, {0, 2}, {1, 1}},
			"b": {{0, 1}, {1, 0}, {1, 2}},
		},
		Standby: map[string][]TaskID{"a": {}, "b": {}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("assignment (-want +got):\n%s", d)
	}
}

func TestAssignJoinWithholdsMovedTasks(t *testing.T) {
	in := Input{
		Tasks: tasks(1, 4),
		Members: []Member{
			{ID: "a", Generation: 1, Owned: []TaskID{{0, 0}, {0, 1}, {0, 2}, {0, 3}}},
			{ID: "b"},
		},
	}
	got := Assign(in)
	want := Assignment{
		Active:   map[string][]TaskID{"a": {{0, 0}, {0, 1}}, "b": {}},
		Standby:  map[string][]TaskID{"a": {}, "b": {}},
		Withheld: []TaskID{{0, 2}, {0, 3}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("first round (-want +got):\n%s", d)
	}
	// a revoked {0,2} and {0,3}; the second round hands them to b.
	in.Members[0].Owned = got.Active["a"]
	in.Members[0].Generation = 2
	got = Assign(in)
	want = Assignment{
		Active:  map[string][]TaskID{"a": {{0, 0}, {0, 1}}, "b": {{0, 2}, {0, 3}}},
		Standby: map[string][]TaskID{"a": {}, "b": {}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("second round (-want +got):\n%s", d)
	}
}

// TestAssignJoinerGetsItsStateBack: an instance restarts with its state
// directory and joins a member that took over all its tasks meanwhile. The
// owner sheds the tasks the joiner holds state for, and the next round
// hands them to it; without that state the owner keeps the lowest tasks
// (the control), so the choice comes from the advertised state.
func TestAssignJoinerGetsItsStateBack(t *testing.T) {
	all := tasks(1, 6)
	odd := []TaskID{{0, 1}, {0, 3}, {0, 5}}
	for _, tc := range []struct {
		name      string
		state     []TaskID
		keep, get []TaskID
	}{
		{"with state", odd, []TaskID{{0, 0}, {0, 2}, {0, 4}}, odd},
		{"without state", nil, []TaskID{{0, 0}, {0, 1}, {0, 2}}, []TaskID{{0, 3}, {0, 4}, {0, 5}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{
				Tasks: all,
				Members: []Member{
					// "a" has run every task since b went away, and holds
					// state for all of them.
					{ID: "a", Generation: 4, Owned: all, State: all},
					{ID: "b", State: tc.state},
				},
			}
			got := Assign(in)
			if d := cmp.Diff(tc.keep, got.Active["a"]); d != "" {
				t.Fatalf("first round, a keeps (-want +got):\n%s", d)
			}
			in.Members[0].Owned = got.Active["a"]
			in.Members[0].Generation = 5
			got = Assign(in)
			if d := cmp.Diff(tc.get, got.Active["b"]); d != "" {
				t.Fatalf("second round, b gets (-want +got):\n%s", d)
			}
		})
	}
}

func TestAssignStaleClaimDoesNotStopOwner(t *testing.T) {
	// "a" missed a generation and still claims {0,0}, which "b" has run
	// since. b keeps it, nothing is withheld, and a (not assigned it)
	// revokes its stale claim.
	got := Assign(Input{
		Tasks: tasks(1, 2),
		Members: []Member{
			{ID: "a", Generation: 3, Owned: []TaskID{{0, 0}, {0, 1}}},
			{ID: "b", Generation: 5, Owned: []TaskID{{0, 0}}},
		},
	})
	want := Assignment{
		Active:  map[string][]TaskID{"a": {{0, 1}}, "b": {{0, 0}}},
		Standby: map[string][]TaskID{"a": {}, "b": {}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
}

func TestAssignPrefersLocalState(t *testing.T) {
	// "c" restarted under a new member id but still has state for 0_1 and
	// 0_4: free tasks go there first.
	got := Assign(Input{
		Tasks: tasks(1, 6),
		Members: []Member{
			{ID: "a", Generation: 4, Owned: []TaskID{{0, 0}, {0, 3}}},
			{ID: "b", Generation: 4, Owned: []TaskID{{0, 2}, {0, 5}}},
			{ID: "c", State: []TaskID{{0, 1}, {0, 4}}},
		},
	})
	want := map[string][]TaskID{"a": {{0, 0}, {0, 3}}, "b": {{0, 2}, {0, 5}}, "c": {{0, 1}, {0, 4}}}
	if d := cmp.Diff(want, got.Active); d != "" {
		t.Fatalf("active (-want +got):\n%s", d)
	}
}

func TestAssignStandbys(t *testing.T) {
	got := Assign(Input{
		Tasks:    tasks(1, 3),
		Members:  []Member{{ID: "a"}, {ID: "b"}, {ID: "c", State: []TaskID{{0, 0}}}},
		Standbys: 1,
	})
	for id, ts := range got.Standby {
		for _, st := range ts {
			if slices.Contains(got.Active[id], st) {
				t.Errorf("member %s has task %v both active and standby", id, st)
			}
		}
	}
	n := 0
	for _, ts := range got.Standby {
		n += len(ts)
	}
	if n != 3 {
		t.Errorf("got %d standby tasks, want 3 (one per task): %v", n, got.Standby)
	}
}

// TestAssignStandbyOnMovingTasksDestination checks that a task withheld
// while it moves has its standby on the member it moves to, which reads
// the changelog until it takes the task over, and not on its owner, which
// still runs it this round.
func TestAssignStandbyOnMovingTasksDestination(t *testing.T) {
	got := Assign(Input{
		Tasks: tasks(1, 4),
		Members: []Member{
			{ID: "a", Generation: 1, Owned: tasks(1, 4)},
			{ID: "b"},
		},
		Standbys: 1,
	})
	if len(got.Withheld) != 2 {
		t.Fatalf("withheld %v, want two tasks moving to b", got.Withheld)
	}
	for _, w := range got.Withheld {
		if !slices.Contains(got.Standby["b"], w) {
			t.Errorf("withheld task %v has no standby on b (standbys %v)", w, got.Standby)
		}
		if slices.Contains(got.Standby["a"], w) {
			t.Errorf("withheld task %v has a standby on its owner a", w)
		}
	}
	if d := cmp.Diff(map[string][]TaskID{"a": {}, "b": tasks(1, 4)}, got.Standby); d != "" {
		t.Errorf("standbys (-want +got):\n%s", d)
	}
}

// TestAssignModel drives the assignor through random joins, leaves and
// crashes with a simulation of the cooperative protocol, and checks after
// every round that no task runs on two members, and after every converged
// rebalance that the assignment is complete, balanced and sticky.
func TestAssignModel(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for iter := range 200 {
		subs := 1 + rng.IntN(3)
		parts := int32(1 + rng.IntN(8))
		all := tasks(subs, parts)
		type mem struct {
			gen   int32
			owned []TaskID
		}
		group := map[string]*mem{}
		next := 0
		gen := int32(0)

		// rebalance runs rounds until nothing is withheld and returns the
		// owner of each task after convergence.
		rebalance := func(step string) map[TaskID]string {
			for round := 0; ; round++ {
				if round == 2 {
					t.Fatalf("iter %d %s: not converged after 2 rounds", iter, step)
				}
				gen++
				var in Input
				in.Tasks = all
				for id, m := range group {
					in.Members = append(in.Members, Member{ID: id, Generation: m.gen, Owned: m.owned})
				}
				a := Assign(in)
				running := map[TaskID]string{}
				for id, m := range group {
					for _, tk := range m.owned {
						running[tk] = id
					}
				}
				for id, ts := range a.Active {
					for _, tk := range ts {
						if r, ok := running[tk]; ok && r != id {
							t.Fatalf("iter %d %s: task %v handed to %s while %s runs it", iter, step, tk, id, r)
						}
					}
				}
				for id, m := range group {
					m.owned, m.gen = a.Active[id], gen
				}
				if len(a.Withheld) == 0 {
					break
				}
			}
			owners := map[TaskID]string{}
			min, max := len(all), 0
			for id, m := range group {
				for _, tk := range m.owned {
					if o, ok := owners[tk]; ok {
						t.Fatalf("iter %d %s: task %v on %s and %s", iter, step, tk, o, id)
					}
					owners[tk] = id
				}
				min, max = minInt(min, len(m.owned)), maxInt(max, len(m.owned))
			}
			if len(group) > 0 {
				if len(owners) != len(all) {
					t.Fatalf("iter %d %s: %d of %d tasks assigned", iter, step, len(owners), len(all))
				}
				if max-min > 1 {
					t.Fatalf("iter %d %s: unbalanced, task counts from %d to %d", iter, step, min, max)
				}
			}
			return owners
		}

		before := rebalance("start")
		for step := range 12 {
			var desc, joined, left string
			switch op := rng.IntN(3); {
			case op == 0 || len(group) == 0:
				joined = fmt.Sprintf("m%03d", next)
				next++
				group[joined] = &mem{}
				desc = "join " + joined
			case op == 1:
				ids := sortedKeys(group)
				left = ids[rng.IntN(len(ids))]
				delete(group, left)
				desc = "leave " + left
			default:
				desc = "rejoin-all"
			}
			desc = fmt.Sprintf("step %d (%s)", step, desc)
			after := rebalance(desc)
			for tk, was := range before {
				now, ok := after[tk]
				switch {
				case was == left || now == was || !ok:
				case joined != "" && now == joined:
					// Only the newcomer receives moved tasks.
				default:
					t.Fatalf("iter %d %s: task %v moved from %s to %s", iter, desc, tk, was, now)
				}
			}
			before = after
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func minInt(a, b int) int { return min(a, b) }
func maxInt(a, b int) int { return max(a, b) }
