// Package group is Weir's consumer group coordinator: the classic Kafka group
// protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) and committed offsets
// (OffsetCommit, OffsetFetch, OffsetDelete), plus the group admin requests
// (DescribeGroups, ListGroups, DeleteGroups).
//
// The package has two layers, in the manner of etcd raft's RawNode and Node:
//
//   - Coordinator is a pure state machine. It owns no goroutine, does no I/O
//     and reads no clock: every input carries the time. Step feeds it one
//     request, Tick tells it that time has passed; Ready hands out what it
//     produced: responses to send (possibly for requests stepped long ago:
//     JoinGroup and SyncGroup are answered when the rebalance completes),
//     records to persist to the internal topic __consumer_offsets, and the next
//     deadline at which it wants a Tick. Every scenario is therefore
//     deterministic and tested with datadriven files under testdata/.
//   - Driver is the thin loop around it: it serialises access with one mutex,
//     persists records through a Log before releasing the responses they back
//     (offset records durably, Log.Append; group metadata written, Log.Write,
//     as Kafka acknowledges it once appended), wakes the coordinator at its
//     deadlines, and replays __consumer_offsets when the broker starts.
//
// Records in __consumer_offsets use Kafka's own key and value encodings (see
// records.go), so tools that decode Kafka's internal topic read Weir's too.
//
// Ownership (ownership.go). A group belongs to partition Partition(group,
// OffsetsPartitions) of __consumer_offsets, and a coordinator serves only
// the groups of the partitions it owns; a request for any other group is
// answered NOT_COORDINATOR and creates nothing. A single-node broker owns
// every partition. In a cluster a broker owns the partitions it leads:
// its Driver is opened Unowned and broker/internal/ownership moves it with
// leadership: Driver.Load replays a partition it wins from its replica
// (below the high watermark; the coordinator's Load and
// FinishLoadPartition) and Driver.Unload drops the groups of one it loses
// (which answers their waiting joins and syncs NOT_COORDINATOR). The
// TopicLog then writes through replication (TopicLog.Replicate): a commit
// returns once the high watermark covers it.
package group
