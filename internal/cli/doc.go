// Package cli holds the logic behind weir's admin and data commands (topic,
// produce, consume). Every function takes a franz-go client and plain
// io.Reader/io.Writer values, so the commands in cmd/weir stay thin flag
// parsers and tests drive the functions directly against any
// Kafka-compatible cluster, such as franz-go's in-memory kfake.
//
// Output is human-readable by default; with JSON set, admin commands print
// one JSON document and consume prints one JSON object per line.
//
// Failures are returned, never also printed: the weir binary prints each
// line of an error once. A Kafka error code reads as a *CodeError (the
// broker's message first, the code's name last); a cluster that cannot be
// reached at all as an *UnreachableError (errors.Is ErrUnreachable).
package cli
