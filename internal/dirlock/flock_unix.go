//go:build unix

package dirlock

import (
	"errors"
	"os"
	"syscall"
)

// errWouldBlock is what lockFile returns when another holder has the lock.
var errWouldBlock = syscall.EWOULDBLOCK

// lockFile takes an exclusive flock on f without waiting. NB: flock (unlike
// fcntl's record locks) belongs to the open file description, so a second
// open of the same file in the same process conflicts too.
func lockFile(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
