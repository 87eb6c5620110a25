package metadata

import "fmt"

// RecordType tags a record on the wire. Values are never reused.
type RecordType uint8

// The record types of the metadata log.
const (
	TypeRegisterBroker   RecordType = 1
	TypeFenceBroker      RecordType = 2
	TypeUnfenceBroker    RecordType = 3
	TypeUnregisterBroker RecordType = 4
	TypeTopic            RecordType = 5
	TypePartition        RecordType = 6
	TypePartitionChange  RecordType = 7
	TypeConfig           RecordType = 8
	TypeProducerIDs      RecordType = 9
	TypeRemoveTopic      RecordType = 10
	TypeBrokerEpochFloor RecordType = 11
	TypeReassignment     RecordType = 12
)

// String names the record type.
func (t RecordType) String() string {
	switch t {
	case TypeRegisterBroker:
		return "RegisterBroker"
	case TypeFenceBroker:
		return "FenceBroker"
	case TypeUnfenceBroker:
		return "UnfenceBroker"
	case TypeUnregisterBroker:
		return "UnregisterBroker"
	case TypeTopic:
		return "Topic"
	case TypePartition:
		return "Partition"
	case TypePartitionChange:
		return "PartitionChange"
	case TypeConfig:
		return "Config"
	case TypeProducerIDs:
		return "ProducerIDs"
	case TypeRemoveTopic:
		return "RemoveTopic"
	case TypeBrokerEpochFloor:
		return "BrokerEpochFloor"
	case TypeReassignment:
		return "Reassignment"
	default:
		if n, ok := securityRecordName(t); ok {
			return n
		}
		return fmt.Sprintf("RecordType(%d)", uint8(t))
	}
}

// Record is one change to the cluster metadata. The set of records is
// closed: only this package's record types implement it.
type Record interface {
	// Type is the record's wire tag.
	Type() RecordType
	// version is the payload layout the record encodes with; a decoder
	// refuses versions it does not know (ErrUnknownRecord).
	version() byte
	appendPayload(b []byte) []byte
}

// RegisterBrokerRecord registers a broker, or replaces its registration
// when the node id is already registered (a restart: new incarnation, new
// epoch). Version 0.
type RegisterBrokerRecord struct {
	Node        NodeID
	Incarnation IncarnationID
	// Epoch must be above the node's previous epoch.
	Epoch     BrokerEpoch
	Listeners []Listener
	// Rack is the broker's rack; empty for none.
	Rack string
	// Fenced: a broker registers fenced and is unfenced once it has caught
	// up with the metadata log (UnfenceBrokerRecord). Snapshots carry the
	// current state.
	Fenced bool
}

// FenceBrokerRecord fences a broker: it leads nothing and is left out of
// new placements. The entry that fences a broker also moves its
// leaderships (PartitionChangeRecord). Fencing a fenced broker changes
// nothing. Version 0.
type FenceBrokerRecord struct {
	Node  NodeID
	Epoch BrokerEpoch
}

// UnfenceBrokerRecord unfences a broker. Version 0.
type UnfenceBrokerRecord struct {
	Node  NodeID
	Epoch BrokerEpoch
}

// UnregisterBrokerRecord removes a fenced broker's registration. Version 0.
type UnregisterBrokerRecord struct {
	Node  NodeID
	Epoch BrokerEpoch
}

// TopicRecord creates a topic. Its partitions follow as PartitionRecords,
// in the same entry. Version 0.
type TopicRecord struct {
	ID   TopicID
	Name TopicName
}

// PartitionRecord creates partition Partition of a topic; partitions are
// created in order (0, 1, ...). Snapshots carry each partition's current
// state in one. Version 0.
type PartitionRecord struct {
	Topic     TopicID
	Partition int32
	// Replicas in preference order: the first is the preferred leader.
	Replicas []NodeID
	// ISR, a non-empty subset of Replicas.
	ISR []NodeID
	// Leader is an unfenced member of ISR, or NoLeader.
	Leader         NodeID
	LeaderEpoch    LeaderEpoch
	PartitionEpoch PartitionEpoch
}

// PartitionChangeRecord changes a partition's leader, ISR or both. Applying
// it raises the partition epoch by one, and the leader epoch by one when the
// leader changes. Version 0.
type PartitionChangeRecord struct {
	Topic     TopicID
	Partition int32
	// Leader, when set, is the new leader (or NoLeader).
	Leader *NodeID
	// ISR, when non-nil, is the new ISR.
	ISR []NodeID
}

// ConfigRecord sets (Value non-nil) or deletes (Value nil) one config key of
// a resource. Version 0.
type ConfigRecord struct {
	Resource ConfigResource
	Key      string
	Value    *string
}

// ProducerIDsRecord hands producer ids [First, First+Size) to broker Node.
// Blocks never overlap and never go back: First is at least the end of the
// previous block. Version 0.
type ProducerIDsRecord struct {
	Node  NodeID
	First ProducerID
	Size  int32
}

// RemoveTopicRecord deletes a topic, its partitions and its configs.
// Version 0.
type RemoveTopicRecord struct {
	ID TopicID
}

// BrokerEpochFloorRecord raises the largest broker epoch the image has seen
// to at least Epoch, so that epochs handed out after a snapshot stay above
// those of brokers that were unregistered before it. Snapshots carry one;
// the controller never proposes it. Version 0.
type BrokerEpochFloorRecord struct {
	Epoch BrokerEpoch
}

// ReassignmentRecord sets a partition's replicas and the target of its
// reassignment. A reassignment starts with Replicas the union of the old
// replicas and Target (the adding replicas catch up as followers); it ends
// with Replicas = Target and Target nil, once the target replicas are all
// in the ISR (the ISR and leader are changed to fit first, by a
// PartitionChangeRecord in the same entry). The ISR must stay a subset of
// Replicas, and Target, when set, one as well. Applying it raises the
// partition epoch by one. Snapshots carry one after the PartitionRecord of
// each partition being reassigned. Version 0.
type ReassignmentRecord struct {
	Topic     TopicID
	Partition int32
	Replicas  []NodeID
	// Target is the assignment being moved to; nil: none (done or
	// cancelled).
	Target []NodeID
	// Original is the assignment the reassignment started from (with
	// Target; nil without): ListPartitionReassignments tells the adding
	// replicas (Target - Original) and the removing ones (Original -
	// Target) by it.
	Original []NodeID
}

func (RegisterBrokerRecord) Type() RecordType   { return TypeRegisterBroker }
func (FenceBrokerRecord) Type() RecordType      { return TypeFenceBroker }
func (UnfenceBrokerRecord) Type() RecordType    { return TypeUnfenceBroker }
func (UnregisterBrokerRecord) Type() RecordType { return TypeUnregisterBroker }
func (TopicRecord) Type() RecordType            { return TypeTopic }
func (PartitionRecord) Type() RecordType        { return TypePartition }
func (PartitionChangeRecord) Type() RecordType  { return TypePartitionChange }
func (ConfigRecord) Type() RecordType           { return TypeConfig }
func (ProducerIDsRecord) Type() RecordType      { return TypeProducerIDs }
func (RemoveTopicRecord) Type() RecordType      { return TypeRemoveTopic }
func (BrokerEpochFloorRecord) Type() RecordType { return TypeBrokerEpochFloor }
func (ReassignmentRecord) Type() RecordType     { return TypeReassignment }

func (RegisterBrokerRecord) version() byte   { return 0 }
func (FenceBrokerRecord) version() byte      { return 0 }
func (UnfenceBrokerRecord) version() byte    { return 0 }
func (UnregisterBrokerRecord) version() byte { return 0 }
func (TopicRecord) version() byte            { return 0 }
func (PartitionRecord) version() byte        { return 0 }
func (PartitionChangeRecord) version() byte  { return 0 }
func (ConfigRecord) version() byte           { return 0 }
func (ProducerIDsRecord) version() byte      { return 0 }
func (RemoveTopicRecord) version() byte      { return 0 }
func (BrokerEpochFloorRecord) version() byte { return 0 }
func (ReassignmentRecord) version() byte     { return 0 }

func (r RegisterBrokerRecord) appendPayload(b []byte) []byte {
	b = appendVarint(b, int64(r.Node))
	b = append(b, r.Incarnation[:]...)
	b = appendVarint(b, int64(r.Epoch))
	b = appendUvarint(b, uint64(len(r.Listeners)))
	for _, l := range r.Listeners {
		b = appendString(b, l.Name)
		b = appendString(b, l.Host)
		b = appendUvarint(b, uint64(l.Port))
		b = appendVarint(b, int64(l.SecurityProtocol))
	}
	b = appendString(b, r.Rack)
	return appendBool(b, r.Fenced)
}

func (r FenceBrokerRecord) appendPayload(b []byte) []byte {
	return appendVarint(appendVarint(b, int64(r.Node)), int64(r.Epoch))
}

func (r UnfenceBrokerRecord) appendPayload(b []byte) []byte {
	return appendVarint(appendVarint(b, int64(r.Node)), int64(r.Epoch))
}

func (r UnregisterBrokerRecord) appendPayload(b []byte) []byte {
	return appendVarint(appendVarint(b, int64(r.Node)), int64(r.Epoch))
}

func (r TopicRecord) appendPayload(b []byte) []byte {
	b = append(b, r.ID[:]...)
	return appendString(b, string(r.Name))
}

func (r PartitionRecord) appendPayload(b []byte) []byte {
	b = append(b, r.Topic[:]...)
	b = appendVarint(b, int64(r.Partition))
	b = appendNodes(b, r.Replicas)
	b = appendNodes(b, r.ISR)
	b = appendVarint(b, int64(r.Leader))
	b = appendVarint(b, int64(r.LeaderEpoch))
	return appendVarint(b, int64(r.PartitionEpoch))
}

// PartitionChangeRecord field presence flags.
const (
	changeLeader byte = 1 << iota
	changeISR
	changeKnown = changeLeader | changeISR
)

func (r PartitionChangeRecord) appendPayload(b []byte) []byte {
	b = append(b, r.Topic[:]...)
	b = appendVarint(b, int64(r.Partition))
	var flags byte
	if r.Leader != nil {
		flags |= changeLeader
	}
	if r.ISR != nil {
		flags |= changeISR
	}
	b = append(b, flags)
	if r.Leader != nil {
		b = appendVarint(b, int64(*r.Leader))
	}
	if r.ISR != nil {
		b = appendNodes(b, r.ISR)
	}
	return b
}

func (r ConfigRecord) appendPayload(b []byte) []byte {
	b = appendVarint(b, int64(r.Resource.Type))
	b = appendString(b, r.Resource.Name)
	b = appendString(b, r.Key)
	b = appendBool(b, r.Value != nil)
	if r.Value != nil {
		b = appendString(b, *r.Value)
	}
	return b
}

func (r ProducerIDsRecord) appendPayload(b []byte) []byte {
	b = appendVarint(b, int64(r.Node))
	b = appendVarint(b, int64(r.First))
	return appendVarint(b, int64(r.Size))
}

func (r RemoveTopicRecord) appendPayload(b []byte) []byte { return append(b, r.ID[:]...) }

func (r BrokerEpochFloorRecord) appendPayload(b []byte) []byte {
	return appendVarint(b, int64(r.Epoch))
}

func (r ReassignmentRecord) appendPayload(b []byte) []byte {
	b = append(b, r.Topic[:]...)
	b = appendVarint(b, int64(r.Partition))
	b = appendNodes(b, r.Replicas)
	b = appendBool(b, r.Target != nil)
	if r.Target != nil {
		b = appendNodes(b, r.Target)
		b = appendNodes(b, r.Original)
	}
	return b
}

// minListenerSize is the smallest encoded listener: two empty strings, a
// port and a security protocol of one byte each.
const minListenerSize = 4

// decodeRecord decodes one record's payload, which it must consume whole.
func decodeRecord(typ RecordType, ver byte, payload []byte) (Record, error) {
	if isSecurityRecord(typ) {
		return decodeSecurityRecord(typ, ver, payload)
	}
	if typ < TypeRegisterBroker || typ > TypeReassignment {
		return nil, unknownf("unknown record type %d", uint8(typ))
	}
	if ver != 0 {
		return nil, unknownf("%s version %d is unknown (this Weir reads version 0)", typ, ver)
	}
	d := &decoder{b: payload}
	var r Record
	switch typ {
	case TypeRegisterBroker:
		var x RegisterBrokerRecord
		x.Node = NodeID(d.int32("node"))
		x.Incarnation = d.uuid("incarnation")
		x.Epoch = BrokerEpoch(d.varint("epoch"))
		if n := d.count("listener count", minListenerSize); n > 0 {
			x.Listeners = make([]Listener, n)
			for i := range x.Listeners {
				l := &x.Listeners[i]
				l.Name = d.string("listener name")
				l.Host = d.string("listener host")
				port := d.uvarint("listener port")
				if d.err == nil && port > 0xffff {
					d.fail("port %d out of range", port)
				}
				l.Port = uint16(port)
				sp := d.varint("security protocol")
				if d.err == nil && (sp < -1<<15 || sp >= 1<<15) {
					d.fail("security protocol %d overflows int16", sp)
				}
				l.SecurityProtocol = int16(sp)
			}
		}
		x.Rack = d.string("rack")
		x.Fenced = d.bool("fenced")
		r = x
	case TypeFenceBroker:
		r = FenceBrokerRecord{Node: NodeID(d.int32("node")), Epoch: BrokerEpoch(d.varint("epoch"))}
	case TypeUnfenceBroker:
		r = UnfenceBrokerRecord{Node: NodeID(d.int32("node")), Epoch: BrokerEpoch(d.varint("epoch"))}
	case TypeUnregisterBroker:
		r = UnregisterBrokerRecord{Node: NodeID(d.int32("node")), Epoch: BrokerEpoch(d.varint("epoch"))}
	case TypeTopic:
		r = TopicRecord{ID: d.uuid("topic id"), Name: TopicName(d.string("topic name"))}
	case TypePartition:
		var x PartitionRecord
		x.Topic = d.uuid("topic id")
		x.Partition = d.int32("partition")
		x.Replicas = d.nodes("replicas")
		x.ISR = d.nodes("isr")
		x.Leader = NodeID(d.int32("leader"))
		x.LeaderEpoch = LeaderEpoch(d.int32("leader epoch"))
		x.PartitionEpoch = PartitionEpoch(d.int32("partition epoch"))
		r = x
	case TypePartitionChange:
		var x PartitionChangeRecord
		x.Topic = d.uuid("topic id")
		x.Partition = d.int32("partition")
		flags := d.byte("change flags")
		if d.err == nil && flags&^changeKnown != 0 {
			d.fail("unknown change flags %#x", flags)
		}
		if flags&changeLeader != 0 {
			l := NodeID(d.int32("leader"))
			x.Leader = &l
		}
		if flags&changeISR != 0 {
			x.ISR = d.nodes("isr")
			if d.err == nil && len(x.ISR) == 0 {
				d.fail("an ISR change to an empty ISR")
			}
		}
		r = x
	case TypeConfig:
		var x ConfigRecord
		t := d.varint("resource type")
		if d.err == nil && (t < -128 || t > 127) {
			d.fail("resource type %d overflows int8", t)
		}
		x.Resource.Type = ConfigType(t)
		x.Resource.Name = d.string("resource name")
		x.Key = d.string("key")
		if d.bool("value present") {
			v := d.string("value")
			x.Value = &v
		}
		r = x
	case TypeProducerIDs:
		r = ProducerIDsRecord{Node: NodeID(d.int32("node")), First: ProducerID(d.varint("first")), Size: d.int32("size")}
	case TypeRemoveTopic:
		r = RemoveTopicRecord{ID: d.uuid("topic id")}
	case TypeBrokerEpochFloor:
		r = BrokerEpochFloorRecord{Epoch: BrokerEpoch(d.varint("epoch"))}
	case TypeReassignment:
		var x ReassignmentRecord
		x.Topic = d.uuid("topic id")
		x.Partition = d.int32("partition")
		x.Replicas = d.nodes("replicas")
		if d.bool("target present") {
			x.Target = d.nodes("target")
			x.Original = d.nodes("original")
			if d.err == nil && (len(x.Target) == 0 || len(x.Original) == 0) {
				d.fail("an empty reassignment target or original assignment")
			}
		}
		r = x
	}
	if d.err == nil && d.remaining() != 0 {
		d.fail("%d trailing bytes", d.remaining())
	}
	if d.err != nil {
		return nil, fmt.Errorf("%s: %w", typ, d.err)
	}
	return r, nil
}
