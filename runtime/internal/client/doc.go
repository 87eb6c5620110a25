// Package client is the runtime's franz-go plumbing: the partitioner that
// places output records as Kafka's default partitioner does (or as a sink's
// custom partitioner says), per-task tracking of records in flight, the gate
// that bounds the records the producer buffers, the changelog writer and
// reader that back state stores, and internal topic creation and checks
// with kadm.
//
// Nothing here is a Kafka client of its own: every byte goes through kgo.
package client
