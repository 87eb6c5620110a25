// Package broker is Weir's log: a partitioned, durable commit log that
// speaks the Apache Kafka wire protocol, so that existing Kafka clients and
// tools work against it unchanged.
//
// Storage lives in broker/internal/storage, the protocol handlers in
// broker/internal/protocol, and the group coordinator in
// broker/internal/group. This package ties them into a server.
package broker
