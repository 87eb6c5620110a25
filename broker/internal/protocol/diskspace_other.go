//go:build !linux && !darwin

package protocol

// diskSpace is not known on this platform.
func diskSpace(string) (total, usable int64) { return -1, -1 }
