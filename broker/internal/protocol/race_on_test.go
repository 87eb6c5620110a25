//go:build race

package protocol

// maxFrameAllocRatio bounds the bytes TestReadFrameStepsReused may allocate
// per byte of frame read. NB: under the race detector sync.Pool drops a
// share of what it is given, on purpose.
const maxFrameAllocRatio = 2.5
