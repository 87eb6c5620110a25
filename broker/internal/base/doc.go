// Package base holds the quantities every layer of the broker's log path
// shares, so that the storage engine, the topic registry's Log interface
// and the protocol handlers speak of one offset type and one epoch type
// rather than bare integers converted at each boundary. Kafka's wire types
// (int64 offsets, int32 epochs in kmsg) are converted only where a request
// is decoded or a response encoded.
package base
