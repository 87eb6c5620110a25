// Package metadata is the cluster metadata of a Weir cluster: the records of
// the metadata log, the in-memory image every node builds by applying them,
// and the controller that turns requests into records.
//
// The metadata log is replicated by the Raft quorum (package quorum); this
// package does not import it. The quorum hands each committed entry (an
// opaque []byte) to a state machine with Apply, Snapshot and Restore: *Image
// has exactly that shape.
//
//   - Records (records.go, codec.go): one Go type per record kind
//     (RegisterBrokerRecord, TopicRecord, PartitionRecord, ...), each with a
//     version byte on the wire, in a compact binary form. A log entry is a
//     list of records applied together or not at all (EncodeEntry,
//     DecodeEntry); a snapshot is the list of records that rebuilds an
//     image.
//   - Image (image.go, apply.go): brokers and whether they are fenced,
//     topics by name and id, partitions with replicas, ISR, leader and
//     epochs, configs, the producer-id blocks handed out, and the applied
//     offset. Apply refuses an entry whose records do not fit the image and
//     then leaves the image as it was.
//   - Controller (controller.go, brokers.go, topics.go, configs.go,
//     placement.go): a pure state machine in the manner of etcd raft's
//     RawNode: no goroutines, no I/O, no clock (time is an argument). It
//     answers broker registrations and heartbeats, fences brokers whose
//     session expired, moves leaderships on fencing and controlled shutdown,
//     creates and deletes topics and partitions, changes configs and hands
//     out producer-id blocks. Each request returns the records to propose
//     (as one entry) and the reply to send once they commit. The controller
//     applies its own records to a private image at once, so that the next
//     request sees them before they commit; when a proposal fails it is
//     Reset to the committed image. The driver tells it the committed
//     offset (Committed) and ticks it at its Deadline (session expiry).
//
// Correctness does not rest on the controller alone: the image checks every
// record against its state and the invariants after every entry (a leader
// is an unfenced broker in its partition's ISR, ...), and refuses an entry
// that does not fit as a whole, identically on every node.
package metadata
