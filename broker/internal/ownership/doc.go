// Package ownership makes a broker's coordinator (the group coordinator
// over __consumer_offsets; the transaction coordinator over
// __transaction_state) follow the leadership of its internal topic's
// partitions in a cluster, and writes its records through replication.
//
// Kafka's rule: the coordinator of a key is the leader of the key's
// partition of the coordinator's internal topic. When leadership moves
// (a broker killed, shut down, or an election) the new leader loads the
// partition's state from its replica and the old one unloads it. Three
// pieces:
//
//   - Tracker (tracker.go) is the load/unload decision, a pure state
//     machine: given what the metadata and the replica say of each
//     partition it answers which partitions to unload and which to load,
//     and remembers the leader epoch each was loaded at (a partition lost
//     and won back between two looks is reloaded: another leader may have
//     written to it meanwhile).
//   - Follower (follower.go) drives a Tracker against a Coordinator (Load,
//     Unload) from a Source of observations, at every change of the
//     metadata view and on a short tick (readiness changes without one).
//   - Append (append.go) writes a coordinator's batch to its partition as
//     a leader's produce: refused unless this broker leads the partition,
//     appended at the partition's leader epoch and, for a commit, answered
//     only once the high watermark covers it (acks=all).
//
// A partition is loaded only once it is Ready: this broker's replica leads
// it in the epoch the metadata names and its high watermark has reached the
// first offset of that epoch. Everything any earlier leader acknowledged
// lies below that offset (the new leader was in the ISR), so a coordinator
// that loads what lies below the high watermark then loads every
// acknowledged commit and nothing that may still be truncated.
package ownership
