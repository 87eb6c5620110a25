// Package quorum is Weir's Raft metadata quorum: the controller voters that
// replicate the cluster's metadata log, built on go.etcd.io/raft/v3.
//
// It replicates opaque []byte entries to a StateMachine (the metadata image,
// in package metadata, implements it without importing this package). The
// parts:
//
//   - Storage (storage.go, record.go): raft's log, HardState and snapshots on
//     Pebble, every record checksummed; an in-memory raft.MemoryStorage that
//     raft reads is only changed after the Pebble batch holding the same
//     change is synced. The directory is bound at its first start to a
//     cluster id, a node id and a voter set, and refuses others.
//   - Node (node.go): a raft.RawNode driven by one goroutine: it ticks on an
//     injected ticker, steps received messages and proposals, and handles
//     each Ready in the order etcd raft requires (persist HardState, entries
//     and snapshot; send messages; apply the snapshot and committed entries;
//     Advance). PreVote and CheckQuorum are on.
//   - Transport (transport.go): length-prefixed, checksummed raftpb.Message
//     frames over TCP between voters, one outbound connection per peer,
//     reconnected with backoff; Dialer and Listener are injected so tests
//     put a fault layer (package faultnet) under every link.
package quorum
