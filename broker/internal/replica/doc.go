// Package replica replicates partition data between the brokers of a Weir
// cluster with Kafka's in-sync-replica pull model: followers fetch from
// leaders (one fetcher per source broker, batching every partition it
// follows), append the leader's batches as they are, and truncate a
// divergent tail by leader epoch; a leader tracks its followers' durable
// ends, keeps the ISR (through the controller's AlterPartition) and caps its
// high watermark at the smallest durable end among the ISR.
//
// Leader (leader.go) is the pure state machine; Manager (manager.go) drives
// it from metadata image changes and follower fetches; fetcher.go is the
// follower side.
package replica
