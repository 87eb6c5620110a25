package storage

import (
	"sort"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// FileRange is whole batches of a segment file as a byte range of a file
// descriptor of its own, for a sender that copies from file to socket in
// the kernel (sendfile): the batches are never read into memory. The
// descriptor stays valid however the log changes meanwhile (a segment
// deleted by retention or swapped by compaction is still readable
// through it); Close closes it.
type FileRange struct {
	FD  int
	Off int64
	Len int
}

// ReadRange is Read as a FileRange: whole batches from the batch that
// holds from, at most maxBytes of them (but at least the first), from one
// segment, and only below the high watermark. ok is false, with nothing to
// close, when that cannot be told without reading the batches, or would
// be fewer than minBytes: the caller then reads them (ReadInto).
//
// NB: the range ends at an offset index entry (each starts a batch) or at
// the segment's end, so it may fall up to Options' IndexIntervalBytes and
// a batch short of maxBytes. Only logs on the operating system's
// filesystem (vfs.Default) give ranges: a wrapped filesystem (tests'
// fault injection) sees every read.
func (l *Log) ReadRange(from Offset, maxBytes, minBytes int) (FileRange, bool, error) {
	return l.readRange(from, maxBytes, minBytes, false)
}

// readRange is ReadRange, up to the log end offset instead of the high
// watermark when pastHW (ReadReplicaRange).
func (l *Log) readRange(from Offset, maxBytes, minBytes int, pastHW bool) (FileRange, bool, error) {
	if l.fs != vfs.Default {
		return FileRange{}, false, nil
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if from < l.logStart || from > l.leo {
		return FileRange{}, false, nil // Read reports it
	}
	hw := l.hw
	if pastHW {
		hw = l.leo
	}
	if from >= hw {
		return FileRange{}, false, nil
	}
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > from }) - 1
	if i < 0 {
		return FileRange{}, false, nil
	}
	s := l.segs[i]
	if s.next <= from || s.size == 0 {
		return FileRange{}, false, nil // a gap left by compaction: Read goes on
	}
	pos, h, ok, err := s.seekBatch(from)
	if err != nil || !ok || Offset(h.BaseOffset) >= hw {
		return FileRange{}, false, err
	}
	limit := min(pos+max(int64(maxBytes), int64(h.Size())), s.size)
	if hw < s.next {
		// Every batch before the index entry at or below the high
		// watermark's offset is below it.
		limit = min(limit, int64(lookupEntry(s.offIdx, uint32(hw-s.base)).pos))
	}
	end := limit
	if end != s.size || hw < s.next {
		// Cut at the last index entry at or before limit.
		j := sort.Search(len(s.offIdx), func(j int) bool { return int64(s.offIdx[j].pos) > limit }) - 1
		if j < 0 {
			return FileRange{}, false, nil
		}
		end = int64(s.offIdx[j].pos)
	}
	if end-pos < int64(max(minBytes, 1)) {
		return FileRange{}, false, nil
	}
	dup, ok, err := s.f.dupFd()
	if err != nil || !ok {
		return FileRange{}, false, nil // no descriptor, or out of them: read instead
	}
	return FileRange{FD: dup, Off: pos, Len: int(end - pos)}, true, nil
}
