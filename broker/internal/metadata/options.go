package metadata

import (
	"crypto/rand"
	"errors"
	"fmt"
	"time"
)

// Options configure a Controller. The zero value of each field means its
// default; EnsureDefaults fills them in.
type Options struct {
	// ClusterID, when set, is the cluster id every broker registration must
	// carry (INCONSISTENT_CLUSTER_ID otherwise). Default "": not checked.
	ClusterID string

	// Self and SelfIncarnation name the broker that runs in the
	// controller's own process (a node with both roles), Self 0 if none.
	// A registration of Self with SelfIncarnation comes from this very
	// process, which holds Self's data directory: an earlier incarnation
	// of Self that has not been fenced is a process that is gone, and the
	// registration is not refused as a duplicate while its session lasts.
	Self            NodeID
	SelfIncarnation IncarnationID

	// SessionTimeout is how long a broker may go without a heartbeat before
	// the controller fences it and moves its leaderships away. Default 9s,
	// as Kafka's broker.session.timeout.ms.
	SessionTimeout time.Duration

	// ProbeAfter is how old a broker's last heartbeat may get before the
	// controller probes its listener (see liveness.go: a refused
	// connection fences it at once, anything else waits for
	// SessionTimeout). Default 1s (brokers heartbeat every 500ms);
	// negative: never probe, whatever the reason.
	ProbeAfter time.Duration
	// ProbeInterval is the least time between two probes of one broker.
	// Default 500ms.
	ProbeInterval time.Duration

	// DefaultPartitions is the partition count of a topic created with
	// NumPartitions -1. Default 1, as Kafka's num.partitions.
	DefaultPartitions int32

	// DefaultReplicationFactor is the replication factor of a topic created
	// with ReplicationFactor -1. Default 1, as Kafka's
	// default.replication.factor.
	DefaultReplicationFactor int16

	// ProducerIDBlockSize is how many producer ids one AllocateProducerIDs
	// hands a broker. Default 1000, as Kafka.
	ProducerIDBlockSize int32

	// MaxPartitionsPerRequest caps the partitions one CreateTopics or
	// CreatePartitions request may create in all, so that one request
	// cannot make the metadata image (and the entry that carries it)
	// unboundedly large; topics beyond it are answered INVALID_PARTITIONS.
	// Default 100000.
	MaxPartitionsPerRequest int32

	// UncleanLeaderElection is the broker default of
	// unclean.leader.election.enable, for topics that do not set it (and
	// when no cluster-wide broker default is set in the metadata): when
	// every ISR member of a partition is down, elect another live replica
	// (losing the records it lacks) rather than leave the partition
	// offline. Default false, as Kafka.
	UncleanLeaderElection bool

	// LeaderRebalanceInterval is how often the controller moves the
	// leadership of every partition whose preferred replica (its first) is
	// an unfenced ISR member but does not lead back to it (Kafka's
	// auto.leader.rebalance.enable with leader.imbalance.check.interval,
	// without the per-broker imbalance threshold: any such partition
	// moves). A broker that returns thus gets its leaderships back within
	// one interval of rejoining the ISR. Default 30s (Kafka's 300s:
	// Weir's clusters are small and a move costs each client one metadata
	// refresh); negative: never (ElectLeaders still moves them).
	LeaderRebalanceInterval time.Duration

	// NewTopicID returns the id of a topic being created; ids that are zero
	// or taken are drawn again. Default: a random (version 4) UUID. Tests
	// inject a counter.
	NewTopicID func() TopicID

	// ValidateConfig, when set, is asked about every config value a request
	// sets (CreateTopics, IncrementalAlterConfigs); a non-nil error refuses
	// the resource with INVALID_CONFIG and the error's text. Deleting a key
	// is always allowed. Default nil: every non-empty key is accepted.
	ValidateConfig func(res ConfigResource, key, value string) error

	// ListConfig, when set, tells which config keys hold comma-separated
	// lists and their default value: IncrementalAlterConfigs then allows
	// APPEND and SUBTRACT only on list keys (INVALID_CONFIG otherwise, as
	// Kafka), works on the default when the key is not set, and refuses a
	// list left empty. Default nil: APPEND and SUBTRACT work on any key,
	// starting from the empty list.
	ListConfig func(res ConfigResource, key string) (defaultValue string, isList bool)
}

// EnsureDefaults fills in zero fields with their defaults and returns o.
func (o *Options) EnsureDefaults() *Options {
	if o.SessionTimeout == 0 {
		o.SessionTimeout = 9 * time.Second
	}
	if o.ProbeAfter == 0 {
		o.ProbeAfter = time.Second
	}
	if o.ProbeInterval == 0 {
		o.ProbeInterval = 500 * time.Millisecond
	}
	if o.DefaultPartitions == 0 {
		o.DefaultPartitions = 1
	}
	if o.DefaultReplicationFactor == 0 {
		o.DefaultReplicationFactor = 1
	}
	if o.ProducerIDBlockSize == 0 {
		o.ProducerIDBlockSize = 1000
	}
	if o.MaxPartitionsPerRequest == 0 {
		o.MaxPartitionsPerRequest = 100000
	}
	if o.LeaderRebalanceInterval == 0 {
		o.LeaderRebalanceInterval = 30 * time.Second
	}
	if o.NewTopicID == nil {
		o.NewTopicID = randomTopicID
	}
	return o
}

// Validate reports every problem with o at once.
func (o *Options) Validate() error {
	var errs []error
	if o.SessionTimeout <= 0 {
		errs = append(errs, fmt.Errorf("metadata: SessionTimeout %v is not positive", o.SessionTimeout))
	}
	if o.ProbeInterval <= 0 {
		errs = append(errs, fmt.Errorf("metadata: ProbeInterval %v is not positive", o.ProbeInterval))
	}
	if o.DefaultPartitions < 1 {
		errs = append(errs, fmt.Errorf("metadata: DefaultPartitions %d < 1", o.DefaultPartitions))
	}
	if o.DefaultReplicationFactor < 1 {
		errs = append(errs, fmt.Errorf("metadata: DefaultReplicationFactor %d < 1", o.DefaultReplicationFactor))
	}
	if o.ProducerIDBlockSize < 1 {
		errs = append(errs, fmt.Errorf("metadata: ProducerIDBlockSize %d < 1", o.ProducerIDBlockSize))
	}
	if o.MaxPartitionsPerRequest < 1 {
		errs = append(errs, fmt.Errorf("metadata: MaxPartitionsPerRequest %d < 1", o.MaxPartitionsPerRequest))
	}
	if o.NewTopicID == nil {
		errs = append(errs, errors.New("metadata: NewTopicID is nil"))
	}
	return errors.Join(errs...)
}

func randomTopicID() TopicID {
	var id TopicID
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails (Go 1.24+)
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}
