package group

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Topics tells the coordinator which topic partitions exist, so that commits
// for unknown ones are refused with UNKNOWN_TOPIC_OR_PARTITION. It is a
// read of broker metadata held in memory, not I/O.
type Topics interface {
	// Partitions returns the partition count of topic and whether it exists.
	Partitions(topic string) (int32, bool)
}

// Options configure a Coordinator. The zero value of each field means its
// default; EnsureDefaults fills them in.
type Options struct {
	// OffsetsPartitions is the partition count of __consumer_offsets; a
	// group's records go to partition Partition(group, OffsetsPartitions).
	// Default 50, as Kafka's offsets.topic.num.partitions.
	OffsetsPartitions int32

	// InitialRebalanceDelay delays the first rebalance of an empty group so
	// that members starting together land in one generation; every member
	// that joins during the delay extends it, up to the rebalance timeout.
	// Default 3s, as Kafka's group.initial.rebalance.delay.ms. A negative
	// value disables the delay.
	InitialRebalanceDelay time.Duration

	// MinSessionTimeout and MaxSessionTimeout bound the session timeout a
	// member may ask for (INVALID_SESSION_TIMEOUT otherwise). Defaults 6s and
	// 30m, as Kafka's group.min.session.timeout.ms and
	// group.max.session.timeout.ms.
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration

	// OffsetsRetention is how long the offsets of a group stay after the
	// group became empty (for groups that only commit, after each commit).
	// Default 7 days, as Kafka's offsets.retention.minutes.
	OffsetsRetention time.Duration

	// MaxMembers caps members (including those a MEMBER_ID_REQUIRED answer
	// is waiting for) per group: GROUP_MAX_SIZE_REACHED beyond. Default 1000.
	MaxMembers int

	// MaxGroups caps the number of groups the coordinator holds, so that a
	// flood of joins with fresh group ids cannot exhaust memory; a new group
	// beyond it is answered COORDINATOR_NOT_AVAILABLE. Default 100000.
	MaxGroups int

	// MaxGroupIDBytes is the longest accepted group id (INVALID_GROUP_ID
	// beyond; an empty id is always invalid). Default 255.
	MaxGroupIDBytes int

	// MaxProtocolMetadataBytes caps the summed size of a JoinGroup's protocol
	// metadata, and MaxProtocols the number of protocols it lists; larger
	// joins are answered INVALID_REQUEST. Defaults 1 MiB and 32.
	MaxProtocolMetadataBytes int
	MaxProtocols             int

	// MaxOffsetMetadataBytes caps the metadata string of a committed offset
	// (OFFSET_METADATA_TOO_LARGE beyond). Default 4096, as Kafka's
	// offset.metadata.max.bytes.
	MaxOffsetMetadataBytes int

	// Topics, when set, is asked whether committed partitions exist. Nil
	// accepts every topic.
	Topics Topics

	// NewMemberSuffix returns the unique part of a new member id (the id is
	// "<client id or instance id>-<suffix>"). Default: 16 random bytes in
	// hex. Tests inject a counter.
	NewMemberSuffix func() string
}

// EnsureDefaults fills in zero fields with their defaults and returns o.
func (o *Options) EnsureDefaults() *Options {
	if o.OffsetsPartitions == 0 {
		o.OffsetsPartitions = 50
	}
	if o.InitialRebalanceDelay == 0 {
		o.InitialRebalanceDelay = 3 * time.Second
	}
	if o.MinSessionTimeout == 0 {
		o.MinSessionTimeout = 6 * time.Second
	}
	if o.MaxSessionTimeout == 0 {
		o.MaxSessionTimeout = 30 * time.Minute
	}
	if o.OffsetsRetention == 0 {
		o.OffsetsRetention = 7 * 24 * time.Hour
	}
	if o.MaxMembers == 0 {
		o.MaxMembers = 1000
	}
	if o.MaxGroups == 0 {
		o.MaxGroups = 100000
	}
	if o.MaxGroupIDBytes == 0 {
		o.MaxGroupIDBytes = 255
	}
	if o.MaxProtocolMetadataBytes == 0 {
		o.MaxProtocolMetadataBytes = 1 << 20
	}
	if o.MaxProtocols == 0 {
		o.MaxProtocols = 32
	}
	if o.MaxOffsetMetadataBytes == 0 {
		o.MaxOffsetMetadataBytes = 4096
	}
	if o.NewMemberSuffix == nil {
		o.NewMemberSuffix = randomSuffix
	}
	return o
}

// Validate reports every problem with o at once.
func (o *Options) Validate() error {
	var errs []error
	if o.OffsetsPartitions < 1 {
		errs = append(errs, fmt.Errorf("group: OffsetsPartitions %d < 1", o.OffsetsPartitions))
	}
	if o.MinSessionTimeout <= 0 || o.MaxSessionTimeout < o.MinSessionTimeout {
		errs = append(errs, fmt.Errorf("group: session timeout bounds [%v, %v] are invalid", o.MinSessionTimeout, o.MaxSessionTimeout))
	}
	if o.OffsetsRetention <= 0 {
		errs = append(errs, fmt.Errorf("group: OffsetsRetention %v <= 0", o.OffsetsRetention))
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"MaxMembers", o.MaxMembers}, {"MaxGroups", o.MaxGroups}, {"MaxGroupIDBytes", o.MaxGroupIDBytes},
		{"MaxProtocolMetadataBytes", o.MaxProtocolMetadataBytes}, {"MaxProtocols", o.MaxProtocols},
		{"MaxOffsetMetadataBytes", o.MaxOffsetMetadataBytes},
	} {
		if f.v < 1 {
			errs = append(errs, fmt.Errorf("group: %s %d < 1", f.name, f.v))
		}
	}
	return errors.Join(errs...)
}

func randomSuffix() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
