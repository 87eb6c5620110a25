package metadata

import (
	"bytes"
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
)

// model is a trivial metadata image: plain maps and slices, entries made
// atomic by copying the whole model first, and the invariants checked over
// everything after each entry. TestImageMatchesModel applies the same
// random entries to it and to an Image and compares what they answer.
type model struct {
	applied  uint64
	brokers  map[NodeID]Broker
	maxEpoch BrokerEpoch
	topics   []modelTopic
	configs  map[ConfigResource]map[string]string
	last     *ProducerIDsRecord
}

type modelTopic struct {
	id    TopicID
	name  TopicName
	parts []Partition
}

func newModel() *model {
	return &model{brokers: map[NodeID]Broker{}, configs: map[ConfigResource]map[string]string{}}
}

func (m *model) copy() *model {
	c := &model{applied: m.applied, brokers: map[NodeID]Broker{}, maxEpoch: m.maxEpoch, configs: map[ConfigResource]map[string]string{}}
	for k, b := range m.brokers {
		b.Listeners = slices.Clone(b.Listeners)
		c.brokers[k] = b
	}
	for _, t := range m.topics {
		t.parts = slices.Clone(t.parts)
		c.topics = append(c.topics, t)
	}
	for r, kv := range m.configs {
		c.configs[r] = map[string]string{}
		for k, v := range kv {
			c.configs[r][k] = v
		}
	}
	if m.last != nil {
		l := *m.last
		c.last = &l
	}
	return c
}

func (m *model) topic(id TopicID) *modelTopic {
	for i := range m.topics {
		if m.topics[i].id == id {
			return &m.topics[i]
		}
	}
	return nil
}

func (m *model) topicNamed(name TopicName) *modelTopic {
	for i := range m.topics {
		if m.topics[i].name == name {
			return &m.topics[i]
		}
	}
	return nil
}

func (m *model) next() ProducerID {
	if m.last == nil {
		return 0
	}
	return m.last.First + ProducerID(m.last.Size)
}

func distinct(ns []NodeID) bool {
	for i, n := range ns {
		if n < 0 || slices.Contains(ns[:i], n) {
			return false
		}
	}
	return true
}

func subset(a, b []NodeID) bool {
	for _, n := range a {
		if !slices.Contains(b, n) {
			return false
		}
	}
	return true
}

func (m *model) unfenced(n NodeID) bool {
	b, ok := m.brokers[n]
	return ok && !b.Fenced
}

// apply applies an entry; on refusal m is unchanged but for the applied
// offset. It reports whether the entry was accepted.
func (m *model) apply(index uint64, records []Record) bool {
	saved := m.copy()
	ok := m.applyAll(records)
	if !ok {
		*m = *saved
	}
	m.applied = index
	return ok
}

func (m *model) applyAll(records []Record) bool {
	for _, r := range records {
		if !m.one(r) {
			return false
		}
	}
	for _, t := range m.topics {
		if len(t.parts) == 0 {
			return false
		}
		for _, p := range t.parts {
			if p.Leader != NoLeader && !m.unfenced(p.Leader) {
				return false
			}
		}
	}
	return true
}

func (m *model) one(r Record) bool {
	switch r := r.(type) {
	case RegisterBrokerRecord:
		old, had := m.brokers[r.Node]
		if r.Node < 0 || r.Epoch <= 0 || had && r.Epoch <= old.Epoch || len(r.Listeners) == 0 {
			return false
		}
		names := map[string]bool{}
		for _, l := range r.Listeners {
			if l.Name == "" || l.Host == "" || names[l.Name] {
				return false
			}
			names[l.Name] = true
		}
		m.brokers[r.Node] = Broker{ID: r.Node, Incarnation: r.Incarnation, Epoch: r.Epoch, Listeners: slices.Clone(r.Listeners), Rack: r.Rack, Fenced: r.Fenced}
		m.maxEpoch = max(m.maxEpoch, r.Epoch)
	case FenceBrokerRecord, UnfenceBrokerRecord, UnregisterBrokerRecord:
		var n NodeID
		var e BrokerEpoch
		switch r := r.(type) {
		case FenceBrokerRecord:
			n, e = r.Node, r.Epoch
		case UnfenceBrokerRecord:
			n, e = r.Node, r.Epoch
		case UnregisterBrokerRecord:
			n, e = r.Node, r.Epoch
		}
		b, ok := m.brokers[n]
		if !ok || b.Epoch != e {
			return false
		}
		switch r.(type) {
		case FenceBrokerRecord:
			b.Fenced = true
			m.brokers[n] = b
		case UnfenceBrokerRecord:
			b.Fenced = false
			m.brokers[n] = b
		default:
			if !b.Fenced {
				return false
			}
			delete(m.brokers, n)
		}
	case BrokerEpochFloorRecord:
		if r.Epoch < 0 {
			return false
		}
		m.maxEpoch = max(m.maxEpoch, r.Epoch)
	case TopicRecord:
		if r.ID.IsZero() || checkTopicName(r.Name) != "" || m.topic(r.ID) != nil || m.topicNamed(r.Name) != nil {
			return false
		}
		m.topics = append(m.topics, modelTopic{id: r.ID, name: r.Name})
	case PartitionRecord:
		t := m.topic(r.Topic)
		if t == nil || int(r.Partition) != len(t.parts) || len(r.Replicas) == 0 || !distinct(r.Replicas) ||
			len(r.ISR) == 0 || !distinct(r.ISR) || !subset(r.ISR, r.Replicas) ||
			r.Leader != NoLeader && !slices.Contains(r.ISR, r.Leader) || r.LeaderEpoch < 0 || r.PartitionEpoch < 0 {
			return false
		}
		t.parts = append(t.parts, Partition{Topic: r.Topic, Partition: r.Partition, Replicas: slices.Clone(r.Replicas), ISR: slices.Clone(r.ISR), Leader: r.Leader, LeaderEpoch: r.LeaderEpoch, PartitionEpoch: r.PartitionEpoch})
	case PartitionChangeRecord:
		t := m.topic(r.Topic)
		if t == nil || r.Partition < 0 || int(r.Partition) >= len(t.parts) || r.Leader == nil && r.ISR == nil {
			return false
		}
		p := t.parts[r.Partition]
		if r.ISR != nil {
			p.ISR = slices.Clone(r.ISR)
		}
		if r.Leader != nil {
			p.Leader = *r.Leader
		}
		if len(p.ISR) == 0 || !distinct(p.ISR) || !subset(p.ISR, p.Replicas) || p.Leader != NoLeader && !slices.Contains(p.ISR, p.Leader) {
			return false
		}
		if p.Leader != t.parts[r.Partition].Leader {
			if p.Leader != NoLeader && !m.unfenced(p.Leader) || p.LeaderEpoch == math.MaxInt32 {
				return false
			}
			p.LeaderEpoch++
		}
		if p.PartitionEpoch == math.MaxInt32 {
			return false
		}
		p.PartitionEpoch++
		t.parts[r.Partition] = p
	case RemoveTopicRecord:
		t := m.topic(r.ID)
		if t == nil {
			return false
		}
		delete(m.configs, ConfigResource{ConfigTopic, string(t.name)})
		m.topics = slices.DeleteFunc(m.topics, func(x modelTopic) bool { return x.id == r.ID })
	case ConfigRecord:
		switch r.Resource.Type {
		case ConfigTopic:
			if m.topicNamed(TopicName(r.Resource.Name)) == nil {
				return false
			}
		case ConfigBroker:
			if n, err := strconv.Atoi(r.Resource.Name); r.Resource.Name != "" && (err != nil || n < 0 || n > math.MaxInt32 || strconv.Itoa(n) != r.Resource.Name) {
				return false
			}
		default:
			return false
		}
		if r.Key == "" {
			return false
		}
		kv := m.configs[r.Resource]
		if r.Value != nil {
			if kv == nil {
				kv = map[string]string{}
				m.configs[r.Resource] = kv
			}
			kv[r.Key] = *r.Value
		} else if kv != nil {
			delete(kv, r.Key)
			if len(kv) == 0 {
				delete(m.configs, r.Resource)
			}
		}
	case ProducerIDsRecord:
		if r.Node < 0 || r.Size <= 0 || r.First < m.next() || r.First > math.MaxInt64-ProducerID(r.Size) {
			return false
		}
		m.last = &r
	default:
		return false
	}
	return true
}

func (m *model) dump() imageDump {
	d := imageDump{Applied: m.applied, MaxEpoch: m.maxEpoch, Leaders: map[NodeID]int{}, Configs: map[ConfigResource]map[string]string{}, NextPID: m.next()}
	for _, b := range m.brokers {
		b.Listeners = slices.Clone(b.Listeners)
		d.Brokers = append(d.Brokers, b)
	}
	slices.SortFunc(d.Brokers, func(a, b Broker) int { return cmp.Compare(a.ID, b.ID) })
	if d.Brokers == nil {
		d.Brokers = []Broker{}
	}
	ts := slices.Clone(m.topics)
	slices.SortFunc(ts, func(a, b modelTopic) int { return cmp.Compare(a.name, b.name) })
	for _, t := range ts {
		d.Topics = append(d.Topics, topicDump{Topic: Topic{ID: t.id, Name: t.name, Partitions: int32(len(t.parts))}, Parts: slices.Clone(t.parts)})
		for _, p := range t.parts {
			if p.Leader != NoLeader {
				d.Leaders[p.Leader]++
			}
		}
	}
	for r, kv := range m.configs {
		d.Configs[r] = kv
	}
	if m.last != nil {
		d.LastIDs, d.HasIDs = *m.last, true
	}
	return d
}

// modelGen draws entries that are mostly plausible against the model's
// state (so that most are accepted and the state grows), with a share of
// wrong epochs, unknown ids, bad ISRs and leaders that make entries fail.
type modelGen struct {
	r *rand.Rand
	m *model
}

func (g *modelGen) node() NodeID {
	if g.r.IntN(20) == 0 {
		return NodeID(g.r.IntN(3) - 1 + 9*g.r.IntN(2))
	}
	return NodeID(g.r.IntN(5))
}

func (g *modelGen) epochOf(n NodeID) BrokerEpoch {
	b := g.m.brokers[n]
	if g.r.IntN(10) == 0 {
		return b.Epoch + BrokerEpoch(g.r.IntN(3)) - 1
	}
	return b.Epoch
}

func (g *modelGen) someNodes(from []NodeID, min int) []NodeID {
	out := slices.Clone(from)
	g.r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	k := min + g.r.IntN(len(out)-min+1)
	out = out[:k]
	if g.r.IntN(25) == 0 {
		out = append(out, g.node()) // perhaps a duplicate or an outsider
	}
	return out
}

func (g *modelGen) leaderFrom(isr []NodeID) NodeID {
	switch g.r.IntN(10) {
	case 0:
		return NoLeader
	case 1:
		return g.node()
	}
	for _, n := range isr {
		if g.m.unfenced(n) {
			return n
		}
	}
	return NoLeader
}

func (g *modelGen) existingTopic() *modelTopic {
	if len(g.m.topics) == 0 || g.r.IntN(15) == 0 {
		return nil
	}
	return &g.m.topics[g.r.IntN(len(g.m.topics))]
}

// moves returns the changes that take n's leaderships away, as a
// controller would, or (sometimes) forgets some.
func (g *modelGen) moves(n NodeID) []Record {
	var out []Record
	for _, t := range g.m.topics {
		for _, p := range t.parts {
			if p.Leader != n || g.r.IntN(30) == 0 {
				continue
			}
			l := NoLeader
			for _, m := range p.ISR {
				if m != n && g.m.unfenced(m) {
					l = m
					break
				}
			}
			out = append(out, PartitionChangeRecord{Topic: t.id, Partition: p.Partition, Leader: &l})
		}
	}
	return out
}

func (g *modelGen) entry() []Record {
	var out []Record
	for range 1 + g.r.IntN(3) {
		out = append(out, g.record()...)
	}
	return out
}

func (g *modelGen) record() []Record {
	r := g.r
	switch r.IntN(13) {
	case 0, 1:
		n := g.node()
		e := g.m.maxEpoch + 1
		if r.IntN(10) == 0 {
			e = BrokerEpoch(r.IntN(4))
		}
		ls := []Listener{{Name: "PLAINTEXT", Host: "h", Port: uint16(9000 + n)}}
		if r.IntN(15) == 0 {
			ls = append(ls, Listener{Name: "PLAINTEXT", Host: "h"})
		}
		var moves []Record
		if g.m.unfenced(n) {
			moves = g.moves(n)
		}
		return append(moves, RegisterBrokerRecord{Node: n, Epoch: e, Listeners: ls, Rack: []string{"", "r1", "r2"}[r.IntN(3)], Fenced: r.IntN(3) == 0})
	case 2:
		n := g.node()
		return append(g.moves(n), FenceBrokerRecord{Node: n, Epoch: g.epochOf(n)})
	case 3:
		n := g.node()
		return []Record{UnfenceBrokerRecord{Node: n, Epoch: g.epochOf(n)}}
	case 4:
		n := g.node()
		return []Record{UnregisterBrokerRecord{Node: n, Epoch: g.epochOf(n)}}
	case 5, 6:
		id := TopicID{15: byte(1 + r.IntN(6))}
		name := TopicName([]string{"a", "b", "c", "d", "e", "f", "", "x/y"}[r.IntN(8)])
		out := []Record{TopicRecord{ID: id, Name: name}}
		for p := range r.IntN(4) {
			replicas := g.someNodes([]NodeID{0, 1, 2, 3, 4}, 1)[:1+r.IntN(3)]
			isr := g.someNodes(replicas, 1)
			out = append(out, PartitionRecord{Topic: id, Partition: int32(p), Replicas: replicas, ISR: isr, Leader: g.leaderFrom(isr), LeaderEpoch: LeaderEpoch(r.IntN(3)), PartitionEpoch: PartitionEpoch(r.IntN(3))})
		}
		return out
	case 7:
		t := g.existingTopic()
		if t == nil {
			return []Record{PartitionRecord{Topic: TopicID{15: 99}, Replicas: []NodeID{1}, ISR: []NodeID{1}, Leader: NoLeader}}
		}
		replicas := g.someNodes([]NodeID{0, 1, 2, 3, 4}, 1)
		isr := g.someNodes(replicas, 1)
		return []Record{PartitionRecord{Topic: t.id, Partition: int32(len(t.parts) + r.IntN(5)/4), Replicas: replicas, ISR: isr, Leader: g.leaderFrom(isr)}}
	case 8, 9:
		t := g.existingTopic()
		if t == nil || len(t.parts) == 0 {
			return []Record{PartitionChangeRecord{Topic: TopicID{15: 98}, ISR: []NodeID{1}}}
		}
		p := t.parts[r.IntN(len(t.parts))]
		ch := PartitionChangeRecord{Topic: t.id, Partition: p.Partition}
		isr := p.ISR
		if r.IntN(2) == 0 {
			isr = g.someNodes(p.Replicas, 1)
			ch.ISR = isr
		}
		if r.IntN(2) == 0 || ch.ISR == nil && r.IntN(10) != 0 {
			l := g.leaderFrom(isr)
			ch.Leader = &l
		}
		return []Record{ch}
	case 10:
		res := ConfigResource{Type: ConfigBroker, Name: []string{"", "1", "x", "01"}[r.IntN(4)]}
		switch r.IntN(4) {
		case 0, 1:
			res = ConfigResource{Type: ConfigTopic, Name: []string{"a", "b", "c", "zz"}[r.IntN(4)]}
		case 2:
			if r.IntN(4) == 0 {
				res.Type = 8
			}
		}
		rec := ConfigRecord{Resource: res, Key: []string{"k1", "k2", ""}[r.IntN(3)]}
		if r.IntN(3) != 0 {
			v := strconv.Itoa(r.IntN(100))
			rec.Value = &v
		}
		return []Record{rec}
	case 11:
		next := g.m.next()
		return []Record{ProducerIDsRecord{Node: g.node(), First: next + ProducerID(r.IntN(4)) - 1, Size: int32(r.IntN(12))}}
	default:
		if r.IntN(3) == 0 {
			return []Record{BrokerEpochFloorRecord{Epoch: BrokerEpoch(r.IntN(20))}}
		}
		t := g.existingTopic()
		if t == nil {
			return []Record{RemoveTopicRecord{ID: TopicID{15: 97}}}
		}
		return []Record{RemoveTopicRecord{ID: t.id}}
	}
}

// TestImageMatchesModel applies random entries to an Image and to the
// trivial model: they must accept and refuse the same entries and answer
// the same afterwards; every so often the image must also survive a
// snapshot and restore, and a clone must equal it.
func TestImageMatchesModel(t *testing.T) {
	runs, steps := 5, 2000
	if raceEnabled {
		runs, steps = 2, 400
	}
	for i := range runs {
		seed := uint64(time.Now().UnixNano()) + uint64(i)
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Logf("seed %d", seed)
			runModel(t, seed, steps)
		})
	}
}

func runModel(t *testing.T, seed uint64, steps int) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	m, im := newModel(), NewImage()
	g := &modelGen{r: r, m: m}
	accepted := 0
	for step := 1; step <= steps; step++ {
		records := g.entry()
		index := uint64(step)
		want := m.apply(index, records)
		err := im.Apply(index, EncodeEntry(records))
		if err != nil && !IsInvalid(err) {
			t.Fatalf("step %d: apply failed with a non-refusal: %v", step, err)
		}
		if got := err == nil; got != want {
			t.Fatalf("step %d: image accepted=%v (%v), model accepted=%v; records:\n%#v", step, got, err, want, records)
		}
		if want {
			accepted++
		}
		if d := gocmp.Diff(m.dump(), dumpImage(im)); d != "" {
			t.Fatalf("step %d: image differs from the model (-model +image) after %#v:\n%s", step, records, d)
		}
		if step%100 == 0 {
			checkImageInvariants(t, im)
			snap, idx, _ := im.Snapshot()
			re := NewImage()
			if err := re.Restore(snap, idx); err != nil {
				t.Fatalf("step %d: restore: %v", step, err)
			}
			if d := gocmp.Diff(dumpImage(im), dumpImage(re)); d != "" {
				t.Fatalf("step %d: restored snapshot differs:\n%s", step, d)
			}
			if again, _, _ := re.Snapshot(); !bytes.Equal(again, snap) {
				t.Fatalf("step %d: the restored image's snapshot differs from the one it was restored from", step)
			}
			if d := gocmp.Diff(dumpImage(im), dumpImage(im.Clone())); d != "" {
				t.Fatalf("step %d: clone differs:\n%s", step, d)
			}
		}
	}
	// The test is only worth something if both outcomes happen often.
	if accepted < steps/10 || accepted > steps*9/10 {
		t.Fatalf("%d of %d entries accepted: the generator is off balance", accepted, steps)
	}
	t.Logf("%d of %d entries accepted; %d brokers, %d topics at the end", accepted, steps, len(m.brokers), len(m.topics))
}
