package group

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The records of __consumer_offsets use Kafka's encodings, taken from kmsg:
//
//	key   int16 version 0|1: OffsetCommitKey  {group, topic, partition int32}
//	      value: OffsetCommitValue v3 {offset int64, leader epoch int32,
//	             metadata string, commit timestamp int64 (ms)}
//	key   int16 version 2:   GroupMetadataKey {group}
//	      value: GroupMetadataValue v3 {protocol type, generation, protocol,
//	             leader, state timestamp (ms), members: id, instance id,
//	             client id, client host, rebalance and session timeouts (ms),
//	             subscription (the selected protocol's metadata), assignment}
//
// A nil value is a tombstone. The topic is compacted: the latest record per
// key is the state. Reading accepts every value version kmsg knows.
const (
	offsetKeyVersion   = 1
	offsetValueVersion = 3
	groupKeyVersion    = 2
	groupValueVersion  = 3
)

// ErrBadRecord is wrapped by Load for a __consumer_offsets record that does
// not decode.
var ErrBadRecord = errors.New("group: undecodable __consumer_offsets record")

// IsBadRecord reports whether err is, or wraps, ErrBadRecord.
func IsBadRecord(err error) bool { return errors.Is(err, ErrBadRecord) }

func (c *Coordinator) offsetRecord(g GroupID, tp topicPartition, o *offset) Record {
	k := kmsg.OffsetCommitKey{Version: offsetKeyVersion, Group: string(g), Topic: tp.topic, Partition: tp.partition}
	rec := Record{Partition: Partition(g, c.opts.OffsetsPartitions), Key: k.AppendTo(nil)}
	if o != nil {
		v := kmsg.OffsetCommitValue{
			Version: offsetValueVersion, Offset: o.offset, LeaderEpoch: o.leaderEpoch,
			Metadata: o.metadata, CommitTimestamp: o.committed.UnixMilli(),
		}
		rec.Value = v.AppendTo(nil)
	}
	return rec
}

func (c *Coordinator) groupKey(g GroupID) []byte {
	k := kmsg.GroupMetadataKey{Version: groupKeyVersion, Group: string(g)}
	return k.AppendTo(nil)
}

func (c *Coordinator) groupTombstone(g *group) Record {
	g.persisted = false
	return Record{Partition: Partition(g.id, c.opts.OffsetsPartitions), Key: c.groupKey(g.id), metadata: true}
}

// groupRecord is g's metadata as it stands.
func (c *Coordinator) groupRecord(g *group) Record {
	g.persisted = true
	v := kmsg.GroupMetadataValue{
		Version:               groupValueVersion,
		ProtocolType:          g.protocolType,
		Generation:            int32(g.generation),
		CurrentStateTimestamp: g.stateSince.UnixMilli(),
	}
	if g.protocol != "" {
		v.Protocol = strp(g.protocol)
	}
	if g.leader != "" {
		v.Leader = strp(string(g.leader))
	}
	for _, m := range g.sortedMembers() {
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID, vm.ClientID, vm.ClientHost = string(m.id), m.clientID, m.clientHost
		if m.instanceID != "" {
			vm.InstanceID = strp(m.instanceID)
		}
		vm.RebalanceTimeoutMillis = int32(m.rebalanceTimeout / time.Millisecond)
		vm.SessionTimeoutMillis = int32(m.sessionTimeout / time.Millisecond)
		vm.Subscription = m.metadata(g.protocol)
		vm.Assignment = m.assignment
		v.Members = append(v.Members, vm)
	}
	return Record{Partition: Partition(g.id, c.opts.OffsetsPartitions), Key: c.groupKey(g.id), Value: v.AppendTo(nil), metadata: true}
}

// Load applies one record replayed from __consumer_offsets, oldest first.
// Call it before any Step; then FinishLoad. A record that does not decode is
// reported (wrapping ErrBadRecord) and changes nothing.
func (c *Coordinator) Load(rec Record) error {
	if rec.txn {
		return c.loadPending(rec)
	}
	if len(rec.Key) < 2 {
		return fmt.Errorf("%w: key of %d bytes", ErrBadRecord, len(rec.Key))
	}
	switch version := int16(rec.Key[0])<<8 | int16(rec.Key[1]); version {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(rec.Key); err != nil {
			return fmt.Errorf("%w: offset key: %w", ErrBadRecord, err)
		}
		if err := c.checkLoaded(rec, k.Group); err != nil {
			return err
		}
		tp := topicPartition{k.Topic, k.Partition}
		if rec.Value == nil {
			if g := c.groups[GroupID(k.Group)]; g != nil {
				delete(g.offsets, tp)
			}
			return nil
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(rec.Value); err != nil {
			return fmt.Errorf("%w: offset value: %w", ErrBadRecord, err)
		}
		g := c.loadGroup(GroupID(k.Group))
		if v.Version < 3 {
			v.LeaderEpoch = -1
		}
		g.offsets[tp] = offset{offset: v.Offset, leaderEpoch: v.LeaderEpoch, metadata: v.Metadata, committed: time.UnixMilli(v.CommitTimestamp)}
		return nil
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(rec.Key); err != nil {
			return fmt.Errorf("%w: group key: %w", ErrBadRecord, err)
		}
		if err := c.checkLoaded(rec, k.Group); err != nil {
			return err
		}
		if rec.Value == nil {
			if g := c.groups[GroupID(k.Group)]; g != nil {
				offs := g.offsets
				*g = *newGroup(g.id, time.Time{})
				g.offsets = offs
			}
			return nil
		}
		var v kmsg.GroupMetadataValue
		if err := v.ReadFrom(rec.Value); err != nil {
			return fmt.Errorf("%w: group value: %w", ErrBadRecord, err)
		}
		g := c.loadGroup(GroupID(k.Group))
		offs := g.offsets
		*g = *newGroup(g.id, time.UnixMilli(v.CurrentStateTimestamp))
		g.offsets = offs
		g.persisted = true
		g.protocolType, g.protocol, g.leader = v.ProtocolType, deref(v.Protocol), MemberID(deref(v.Leader))
		g.generation = Generation(v.Generation)
		for _, vm := range v.Members {
			m := &member{
				id: MemberID(vm.MemberID), instanceID: deref(vm.InstanceID),
				clientID: vm.ClientID, clientHost: vm.ClientHost,
				sessionTimeout:   millis(vm.SessionTimeoutMillis),
				rebalanceTimeout: millis(vm.RebalanceTimeoutMillis),
				protocolType:     v.ProtocolType,
				protocols:        []kmsg.JoinGroupRequestProtocol{{Name: g.protocol, Metadata: vm.Subscription}},
				assignment:       vm.Assignment,
			}
			if m.rebalanceTimeout <= 0 {
				m.rebalanceTimeout = m.sessionTimeout
			}
			g.members[m.id] = m
			if m.instanceID != "" {
				g.static[m.instanceID] = m.id
			}
		}
		if len(g.members) > 0 && g.protocol != "" {
			g.state = StateStable
			if g.members[g.leader] == nil {
				g.leader = g.sortedMembers()[0].id
			}
			g.subscribed = g.subscribedTopics()
		} else {
			clear(g.members)
			clear(g.static)
			g.leader = ""
		}
		return nil
	default:
		return fmt.Errorf("%w: key version %d", ErrBadRecord, version)
	}
}

// checkLoaded refuses a record whose group id is invalid or whose group
// belongs in another partition than the one it was read from (a group is
// served by the owner of its partition; one misplaced would be held by no
// owner).
func (c *Coordinator) checkLoaded(rec Record, id string) error {
	if c.validGroupID(id) != 0 {
		return fmt.Errorf("%w: group id %q", ErrBadRecord, id)
	}
	if p := Partition(GroupID(id), c.opts.OffsetsPartitions); p != rec.Partition {
		return fmt.Errorf("%w: group %q belongs in partition %d, read from %d", ErrBadRecord, id, p, rec.Partition)
	}
	return nil
}

func (c *Coordinator) loadGroup(id GroupID) *group {
	g := c.groups[id]
	if g == nil {
		g = newGroup(id, time.Time{})
		c.groups[id] = g
	}
	return g
}

// FinishLoad ends replay at time now: loaded members get a full session
// timeout to show up, offsets of topics that Options.Topics says no longer
// exist are dropped (with tombstones), and groups left with nothing are
// dropped.
func (c *Coordinator) FinishLoad(now time.Time) {
	for _, id := range sortedIDs(c.groups) {
		g := c.groups[id]
		if g.stateSince.IsZero() {
			g.stateSince = now
		}
		for _, m := range g.members {
			m.deadline = now.Add(m.sessionTimeout)
		}
		c.settle(now, g)
	}
	c.dropMissingTopics(now)
}
