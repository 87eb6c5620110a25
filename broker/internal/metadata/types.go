package metadata

import (
	"encoding/hex"
	"fmt"
)

// NodeID names a broker (and, when it is also a voter, a controller).
type NodeID int32

// NoLeader is the leader of a partition none of whose in-sync replicas can
// lead: all are fenced.
const NoLeader NodeID = -1

// BrokerEpoch is what the controller hands a broker when it registers. Every
// request the broker sends afterwards carries it; one carrying an older epoch
// comes from an earlier incarnation and is refused. The controller hands out
// epochs in increasing order across the whole cluster.
type BrokerEpoch int64

// LeaderEpoch counts the leader changes of one partition.
type LeaderEpoch int32

// PartitionEpoch counts every change (leader or ISR) of one partition.
type PartitionEpoch int32

// ProducerID is an idempotent or transactional producer's id.
type ProducerID int64

// TopicName is a topic's name; TopicID its identity. A topic deleted and
// created again under the same name gets a new id.
type TopicName string

// TopicID is a topic's UUID, as Kafka's topic ids (kmsg carries it as
// [16]byte).
type TopicID [16]byte

// String formats the id as a UUID.
func (id TopicID) String() string { return uuidString(id) }

// IsZero reports whether id is the zero UUID, which names no topic.
func (id TopicID) IsZero() bool { return id == TopicID{} }

// IncarnationID tells one run of a broker process from the next: a broker
// draws a fresh one every time it starts.
type IncarnationID [16]byte

// String formats the id as a UUID.
func (id IncarnationID) String() string { return uuidString(id) }

func uuidString(b [16]byte) string {
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// Listener is one endpoint a broker serves clients on.
type Listener struct {
	// Name is the listener's name (PLAINTEXT, ...), unique per broker.
	Name string
	Host string
	Port uint16
	// SecurityProtocol is Kafka's security protocol id (0 PLAINTEXT,
	// 1 SSL, 2 SASL_PLAINTEXT, 3 SASL_SSL).
	SecurityProtocol int16
}

// ConfigType is the kind of resource a config belongs to; the values are
// Kafka's (kmsg.ConfigResourceType).
type ConfigType int8

// The resource types that carry configs in the metadata log.
const (
	// ConfigTopic: the resource name is a topic name.
	ConfigTopic ConfigType = 2
	// ConfigBroker: the resource name is a broker's node id in decimal, or
	// empty for the cluster-wide default of every broker.
	ConfigBroker ConfigType = 4
)

// String names the type as Kafka does.
func (t ConfigType) String() string {
	switch t {
	case ConfigTopic:
		return "topic"
	case ConfigBroker:
		return "broker"
	default:
		return fmt.Sprintf("config-type-%d", int8(t))
	}
}

// ConfigResource names what a config key belongs to.
type ConfigResource struct {
	Type ConfigType
	Name string
}
