package metadata

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
)

// Image is the cluster metadata as of an applied offset of the metadata
// log: what a broker serves Metadata from and what the controller decides
// on. It is built only by applying records (Apply, Restore).
//
// An Image is not safe for concurrent use; its owner serialises access
// (readers on other goroutines take a Clone).
//
// Invariants, checked after every entry: a partition's leader is NoLeader
// or a registered, unfenced broker in its ISR; the ISR is a non-empty subset
// of the replicas; every topic has at least one partition.
//
// NB: the replica and ISR slices stored in the image are never modified in
// place (a change stores a new slice), so clones share them.
type Image struct {
	applied uint64

	brokers map[NodeID]Broker
	// leaders counts the partitions each node leads.
	leaders map[NodeID]int
	// maxEpoch is the largest broker epoch ever registered (or raised by a
	// BrokerEpochFloorRecord); the controller hands out maxEpoch+1.
	maxEpoch BrokerEpoch

	topics map[TopicID]*topicState
	names  map[TopicName]TopicID

	configs map[ConfigResource]map[string]string

	// lastIDs is the last producer-id block handed out, if hasIDs.
	lastIDs ProducerIDsRecord
	hasIDs  bool

	// sec holds the SCRAM credentials and ACLs (records_security.go).
	sec securityImage
}

type topicState struct {
	name  TopicName
	parts []PartitionRecord // index = partition
	// targets are the reassignment targets of the partitions being
	// reassigned (ReassignmentRecord); nil when none is. Invariant: each
	// is a subset of its partition's replicas.
	targets map[int32]reassignment
}

// reassignment is a partition's reassignment in progress.
type reassignment struct {
	target, original []NodeID
}

// Broker is a registered broker as the image knows it.
type Broker struct {
	ID          NodeID
	Incarnation IncarnationID
	Epoch       BrokerEpoch
	Listeners   []Listener
	// Rack is empty when the broker has none.
	Rack string
	// Fenced brokers lead nothing and get no new replicas.
	Fenced bool
}

// Topic is a topic as the image knows it.
type Topic struct {
	ID         TopicID
	Name       TopicName
	Partitions int32
}

// Partition is one partition's replicas, ISR, leader and epochs.
type Partition struct {
	Topic     TopicID
	Partition int32
	// Replicas in preference order: the first is the preferred leader.
	Replicas       []NodeID
	ISR            []NodeID
	Leader         NodeID
	LeaderEpoch    LeaderEpoch
	PartitionEpoch PartitionEpoch
	// Target is the assignment a reassignment in progress moves to, and
	// Original the one it started from; nil when none is (Replicas is then
	// the assignment).
	Target, Original []NodeID
}

// NewImage returns the empty image: offset 0, no brokers, no topics.
func NewImage() *Image {
	return &Image{
		brokers: map[NodeID]Broker{},
		leaders: map[NodeID]int{},
		topics:  map[TopicID]*topicState{},
		names:   map[TopicName]TopicID{},
		configs: map[ConfigResource]map[string]string{},
	}
}

// Clone returns an independent copy of the image.
func (im *Image) Clone() *Image {
	c := &Image{
		applied:  im.applied,
		brokers:  maps.Clone(im.brokers),
		leaders:  maps.Clone(im.leaders),
		maxEpoch: im.maxEpoch,
		topics:   make(map[TopicID]*topicState, len(im.topics)),
		names:    maps.Clone(im.names),
		configs:  make(map[ConfigResource]map[string]string, len(im.configs)),
		lastIDs:  im.lastIDs,
		hasIDs:   im.hasIDs,
		sec:      im.sec.clone(),
	}
	for id, t := range im.topics {
		c.topics[id] = &topicState{name: t.name, parts: slices.Clone(t.parts), targets: maps.Clone(t.targets)}
	}
	for r, kv := range im.configs {
		c.configs[r] = maps.Clone(kv)
	}
	return c
}

// Applied is the offset (raft index) of the last entry applied, or of the
// snapshot restored; 0 for an empty image.
func (im *Image) Applied() uint64 { return im.applied }

// Broker returns the registration of node id.
func (im *Image) Broker(id NodeID) (Broker, bool) {
	b, ok := im.brokers[id]
	b.Listeners = slices.Clone(b.Listeners)
	return b, ok
}

// Brokers returns every registered broker, by node id.
func (im *Image) Brokers() []Broker {
	out := make([]Broker, 0, len(im.brokers))
	for _, b := range im.brokers {
		b.Listeners = slices.Clone(b.Listeners)
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Broker) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Leaderships returns how many partitions node id leads.
func (im *Image) Leaderships(id NodeID) int { return im.leaders[id] }

// MaxBrokerEpoch returns the largest broker epoch registered so far.
func (im *Image) MaxBrokerEpoch() BrokerEpoch { return im.maxEpoch }

// Topic returns the topic named name.
func (im *Image) Topic(name TopicName) (Topic, bool) {
	id, ok := im.names[name]
	if !ok {
		return Topic{}, false
	}
	return im.TopicByID(id)
}

// TopicByID returns the topic with id.
func (im *Image) TopicByID(id TopicID) (Topic, bool) {
	t, ok := im.topics[id]
	if !ok {
		return Topic{}, false
	}
	return Topic{ID: id, Name: t.name, Partitions: int32(len(t.parts))}, true
}

// Topics returns every topic, by name.
func (im *Image) Topics() []Topic {
	out := make([]Topic, 0, len(im.topics))
	for id, t := range im.topics {
		out = append(out, Topic{ID: id, Name: t.name, Partitions: int32(len(t.parts))})
	}
	slices.SortFunc(out, func(a, b Topic) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Partition returns partition p of topic id.
func (im *Image) Partition(id TopicID, p int32) (Partition, bool) {
	t, ok := im.topics[id]
	if !ok || p < 0 || int(p) >= len(t.parts) {
		return Partition{}, false
	}
	return partitionView(t, p), true
}

// Partitions returns every partition of topic id, in order; nil if the
// topic does not exist.
func (im *Image) Partitions(id TopicID) []Partition {
	t, ok := im.topics[id]
	if !ok {
		return nil
	}
	out := make([]Partition, len(t.parts))
	for i := range t.parts {
		out[i] = partitionView(t, int32(i))
	}
	return out
}

func partitionView(t *topicState, i int32) Partition {
	p := t.parts[i]
	return Partition{
		Topic: p.Topic, Partition: p.Partition,
		Replicas: slices.Clone(p.Replicas), ISR: slices.Clone(p.ISR),
		Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch,
		Target: slices.Clone(t.targets[i].target), Original: slices.Clone(t.targets[i].original),
	}
}

// Config returns the keys set on res (a copy); empty if none.
func (im *Image) Config(res ConfigResource) map[string]string {
	return maps.Clone(im.configs[res])
}

// ConfigResources returns every resource with at least one key set, by
// type then name.
func (im *Image) ConfigResources() []ConfigResource {
	out := slices.Collect(maps.Keys(im.configs))
	slices.SortFunc(out, compareResources)
	return out
}

func compareResources(a, b ConfigResource) int {
	return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Name, b.Name))
}

// NextProducerID is the first producer id no block has been handed yet.
func (im *Image) NextProducerID() ProducerID {
	if !im.hasIDs {
		return 0
	}
	return im.lastIDs.First + ProducerID(im.lastIDs.Size)
}

// LastProducerIDs returns the last producer-id block handed out.
func (im *Image) LastProducerIDs() (ProducerIDsRecord, bool) { return im.lastIDs, im.hasIDs }

// Apply applies one committed log entry at offset index (above Applied).
// The entry's records are applied together or not at all:
//
//   - data that does not decode (IsMalformed, IsUnknownRecord): nothing
//     changes, not even Applied. This node cannot read the log and must not
//     go on.
//   - records that do not fit the image (IsInvalid): no record is applied,
//     but the entry counts as applied (Applied becomes index). Every replica
//     refuses the same entry alike, so skipping it keeps them equal.
//
// Apply is the quorum's StateMachine.Apply.
func (im *Image) Apply(index uint64, data []byte) error {
	if index <= im.applied {
		return fmt.Errorf("metadata: entry %d is not above the applied offset %d", index, im.applied)
	}
	records, err := DecodeEntry(data)
	if err != nil {
		return fmt.Errorf("metadata: entry %d: %w", index, err)
	}
	err = im.applyRecords(records)
	im.applied = index
	if err != nil {
		return fmt.Errorf("metadata: entry %d: %w", index, err)
	}
	return nil
}

// Snapshot returns the records that rebuild the image, encoded, and the
// offset they stand for. It is the quorum's StateMachine.Snapshot.
func (im *Image) Snapshot() ([]byte, uint64, error) {
	return appendRecords(nil, snapshotMagic, im.records()), im.applied, nil
}

// records lists the image as records, in an order that applies to an empty
// image: brokers, the epoch floor, each topic with its configs and
// partitions, broker configs, the last producer-id block, the SCRAM
// credentials and ACLs.
func (im *Image) records() []Record {
	var out []Record
	for _, b := range im.Brokers() {
		out = append(out, RegisterBrokerRecord{
			Node: b.ID, Incarnation: b.Incarnation, Epoch: b.Epoch,
			Listeners: b.Listeners, Rack: b.Rack, Fenced: b.Fenced,
		})
	}
	if im.maxEpoch > 0 {
		out = append(out, BrokerEpochFloorRecord{Epoch: im.maxEpoch})
	}
	for _, t := range im.Topics() {
		out = append(out, TopicRecord{ID: t.ID, Name: t.Name})
		out = append(out, im.configRecords(ConfigResource{Type: ConfigTopic, Name: string(t.Name)})...)
		ts := im.topics[t.ID]
		for i, p := range ts.parts {
			tg, ok := ts.targets[int32(i)]
			if ok {
				// NB: the ReassignmentRecord that follows raises the
				// partition epoch by one, as the one it stands for did.
				p.PartitionEpoch--
			}
			out = append(out, p)
			if ok {
				out = append(out, ReassignmentRecord{Topic: t.ID, Partition: int32(i), Replicas: p.Replicas, Target: tg.target, Original: tg.original})
			}
		}
	}
	for _, res := range im.ConfigResources() {
		if res.Type != ConfigTopic {
			out = append(out, im.configRecords(res)...)
		}
	}
	if im.hasIDs {
		out = append(out, im.lastIDs)
	}
	return append(out, im.sec.records()...)
}

func (im *Image) configRecords(res ConfigResource) []Record {
	kv := im.configs[res]
	var out []Record
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		v := kv[k]
		out = append(out, ConfigRecord{Resource: res, Key: k, Value: &v})
	}
	return out
}

// Restore replaces the image with the one a snapshot describes, at offset
// index. On error the image is unchanged. It is the quorum's
// StateMachine.Restore.
func (im *Image) Restore(data []byte, index uint64) error {
	records, err := decodeRecords(data, snapshotMagic, "snapshot")
	if err != nil {
		return fmt.Errorf("metadata: restoring snapshot at %d: %w", index, err)
	}
	fresh := NewImage()
	if err := fresh.applyRecords(records); err != nil {
		return fmt.Errorf("metadata: restoring snapshot at %d: %w", index, err)
	}
	fresh.applied = index
	*im = *fresh
	return nil
}
