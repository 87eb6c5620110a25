// Package serde turns typed values into bytes and back: for record keys and
// values on topics, and for the keys and values of state stores.
//
// A Serde[T] both serializes and deserializes. The package gives serdes for
// strings, raw bytes, big-endian int64, uint64 and float64 (Kafka's
// encodings, so other Kafka clients read them), JSON, and msgpack, Weir's
// default for values. Users plug in their own by implementing Serde or with
// Func.
//
// Hot paths use two optional interfaces: Appender (serialize by appending to
// a caller's buffer; Encoder resolves it once per serde) and AliasDecoder
// (deserialize a value that may share the input bytes, for bytes that are
// never written again).
//
// Nil bytes are a tombstone on a topic and "absent" in a store; callers
// handle nil before calling Deserialize, and serdes never see it (those of
// this package decode nil as the zero value).
//
// Ordering: stores scan keys in bytewise order. String and Bytes preserve the
// order of their values; Int64 does for non-negative values only (negative
// numbers sort after positive ones, as in Kafka's encoding); Uint64 does
// always. Use OrderedInt64 for signed keys that must range-scan in order.
package serde
