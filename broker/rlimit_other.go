//go:build !unix

package broker

// openFileLimit reports that the open-file limit is unknown here.
func openFileLimit() (uint64, bool) { return 0, false }
