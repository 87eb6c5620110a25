// Package cli holds the logic behind weir's admin and data commands (topic,
// produce, consume). Every function takes a franz-go client and plain
// io.Reader/io.Writer values, so the commands in cmd/weir stay thin flag
// parsers and tests drive the functions directly against any
// Kafka-compatible cluster, such as franz-go's in-memory kfake.
//
// Output is human-readable by default; with JSON set, admin commands print
// one JSON document and consume prints one JSON object per line.
package cli
