package assign

import (
	"cmp"
	"fmt"
	"slices"
)

// TaskID names a task: a sub-topology times a partition number. All input
// topics of a sub-topology are co-partitioned, so partition p of each of
// them belongs to the same task.
type TaskID struct {
	Subtopology int
	Partition   int32
}

// String formats the task as "subtopology_partition", e.g. "0_3".
func (t TaskID) String() string { return fmt.Sprintf("%d_%d", t.Subtopology, t.Partition) }

// Compare orders tasks by sub-topology, then partition.
func (t TaskID) Compare(o TaskID) int {
	if c := cmp.Compare(t.Subtopology, o.Subtopology); c != 0 {
		return c
	}
	return cmp.Compare(t.Partition, o.Partition)
}

// Member is one group member as the assignor sees it.
type Member struct {
	// ID is the group member id.
	ID string
	// Generation is the last generation the member took part in; a claim
	// from a higher generation beats a claim from a lower one.
	Generation int32
	// Owned are the active tasks the member is running now.
	Owned []TaskID
	// State are tasks the member holds local state for (standbys, or
	// tasks it ran before a restart). Preferred when placing a free task.
	State []TaskID
}

// Input is everything the assignor decides from.
type Input struct {
	// Tasks is every task of the application.
	Tasks []TaskID
	// Members are the group's members. Order does not matter: the
	// assignor sorts by ID so that the output is deterministic.
	Members []Member
	// Standbys is the number of standby replicas per task (default 0).
	Standbys int
}

// Assignment is the assignor's output.
type Assignment struct {
	// Active maps member ID to the active tasks it runs from now on,
	// sorted. Every member of the input has an entry.
	Active map[string][]TaskID
	// Standby maps member ID to the standby tasks it keeps warm, sorted.
	Standby map[string][]TaskID
	// Withheld are tasks that move from a current owner to another member:
	// nobody runs them this round; the owner revokes them and rejoins, and
	// the next round assigns them. Sorted.
	Withheld []TaskID
}

// Assign computes an assignment. It is deterministic: the same input (up to
// member order) always gives the same output.
func Assign(in Input) Assignment {
	members := slices.Clone(in.Members)
	slices.SortFunc(members, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	tasks := slices.Clone(in.Tasks)
	slices.SortFunc(tasks, TaskID.Compare)
	tasks = slices.Compact(tasks)

	out := Assignment{
		Active:  make(map[string][]TaskID, len(members)),
		Standby: make(map[string][]TaskID, len(members)),
	}
	for _, m := range members {
		out.Active[m.ID] = []TaskID{}
		out.Standby[m.ID] = []TaskID{}
	}
	if len(members) == 0 {
		return out
	}

	valid := make(map[TaskID]bool, len(tasks))
	for _, t := range tasks {
		valid[t] = true
	}

	// The current owner of each task is the claimant with the highest
	// generation (ties: lowest member ID, by sort order).
	owner := make(map[TaskID]int, len(tasks))
	for i, m := range members {
		for _, t := range m.Owned {
			if !valid[t] {
				continue
			}
			if o, ok := owner[t]; !ok || m.Generation > members[o].Generation {
				owner[t] = i
			}
		}
	}
	prev := make([][]TaskID, len(members))
	for _, t := range tasks {
		if o, ok := owner[t]; ok {
			prev[o] = append(prev[o], t)
		}
	}

	// Capacities: base tasks each, and the extra ones go to the members
	// that owned the most, so that the fewest tasks move.
	n := len(members)
	base, extra := len(tasks)/n, len(tasks)%n
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(len(prev[b]), len(prev[a])) })
	capacity := make([]int, n)
	for rank, i := range order {
		capacity[i] = base
		if rank < extra {
			capacity[i]++
		}
	}

	hasState := make([]map[TaskID]bool, n)
	stateHolders := make(map[TaskID]int, len(tasks))
	for i, m := range members {
		hasState[i] = make(map[TaskID]bool, len(m.State))
		for _, t := range m.State {
			if valid[t] && !hasState[i][t] {
				hasState[i][t] = true
				stateHolders[t]++
			}
		}
	}

	// Sticky step: each member keeps its owned tasks up to its capacity.
	// It keeps a spread over sub-topologies: tasks are taken round-robin
	// by sub-topology so that shedding excess does not empty one
	// sub-topology on a member. A member over capacity sheds first the
	// tasks another member holds local state for (an instance restarted
	// with its state directory, or a standby), so that those move to warm
	// state rather than to an empty store.
	active := make([][]TaskID, n)
	assigned := make(map[TaskID]int, len(tasks))
	for i := range members {
		owned := prev[i]
		if len(owned) > capacity[i] {
			elsewhere := func(t TaskID) bool {
				others := stateHolders[t]
				if hasState[i][t] {
					others--
				}
				return others > 0
			}
			owned = slices.Clone(owned)
			slices.SortStableFunc(owned, func(a, b TaskID) int {
				ea, eb := elsewhere(a), elsewhere(b)
				switch {
				case ea == eb:
					return 0
				case eb:
					return -1
				default:
					return 1
				}
			})
		}
		keep := spread(owned, capacity[i])
		for _, t := range keep {
			assigned[t] = i
		}
		active[i] = keep
	}

	// Placement step: every free task goes to a member with room. Prefer,
	// in order: a member with local state for it, the member with the most
	// room, the member running the fewest tasks of its sub-topology, the
	// lowest ID.
	for _, t := range tasks {
		if _, ok := assigned[t]; ok {
			continue
		}
		best := -1
		for i := range members {
			if len(active[i]) >= capacity[i] {
				continue
			}
			if best < 0 || better(t, i, best, active, capacity, hasState) {
				best = i
			}
		}
		if best < 0 {
			panic("assign: no member has room for a task; capacities do not sum to the task count")
		}
		assigned[t] = best
		active[best] = append(active[best], t)
	}

	// Cooperative step: a task assigned to a member other than its current
	// owner is withheld for this round. Claims from older generations than
	// the owner's are stale and do not hold a task back from its owner:
	// the stale claimant is not assigned the task, so it revokes it.
	for i, m := range members {
		kept := make([]TaskID, 0, len(active[i]))
		for _, t := range active[i] {
			if o, ok := owner[t]; ok && o != i {
				out.Withheld = append(out.Withheld, t)
				continue
			}
			kept = append(kept, t)
		}
		slices.SortFunc(kept, TaskID.Compare)
		out.Active[m.ID] = kept
	}
	slices.SortFunc(out.Withheld, TaskID.Compare)

	if in.Standbys > 0 {
		// A withheld task still runs on its owner this round; its first
		// standby goes to the member it moves to, so that member reads the
		// changelog until it takes the task over next round.
		runs := make(map[TaskID]int, len(assigned))
		for t, i := range assigned {
			runs[t] = i
		}
		moving := map[TaskID]int{}
		for _, t := range out.Withheld {
			moving[t] = assigned[t]
			runs[t] = owner[t]
		}
		assignStandbys(in.Standbys, tasks, members, runs, moving, hasState, out.Standby)
	}
	return out
}

// better reports whether member i is a better home than member j for task t.
func better(t TaskID, i, j int, active [][]TaskID, capacity []int, hasState []map[TaskID]bool) bool {
	if hasState[i][t] != hasState[j][t] {
		return hasState[i][t]
	}
	ri, rj := capacity[i]-len(active[i]), capacity[j]-len(active[j])
	if ri != rj {
		return ri > rj
	}
	si, sj := countSub(active[i], t.Subtopology), countSub(active[j], t.Subtopology)
	if si != sj {
		return si < sj
	}
	return i < j
}

func countSub(ts []TaskID, sub int) int {
	c := 0
	for _, t := range ts {
		if t.Subtopology == sub {
			c++
		}
	}
	return c
}

// spread returns up to limit of the sorted tasks ts, taken round-robin over
// sub-topologies.
func spread(ts []TaskID, limit int) []TaskID {
	if len(ts) <= limit {
		return slices.Clone(ts)
	}
	bySub := map[int][]TaskID{}
	var subs []int
	for _, t := range ts {
		if _, ok := bySub[t.Subtopology]; !ok {
			subs = append(subs, t.Subtopology)
		}
		bySub[t.Subtopology] = append(bySub[t.Subtopology], t)
	}
	out := make([]TaskID, 0, limit)
	for len(out) < limit {
		for _, s := range subs {
			if len(out) == limit {
				break
			}
			if q := bySub[s]; len(q) > 0 {
				out = append(out, q[0])
				bySub[s] = q[1:]
			}
		}
	}
	return out
}

// assignStandbys places k standby copies of every task on members other than
// the one running it (active), the first on the member a withheld task moves
// to (moving), the others preferably on members that already hold its
// state, then the member with the fewest standbys. A task gets fewer than k
// standbys when there are not enough other members.
func assignStandbys(k int, tasks []TaskID, members []Member, active, moving map[TaskID]int, hasState []map[TaskID]bool, out map[string][]TaskID) {
	count := make([]int, len(members))
	for _, t := range tasks {
		placed := map[int]bool{active[t]: true}
		left := k
		if dest, ok := moving[t]; ok && !placed[dest] {
			placed[dest] = true
			count[dest]++
			out[members[dest].ID] = append(out[members[dest].ID], t)
			left--
		}
		for range left {
			best := -1
			for i := range members {
				if placed[i] {
					continue
				}
				if best < 0 ||
					(hasState[i][t] && !hasState[best][t]) ||
					(hasState[i][t] == hasState[best][t] && count[i] < count[best]) {
					best = i
				}
			}
			if best < 0 {
				break
			}
			placed[best] = true
			count[best]++
			out[members[best].ID] = append(out[members[best].ID], t)
		}
	}
}
