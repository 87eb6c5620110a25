//go:build !linux

package main

import (
	"errors"
	"net"
	"os"
)

// The replimit nodes drop pages and splice on Linux only; elsewhere the
// workload's nodes refuse to follow by splice and keep their pages.

func dropCached(*os.File, int64, int64) {}

func (s *replStream) spliceFrames(*net.TCPConn) error {
	close(s.done)
	return errors.New("replimit: --splice needs Linux")
}
