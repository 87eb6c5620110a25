//go:build !unix

package dirlock

import (
	"errors"
	"os"
)

// errWouldBlock is never returned on this platform.
var errWouldBlock = errors.New("dirlock: would block")

// lockFile does nothing where flock(2) does not exist: the directory is not
// protected against a second process there.
func lockFile(*os.File) error { return nil }
