// Package quorum is Weir's Raft metadata quorum: the controller voters that
// replicate the cluster's metadata log, built on go.etcd.io/raft/v3.
//
// It replicates opaque []byte entries to a StateMachine (the metadata image,
// in package metadata, implements it without importing this package). The
// parts:
//
//   - Storage (storage.go, record.go): raft's log, HardState and snapshots on
//     Pebble, every record checksummed (CRC-32C over key and payload); the
//     raft.MemoryStorage that raft reads is changed only after the Pebble
//     batch holding the same change is synced. Open checks every record and
//     the log's invariants and refuses corruption (CorruptionError, naming
//     the directory and index). The directory is bound at its first start
//     to a cluster id, a node id and a voter set, and refuses others.
//   - Node (node.go, options.go): a raft.RawNode driven by one goroutine
//     (run): it ticks on an injected Ticker, steps received messages,
//     proposals, leadership transfers and delivery reports, and handles
//     each Ready in the order etcd raft requires (persist HardState,
//     entries and snapshot in one synced batch; send messages; restore the
//     snapshot and apply committed entries; Advance), then snapshots the
//     state machine every SnapshotEntries and compacts the log. PreVote and
//     CheckQuorum are on. Proposals are taken on the leader only, carry a
//     proposal id so the leader recognizes its entry at the index it was
//     appended at, are retried at each tick while raft drops them, and fail
//     with ErrLeadershipLost when the node stops leading first.
//   - Transport (transport.go): length-prefixed, checksummed raftpb.Message
//     frames over TCP, one outbound connection per peer after a handshake
//     naming the cluster and both nodes, reconnected with jittered backoff.
//     Dialer and Listener are injected so tests put a fault layer (package
//     faultnet) under every link.
//
// Concurrency: every raft call happens on the run goroutine; other
// goroutines reach it through channels (propc, recvc, transferc, the
// transport's reportc) and read Status from an atomic pointer. Locks, in
// order: Node.startMu (Start and Close), then transport.mu (open
// connections) or transport.repMu (pending reports), both leaves.
package quorum
