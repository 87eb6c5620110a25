package ownership

import "slices"

// Observation is what a broker knows of one partition of a coordinator's
// internal topic at one moment.
type Observation struct {
	// Leader reports whether the metadata names this broker the
	// partition's leader.
	Leader bool
	// Epoch is the leader epoch the metadata names.
	Epoch int32
	// Ready reports whether this broker's replica leads the partition in
	// Epoch and its high watermark has reached the first offset of Epoch:
	// every record an earlier leader acknowledged is then readable here.
	Ready bool
}

// Tracker decides which partitions a coordinator serves. It is a pure state
// machine: no goroutines, no I/O, no clock. Its caller observes the
// partitions, calls Step, unloads and loads what it says, and reports each
// load's outcome with Loaded or Failed.
//
// A partition is loaded when it is Ready and not loaded; it is unloaded
// when the metadata no longer names this broker its leader, or names
// another epoch than the one it was loaded at (after which it is loaded
// again once Ready in the new epoch). A loaded partition that is briefly
// not Ready in the same epoch stays loaded: only a leader change ends an
// epoch.
//
// A Tracker is not safe for concurrent use.
type Tracker struct {
	// loaded maps a served partition to the leader epoch it was loaded at.
	loaded map[int32]int32
	// loading maps a partition Step asked to load to its epoch, until
	// Loaded or Failed.
	loading map[int32]int32
}

// NewTracker returns a tracker serving no partition.
func NewTracker() *Tracker {
	return &Tracker{loaded: map[int32]int32{}, loading: map[int32]int32{}}
}

// Step takes the observations (index = partition) and returns the
// partitions to unload and those to load, each in increasing order. A
// partition to unload is forgotten at once; one to load counts as loading
// until Loaded or Failed (a Step meanwhile does not ask for it again).
func (t *Tracker) Step(obs []Observation) (unload, load []int32) {
	for p, e := range t.loaded {
		if int(p) >= len(obs) || !obs[p].Leader || obs[p].Epoch != e {
			unload = append(unload, p)
			delete(t.loaded, p)
		}
	}
	for p, o := range obs {
		p := int32(p)
		if _, ok := t.loaded[p]; ok {
			continue
		}
		if _, ok := t.loading[p]; ok {
			continue
		}
		if o.Leader && o.Ready {
			load = append(load, p)
			t.loading[p] = o.Epoch
		}
	}
	slices.Sort(unload)
	slices.Sort(load)
	return unload, load
}

// Loaded records that partition p, asked for by Step, is now served.
func (t *Tracker) Loaded(p int32) {
	e, ok := t.loading[p]
	if !ok {
		return
	}
	delete(t.loading, p)
	t.loaded[p] = e
}

// Failed records that partition p, asked for by Step, could not be loaded;
// the next Step asks for it again if it is still Ready.
func (t *Tracker) Failed(p int32) { delete(t.loading, p) }

// Serving returns the served partitions and their epochs, in increasing
// partition order.
func (t *Tracker) Serving() (parts []int32, epochs []int32) {
	for p := range t.loaded {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	for _, p := range parts {
		epochs = append(epochs, t.loaded[p])
	}
	return parts, epochs
}
