package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/weir-dev/weir/streams"
)

// Description is what the metrics endpoint serves at /application: the
// instance, its topology as data, its tasks and stores with their progress,
// for `weir console` (and any script). Counters come from the instance's
// Prometheus registry, so they agree with /metrics.
type Description struct {
	Application string `json:"application"`
	Instance    string `json:"instance"`
	// QueryAddr is the instance's query endpoint (host:port), "" when
	// it has none (the QueryAddr option).
	QueryAddr string `json:"query_addr,omitempty"`
	// QueryStores are the stores the query endpoint renders (QueryStore),
	// sorted.
	QueryStores []string  `json:"query_stores,omitempty"`
	Now         time.Time `json:"now"`
	// Busy is true when the instance was too busy (a rebalance, a restore
	// or a long processing step held its lock) to list its tasks within
	// describeWait: Tasks then holds only the standby tasks, and the
	// counters are still current.
	Busy     bool                `json:"busy"`
	Topology TopologyDescription `json:"topology"`
	Tasks    []TaskDescription   `json:"tasks"`
	// SinceCommitMs is the time since the last commit attempt started, -1
	// before the first.
	SinceCommitMs int64 `json:"since_commit_ms"`
	CommitStalled bool  `json:"commit_stalled"`
	Commits       int64 `json:"commits"`
	// Processed counts the records processed per sub-topology (by the
	// tasks this instance ran since it started), for throughput.
	Processed map[string]int64 `json:"processed"`
	// Dropped counts records dropped on purpose (late records of closed
	// windows...), by reason.
	Dropped              map[string]int64 `json:"dropped"`
	DeserializationError int64            `json:"deserialization_errors"`
}

// TopologyDescription is streams.Topology as data; Text is its Describe.
type TopologyDescription struct {
	Text          string                   `json:"text"`
	Subtopologies []SubtopologyDescription `json:"subtopologies"`
	Nodes         []NodeDescription        `json:"nodes"`
	Stores        []StoreDescription       `json:"stores"`
}

// SubtopologyDescription is one streams.Subtopology.
type SubtopologyDescription struct {
	ID           int      `json:"id"`
	Global       bool     `json:"global"`
	Nodes        []string `json:"nodes"`
	Stores       []string `json:"stores"`
	SourceTopics []string `json:"source_topics"`
	SinkTopics   []string `json:"sink_topics"`
}

// NodeDescription is one streams.Node.
type NodeDescription struct {
	Name     string   `json:"name"`
	Kind     string   `json:"kind"`
	Parents  []string `json:"parents"`
	Children []string `json:"children"`
	Topics   []string `json:"topics"`
	Internal bool     `json:"internal"`
	Stores   []string `json:"stores"`
	Global   bool     `json:"global"`
}

// StoreDescription is one store of the topology.
type StoreDescription struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Global    bool   `json:"global"`
	InMemory  bool   `json:"in_memory"`
	Changelog string `json:"changelog,omitempty"`
}

// TaskDescription is one task of this instance, active or standby.
type TaskDescription struct {
	ID string `json:"id"`
	// Type is "active" or "standby".
	Type       string   `json:"type"`
	Partitions []string `json:"partitions"`
	// InputLag sums the input partitions' lag (records between the last
	// fetched offset and the high watermark).
	InputLag  int64           `json:"input_lag"`
	Processed int64           `json:"processed"`
	Dropped   int64           `json:"dropped"`
	Stores    []StoreProgress `json:"stores"`
}

// StoreProgress is a task's store and how far its restore (or, for a
// standby, its copy) has come.
type StoreProgress struct {
	Name     string `json:"name"`
	Restored int64  `json:"restored"`
	// Remaining is the changelog records still to replay, 0 once caught up.
	Remaining int64 `json:"remaining"`
}

// describeWait bounds how long /application waits for the instance's lock.
const describeWait = 300 * time.Millisecond

// serveDescription serves Describe as JSON.
func (a *App) serveDescription(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(a.Describe())
}

// Describe returns the instance's Description. It never waits longer than
// describeWait for the instance's locks.
func (a *App) Describe() Description {
	d := Description{Application: a.opts.ApplicationID, Instance: a.instance, QueryAddr: a.queryAdvertised, Now: time.Now().UTC(),
		Topology: describeTopology(a.topo, a.opts.ApplicationID), Tasks: []TaskDescription{}, SinceCommitMs: -1,
		Processed: map[string]int64{}, Dropped: map[string]int64{}}
	for name := range a.opts.QueryStores {
		d.QueryStores = append(d.QueryStores, name)
	}
	slices.Sort(d.QueryStores)
	m := gatherDescription(a)
	storesOf := map[int][]string{}
	for _, st := range d.Topology.Subtopologies {
		if !st.Global {
			storesOf[st.ID] = st.Stores
		}
	}
	if tryLockFor(&a.mu, describeWait) {
		for _, t := range a.sortedTasksLocked() {
			td := TaskDescription{ID: t.label, Type: "active", Partitions: []string{}}
			if t.sm != nil {
				for _, tp := range t.sm.Inputs() {
					td.Partitions = append(td.Partitions, tp.Topic+"/"+strconv.Itoa(int(tp.Partition)))
					td.InputLag += m.lag[tp.Topic+"/"+strconv.Itoa(int(tp.Partition))]
				}
			}
			d.Tasks = append(d.Tasks, td)
		}
		if lc := a.sm.LastCommit(); !lc.IsZero() {
			d.SinceCommitMs = time.Since(lc).Milliseconds()
		}
		a.mu.Unlock()
	} else {
		d.Busy = true
	}
	if s := a.standby; s != nil && tryLockFor(&s.mu, describeWait) {
		for _, st := range s.tasks {
			td := TaskDescription{ID: st.label, Type: "standby", Partitions: []string{}}
			for _, ss := range st.stores {
				td.Partitions = append(td.Partitions, ss.tp.Topic+"/"+strconv.Itoa(int(ss.tp.Partition)))
			}
			d.Tasks = append(d.Tasks, td)
		}
		s.mu.Unlock()
	} else if a.standby != nil {
		d.Busy = true
	}
	slices.SortFunc(d.Tasks, func(x, y TaskDescription) int {
		if x.Type != y.Type {
			return compareStr(x.Type, y.Type) // active first
		}
		return compareStr(x.ID, y.ID)
	})
	for i := range d.Tasks {
		t := &d.Tasks[i]
		t.Processed = m.processed[t.ID]
		t.Dropped = m.droppedByTask[t.ID]
		t.Stores = []StoreProgress{}
		if id, ok := parseTaskLabel(t.ID); ok {
			for _, name := range storesOf[int(id.Subtopology)] {
				p := m.stores[taskStore{t.ID, name}]
				p.Name = name
				t.Stores = append(t.Stores, p)
			}
		}
	}
	for task, n := range m.processed {
		if id, ok := parseTaskLabel(task); ok {
			d.Processed[strconv.Itoa(int(id.Subtopology))] += n
		}
	}
	d.Dropped = m.droppedByReason
	d.Commits, d.CommitStalled, d.DeserializationError = m.commits, m.stalled, m.deser
	return d
}

// tryLockFor takes mu if it can within wait.
func tryLockFor(mu *sync.Mutex, wait time.Duration) bool {
	deadline := time.Now().Add(wait)
	for !mu.TryLock() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond) // polling a lock that may be held for a restore
	}
	return true
}

func compareStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// parseTaskLabel parses a task's metrics label ("1_3", or "1_3-standby").
func parseTaskLabel(s string) (streams.TaskID, bool) {
	var sub, part int
	if n, err := fmt.Sscanf(s, "%d_%d", &sub, &part); n != 2 || err != nil {
		return streams.TaskID{}, false
	}
	return streams.TaskID{Subtopology: streams.SubtopologyID(sub), Partition: streams.Partition(part)}, true
}

func describeTopology(t *streams.Topology, appID string) TopologyDescription {
	d := TopologyDescription{Text: t.Describe(), Subtopologies: []SubtopologyDescription{}, Nodes: []NodeDescription{}, Stores: []StoreDescription{}}
	for _, st := range t.Subtopologies() {
		d.Subtopologies = append(d.Subtopologies, SubtopologyDescription{ID: int(st.ID), Global: st.Global,
			Nodes: orNone(st.Nodes), Stores: orNone(st.Stores), SourceTopics: orNone(st.SourceTopics), SinkTopics: orNone(st.SinkTopics)})
	}
	for _, n := range t.Nodes() {
		d.Nodes = append(d.Nodes, NodeDescription{Name: n.Name, Kind: n.Kind.String(), Parents: orNone(n.Parents),
			Children: orNone(n.Children), Topics: orNone(n.Topics), Internal: n.Internal, Stores: orNone(n.Stores), Global: n.Global})
	}
	for _, s := range t.Stores() {
		sd := StoreDescription{Name: s.Name, Kind: s.Kind.String(), Global: s.Global, InMemory: s.InMemory}
		switch {
		case s.SourceTopic != "":
			sd.Changelog = s.SourceTopic
		case !s.Unlogged:
			sd.Changelog = streams.InternalTopicName(appID, s.Name+"-changelog")
		}
		d.Stores = append(d.Stores, sd)
	}
	return d
}

func orNone(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// taskStore names a store of a task, by the task's metrics label.
type taskStore struct{ task, store string }

// gathered is what Describe reads from the instance's metrics.
type gathered struct {
	processed       map[string]int64 // task label
	droppedByTask   map[string]int64
	droppedByReason map[string]int64
	lag             map[string]int64 // "topic/partition"
	stores          map[taskStore]StoreProgress
	commits, deser  int64
	stalled         bool
}

func gatherDescription(a *App) gathered {
	g := gathered{processed: map[string]int64{}, droppedByTask: map[string]int64{}, droppedByReason: map[string]int64{},
		lag: map[string]int64{}, stores: map[taskStore]StoreProgress{}}
	mfs, err := a.m.reg.Gather()
	if err != nil {
		a.log.Warn("describe: gather metrics", "err", err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			l := labels(m)
			v := int64(m.GetCounter().GetValue() + m.GetGauge().GetValue())
			switch mf.GetName() {
			case "weir_records_processed_total":
				g.processed[l["task"]] += v
			case "weir_consumer_lag_records":
				g.lag[l["topic"]+"/"+l["partition"]] = v
			case "weir_restored_records_total":
				p := g.stores[taskStore{l["task"], l["store"]}]
				p.Restored = v
				g.stores[taskStore{l["task"], l["store"]}] = p
			case "weir_restore_remaining_records":
				p := g.stores[taskStore{l["task"], l["store"]}]
				p.Remaining = v
				g.stores[taskStore{l["task"], l["store"]}] = p
			case "weir_dropped_records_total":
				g.droppedByTask[l["task"]] += v
				g.droppedByReason[l["reason"]] += v
			case "weir_commits_total":
				g.commits = v
			case "weir_commit_stalled":
				g.stalled = v != 0
			case "weir_deserialization_errors_total":
				g.deser += v
			}
		}
	}
	return g
}

func labels(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}
