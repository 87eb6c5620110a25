//go:build !cgo

package stateengine

// Without cgo Pebble's memory is on the Go heap: no C allocator to tune.

func trimCHeap() {}
