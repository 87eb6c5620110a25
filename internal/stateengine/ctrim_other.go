//go:build !linux || !cgo || musl

package stateengine

// Where the C allocator is not glibc's (or, without cgo, Pebble's memory is
// on the Go heap) there is nothing to tune.

func limitCArenas() {}

func trimCHeap() {}
