package storage

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/weir-dev/weir/broker/internal/batch"
)

// File name suffixes. A segment with base offset B is the files
// fmt.Sprintf("%020d", B) + each suffix.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	snapshotSuffix  = ".snapshot"
	// tmpSuffix marks a file being written for an atomic replace; leftovers
	// are deleted on open.
	tmpSuffix = ".tmp"
	// cleanedSuffix marks a compacted segment being written; leftovers are
	// deleted on open.
	cleanedSuffix = ".cleaned"
	// swapSuffix marks a compacted segment that is committed: its name is
	// "<base>-<end>.log.swap" and it replaces every segment whose base lies
	// in [base, end).
	swapSuffix = ".swap"
)

func segmentName(base Offset, suffix string) string {
	return fmt.Sprintf("%020d%s", int64(base), suffix)
}

// parseBase parses the 20-digit offset at the start of name.
func parseBase(name string) (Offset, bool) {
	if len(name) < 20 {
		return 0, false
	}
	v, err := strconv.ParseInt(name[:20], 10, 64)
	if err != nil || v < 0 {
		return 0, false
	}
	return Offset(v), true
}

// parseSwapName parses "<base>-<end>.log.swap".
func parseSwapName(name string) (base, end Offset, ok bool) {
	rest, found := strings.CutSuffix(name, logSuffix+swapSuffix)
	if !found || len(rest) != 41 || rest[20] != '-' {
		return 0, 0, false
	}
	b, ok1 := parseBase(rest[:20])
	e, ok2 := parseBase(rest[21:])
	return b, e, ok1 && ok2 && e > b
}

// segment is one .log file and its in-memory indexes.
//
// The appender (holding Log.appendMu) writes the file and then, holding
// Log.mu, updates the fields below; readers read them holding Log.mu for
// reading. Invariant: the file holds whole valid batches in
// [0, size) with base offsets in [base, next).
type segment struct {
	base Offset
	// f is the segment's file through the log's FileCache: pinned open
	// while the segment is active, closed and reopened by the cache once
	// sealed.
	f    *segFile
	path string
	// fileClosed is set, holding Log.syncMu, when f is closed.
	fileClosed bool
	// remnant says the file may hold bytes past size that could not be
	// cut (see truncateFile): the next append zeroes them first. Only the
	// active segment's matters; guarded by Log.appendMu.
	remnant bool
	// cacheDropped is how much of the file DropSyncedCache has dropped
	// from the page cache. Guarded by Log.appendMu.
	cacheDropped int64

	size    int64  // bytes of whole batches
	next    Offset // offset after the last batch; base when empty
	maxTs   int64  // largest batch max timestamp; -1 when none
	maxTsAt Offset // base offset of the batch holding maxTs
	// firstAppendMS is the wall-clock time (Unix ms) of the first append
	// into this segment since it was opened, for segment.ms; 0 if none.
	firstAppendMS int64

	offIdx       []offsetEntry
	timeIdx      []timeEntry
	sinceIndexed int64 // bytes appended since the last offset index entry
	// lazy is set while offIdx and timeIdx are not loaded (a sealed
	// segment taken from a clean shutdown's marker): whoever reads them
	// calls ensureIndexes first. Once cleared it stays clear.
	lazy atomic.Pointer[lazyIndexes]
}

// lazyIndexes is what loading a sealed segment's indexes on first use
// needs.
type lazyIndexes struct {
	mu       sync.Mutex // held while loading
	fs       vfs.FS
	dir      string
	interval int32
	logger   *slog.Logger
}

// ensureIndexes loads the segment's indexes if they are not loaded yet:
// from its index files, checked against the segment's size and the batch
// at their last entry, or where they are missing or wrong, from a scan of
// the batch headers (a clean shutdown or the recovery-point checkpoint
// vouched for the file). Callable holding Log.mu for reading: loads are
// serialized per segment, and offIdx and timeIdx are published before lazy
// is cleared.
func (s *segment) ensureIndexes() {
	lz := s.lazy.Load()
	if lz == nil {
		return
	}
	lz.mu.Lock()
	defer lz.mu.Unlock()
	if s.lazy.Load() == nil {
		return
	}
	off, tim, err := readIndexFiles(lz.fs, lz.dir, s.base, s.size)
	if err == nil && len(off) > 0 {
		// As open checks a sealed segment's index files: the batch at
		// the last entry must be the one it names (index files are not
		// fsynced; a crash may have left them wrong).
		last := off[len(off)-1]
		var hbuf [batch.HeaderSize]byte
		if h, herr := readHeaderAt(s.f, int64(last.pos), &hbuf); herr != nil {
			err = herr
		} else if Offset(h.BaseOffset) != s.base+Offset(last.rel) {
			err = fmt.Errorf("storage: last index entry names offset %d, batch has %d", s.base+Offset(last.rel), h.BaseOffset)
		}
	}
	if err != nil {
		lz.logger.Warn("storage: rebuilding a sealed segment's indexes from its batches", "segment", s.path, "reason", err)
		tmp := newSegment(s.base, nil, s.path)
		if _, serr := scanSegment(s.f, 0, s.size, s.base, false, 0, func(h batch.Header, pos int64) error {
			tmp.indexBatchLocked(h, pos, lz.interval)
			return nil
		}); serr != nil {
			// Reads then scan the segment from its start.
			lz.logger.Warn("storage: reading a sealed segment to index it", "segment", s.path, "err", serr)
		}
		off, tim = tmp.offIdx, tmp.timeIdx
	}
	s.offIdx, s.timeIdx = off, tim
	s.lazy.Store(nil)
}

// readIndexFiles reads and checks the index files of the sealed segment at
// base, of size bytes.
func readIndexFiles(fs vfs.FS, dir string, base Offset, size int64) ([]offsetEntry, []timeEntry, error) {
	ob, err := readFile(fs, filepath.Join(dir, segmentName(base, indexSuffix)))
	if err != nil {
		return nil, nil, err
	}
	tb, err := readFile(fs, filepath.Join(dir, segmentName(base, timeIndexSuffix)))
	if err != nil {
		return nil, nil, err
	}
	off, err := decodeOffsetIndex(ob, size)
	if err != nil {
		return nil, nil, err
	}
	if size == 0 {
		if len(off) != 0 || len(tb) != 0 {
			return nil, nil, fmt.Errorf("storage: index entries for an empty segment")
		}
		return nil, nil, nil
	}
	if len(off) == 0 || off[0].pos != 0 {
		return nil, nil, fmt.Errorf("storage: offset index does not start at the segment's start")
	}
	tim, err := decodeTimeIndex(tb, off[len(off)-1].rel)
	if err != nil {
		return nil, nil, err
	}
	return off, tim, nil
}

func newSegment(base Offset, f *segFile, path string) *segment {
	return &segment{base: base, f: f, path: path, next: base, maxTs: -1, maxTsAt: -1}
}

// indexBatchLocked records a batch appended at pos in the in-memory
// indexes. Caller holds Log.mu for writing (or owns the segment alone).
func (s *segment) indexBatchLocked(h batch.Header, pos int64, interval int32) {
	rel := uint32(h.BaseOffset - int64(s.base))
	size := int64(h.Size())
	if h.MaxTimestamp > s.maxTs {
		s.maxTs = h.MaxTimestamp
		s.maxTsAt = Offset(h.BaseOffset)
	}
	if n := len(s.offIdx); n == 0 || (s.sinceIndexed >= int64(interval) && rel > s.offIdx[n-1].rel) {
		s.offIdx = append(s.offIdx, offsetEntry{rel: rel, pos: uint32(pos)})
		s.sinceIndexed = 0
		// Time entries go beside offset entries, so the time index is as
		// sparse as the offset index.
		if n := len(s.timeIdx); s.maxTs >= 0 && (n == 0 || (s.maxTs > s.timeIdx[n-1].ts && rel > s.timeIdx[n-1].rel)) {
			s.timeIdx = append(s.timeIdx, timeEntry{ts: s.maxTs, rel: rel})
		}
	}
	s.sinceIndexed += size
	s.size = pos + size
	s.next = Offset(h.LastOffset() + 1)
}

// headerAt reads the header of the batch at pos.
func readHeaderAt(f vfs.File, pos int64, buf *[batch.HeaderSize]byte) (batch.Header, error) {
	n, err := f.ReadAt(buf[:], pos)
	if n < batch.HeaderSize {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return batch.Header{}, fmt.Errorf("storage: read header at %d: %w", pos, err)
	}
	return batch.ParseHeader(buf[:])
}

// scanResult is what a scan of a segment found.
type scanResult struct {
	end     int64 // position after the last valid batch
	corrupt error // why the scan stopped before the file's end, if it did
}

// scanSegment walks the batches of f from pos to fileSize, checking each
// fully (CRC included) when full is set and only its header and bounds
// otherwise, and checking that base offsets increase from minNext on. It
// calls fn for each good batch; an error from fn marks that batch bad. It
// stops at the first bad batch.
func scanSegment(f vfs.File, pos, fileSize int64, minNext Offset, full bool, bufSize int, fn func(h batch.Header, pos int64) error) (scanResult, error) {
	var hbuf [batch.HeaderSize]byte
	var buf []byte
	if full {
		// No larger than what is left to read: recovery scans every
		// partition's active segment, most of them far smaller than the
		// buffer.
		buf = make([]byte, min(int64(max(bufSize, 64<<10)), max(fileSize-pos, 0)))
	}
	bufStart, bufEnd := int64(0), int64(0) // buf holds file bytes [bufStart, bufEnd)
	for pos < fileSize {
		if fileSize-pos < batch.HeaderSize {
			return scanResult{end: pos, corrupt: fmt.Errorf("storage: %d stray bytes at %d", fileSize-pos, pos)}, nil
		}
		var h batch.Header
		var err error
		if !full {
			h, err = readHeaderAt(f, pos, &hbuf)
			if err == nil && pos+int64(h.Size()) > fileSize {
				err = fmt.Errorf("storage: batch at %d of %d bytes passes the end %d", pos, h.Size(), fileSize)
			}
		} else {
			if pos+batch.HeaderSize > bufEnd {
				bufStart, bufEnd, err = fill(f, buf, pos, fileSize)
				if err != nil {
					return scanResult{}, err
				}
			}
			h, err = batch.ParseHeader(buf[pos-bufStart : bufEnd-bufStart])
			if err == nil {
				size := int64(h.Size())
				if pos+size > fileSize {
					err = fmt.Errorf("storage: batch at %d of %d bytes passes the end %d", pos, size, fileSize)
				} else {
					var b []byte
					if pos+size <= bufEnd {
						b = buf[pos-bufStart : pos-bufStart+size]
					} else if size <= int64(len(buf)) {
						bufStart, bufEnd, err = fill(f, buf, pos, fileSize)
						if err != nil {
							return scanResult{}, err
						}
						b = buf[:size]
					} else {
						b = make([]byte, size)
						if _, err := f.ReadAt(b, pos); err != nil {
							return scanResult{}, fmt.Errorf("storage: read batch at %d: %w", pos, err)
						}
					}
					h, err = batch.Validate(b)
				}
			}
		}
		if err == nil && Offset(h.BaseOffset) < minNext {
			err = fmt.Errorf("storage: batch at %d has base offset %d below %d", pos, h.BaseOffset, minNext)
		}
		if err == nil {
			err = fn(h, pos)
		}
		if err != nil {
			return scanResult{end: pos, corrupt: err}, nil
		}
		minNext = Offset(h.LastOffset() + 1)
		pos += int64(h.Size())
	}
	return scanResult{end: pos}, nil
}

// fill reads file bytes from pos into buf.
func fill(f vfs.File, buf []byte, pos, fileSize int64) (int64, int64, error) {
	n := min(int64(len(buf)), fileSize-pos)
	m, err := f.ReadAt(buf[:n], pos)
	if int64(m) < n {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, fmt.Errorf("storage: read at %d: %w", pos, err)
	}
	return pos, pos + n, nil
}

// writeIndexes writes the segment's index files, each through a temporary
// file and a rename. Without synced, nothing is fsynced: an index is then
// only a hint that open (or, for a segment taken from a checkpoint, its
// first read) checks against the log and rebuilds when missing or
// inconsistent, and a read that meets a wrong entry scans the segment
// instead. With synced each file's data is fsynced before its rename, so
// that the next directory sync makes the indexes durable: those of the
// sealed segments below the recovery point (recovery-point-checkpoint).
func (s *segment) writeIndexes(fs vfs.FS, dir string, synced bool) error {
	if err := writeFileReplace(fs, filepath.Join(dir, segmentName(s.base, indexSuffix)), encodeOffsetIndex(s.offIdx), synced); err != nil {
		return err
	}
	return writeFileReplace(fs, filepath.Join(dir, segmentName(s.base, timeIndexSuffix)), encodeTimeIndex(s.timeIdx), synced)
}

// writeFileReplace writes data to path through a temporary file and a
// rename, fsyncing the data first if synced; the rename is not made
// durable.
func writeFileReplace(fs vfs.FS, path string, data []byte, synced bool) error {
	tmp := path + tmpSuffix
	f, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil && synced {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fs.Rename(tmp, path)
	}
	if err != nil {
		fs.Remove(tmp)
	}
	return err
}
