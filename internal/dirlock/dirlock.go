package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// FileName is the name of the lock file Acquire creates in a directory.
const FileName = "weir.lock"

// pidWidth is the fixed size of the lock file's contents: the pid, a
// newline and space padding. NB: the file never grows after it was first
// written, so rewriting the pid in place needs no new disk block and works
// on a full disk (on filesystems that overwrite in place).
const pidWidth = 24

// ErrLocked is what a LockedError matches with errors.Is.
var ErrLocked = errors.New("dirlock: directory is locked")

// LockedError says that another holder has the directory.
type LockedError struct {
	// Dir is the directory that is locked.
	Dir string
	// PID is the pid written by the holder, 0 when it could not be read
	// (the holder may be between taking the lock and writing its pid).
	PID int
}

func (e *LockedError) Error() string {
	who := "another process"
	switch {
	case e.PID == os.Getpid():
		who = fmt.Sprintf("this process (pid %d)", e.PID)
	case e.PID > 0:
		who = fmt.Sprintf("process %d", e.PID)
	}
	return fmt.Sprintf("dirlock: directory %s is in use by %s (lock file %s)", e.Dir, who, filepath.Join(e.Dir, FileName))
}

// Is makes errors.Is(err, ErrLocked) true for a LockedError.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// IsLocked reports whether err says the directory is held by another
// holder.
func IsLocked(err error) bool { return errors.Is(err, ErrLocked) }

// Lock is a held directory lock. Release it with Release.
type Lock struct {
	dir    string
	f      *os.File
	pidErr error
}

// Acquire creates dir if needed and takes its lock without waiting. If
// another holder (another process, or another Acquire in this process that
// has not released it) has it, Acquire returns a *LockedError naming dir
// and the holder's pid.
//
// The lock holds even if the pid cannot be written (a full disk the first
// time the lock file is created): Acquire then succeeds and PIDError says
// why, so that the caller can log it.
func Acquire(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("dirlock: create %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("dirlock: open %s: %w", path, err)
	}
	if err := lockFile(f); err != nil {
		pid := readPID(f)
		f.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, &LockedError{Dir: dir, PID: pid}
		}
		return nil, fmt.Errorf("dirlock: lock %s: %w", path, err)
	}
	l := &Lock{dir: dir, f: f}
	l.pidErr = writePID(f, os.Getpid())
	return l, nil
}

// Dir returns the locked directory.
func (l *Lock) Dir() string { return l.dir }

// PIDError returns why the holder's pid could not be written into the lock
// file, or nil. The lock is held either way.
func (l *Lock) PIDError() error { return l.pidErr }

// Release releases the lock. The lock file stays (removing it would let a
// waiter lock a file that a third opener no longer sees). Release is
// idempotent.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor releases the flock
	l.f = nil
	if err != nil {
		return fmt.Errorf("dirlock: release %s: %w", l.dir, err)
	}
	return nil
}

// writePID writes pid at the start of f, padded to pidWidth bytes.
func writePID(f *os.File, pid int) error {
	s := strconv.Itoa(pid) + "\n"
	s += strings.Repeat(" ", max(0, pidWidth-len(s)))
	if _, err := f.WriteAt([]byte(s), 0); err != nil {
		return fmt.Errorf("dirlock: write pid to %s: %w", f.Name(), err)
	}
	if err := f.Truncate(int64(len(s))); err != nil { // older, longer contents
		return fmt.Errorf("dirlock: write pid to %s: %w", f.Name(), err)
	}
	return nil
}

// readPID reads the pid a holder wrote into f, or 0.
func readPID(f *os.File) int {
	var buf [pidWidth]byte
	n, _ := f.ReadAt(buf[:], 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
