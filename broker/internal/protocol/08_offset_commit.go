package protocol

// OffsetCommit, versions 0-8. Handled by the group coordinator
// (broker/internal/group). A group the coordinator manages accepts commits
// only from its current members in the current generation (also while
// PreparingRebalance); a group without members accepts commits with
// generation -1 (and every v0 commit) from simple consumers. Unknown topics
// or partitions get UNKNOWN_TOPIC_OR_PARTITION, metadata over 4096 bytes
// OFFSET_METADATA_TOO_LARGE. The answer is sent after the commit is
// durable in __consumer_offsets; if that write fails the partitions get
// COORDINATOR_NOT_AVAILABLE and the commit is taken back.
//
// Deviation: the v2-4 retention time field is ignored (offsets expire after
// the broker-wide retention, as since Kafka 2.1).

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { register(kmsg.OffsetCommit, 0, 8, handleGroupRequest) }
