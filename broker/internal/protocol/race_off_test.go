//go:build !race

package protocol

// maxFrameAllocRatio bounds the bytes TestReadFrameStepsReused may allocate
// per byte of frame read.
const maxFrameAllocRatio = 0.25
