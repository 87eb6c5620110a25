// Package base holds the quantities every layer of the broker's log path
// shares, so that the storage engine, the topic registry's Log interface
// and the protocol handlers speak of one offset type and one epoch type
// rather than bare integers converted at each boundary. Kafka's wire types
// (int64 offsets, int32 epochs in kmsg) are converted only where a request
// is decoded or a response encoded.
package base

// Offset is a record's position in a partition log: its base offset plus
// its offset delta within its batch. The log start offset, the high
// watermark and the log end offset are Offsets too (positions between
// records: the first readable, the first not yet readable, and the one the
// next append gets).
type Offset int64

// Epoch is a partition leader epoch (KIP-101): it numbers the leaderships
// of a partition and is written into every batch appended under it
// (partitionLeaderEpoch).
type Epoch int32
