package storage

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// Index file layouts (big-endian, Kafka's):
//
//	.index      8-byte entries:  relativeOffset uint32 | position uint32
//	.timeindex 12-byte entries:  timestamp int64 | relativeOffset uint32
//
// relativeOffset is a batch's base offset minus the segment's base offset;
// position is the byte position of that batch in the .log file. Offset
// entries are strictly increasing in both fields. A time entry (T, r) says
// that every batch of the segment up to and including the one at r has a
// max timestamp <= T; entries are strictly increasing in both fields.
const (
	offsetEntrySize = 8
	timeEntrySize   = 12
)

type offsetEntry struct {
	rel uint32 // batch base offset - segment base
	pos uint32 // byte position of the batch in the segment
}

type timeEntry struct {
	ts  int64  // max timestamp of the segment up to and including the batch
	rel uint32 // batch base offset - segment base
}

// lookupOffset returns the position of the last indexed batch whose base
// offset is <= rel, or 0.
func lookupOffset(idx []offsetEntry, rel uint32) uint32 {
	return lookupEntry(idx, rel).pos
}

// lookupEntry returns the last entry whose relative offset is <= rel, or the
// zero entry.
func lookupEntry(idx []offsetEntry, rel uint32) offsetEntry {
	i := sort.Search(len(idx), func(i int) bool { return idx[i].rel > rel })
	if i == 0 {
		return offsetEntry{}
	}
	return idx[i-1]
}

// lookupTime returns the relative offset of the last entry whose timestamp
// is < ts: every batch before that entry's batch is older than ts. ok is
// false when no entry qualifies (scan from the segment's start).
func lookupTime(idx []timeEntry, ts int64) (rel uint32, ok bool) {
	i := sort.Search(len(idx), func(i int) bool { return idx[i].ts >= ts })
	if i == 0 {
		return 0, false
	}
	return idx[i-1].rel, true
}

func encodeOffsetIndex(idx []offsetEntry) []byte {
	b := make([]byte, len(idx)*offsetEntrySize)
	for i, e := range idx {
		binary.BigEndian.PutUint32(b[i*8:], e.rel)
		binary.BigEndian.PutUint32(b[i*8+4:], e.pos)
	}
	return b
}

func encodeTimeIndex(idx []timeEntry) []byte {
	b := make([]byte, len(idx)*timeEntrySize)
	for i, e := range idx {
		binary.BigEndian.PutUint64(b[i*12:], uint64(e.ts))
		binary.BigEndian.PutUint32(b[i*12+8:], e.rel)
	}
	return b
}

// decodeOffsetIndex parses an .index file of a segment of logSize bytes. It
// refuses a file that is not a whole number of entries, whose entries are
// not strictly increasing or that point at or past logSize.
func decodeOffsetIndex(b []byte, logSize int64) ([]offsetEntry, error) {
	if len(b)%offsetEntrySize != 0 {
		return nil, fmt.Errorf("storage: offset index of %d bytes is not a whole number of entries", len(b))
	}
	idx := make([]offsetEntry, len(b)/offsetEntrySize)
	for i := range idx {
		e := offsetEntry{rel: binary.BigEndian.Uint32(b[i*8:]), pos: binary.BigEndian.Uint32(b[i*8+4:])}
		if i > 0 && (e.rel <= idx[i-1].rel || e.pos <= idx[i-1].pos) {
			return nil, fmt.Errorf("storage: offset index entry %d (%d@%d) does not follow (%d@%d)", i, e.rel, e.pos, idx[i-1].rel, idx[i-1].pos)
		}
		if int64(e.pos) >= logSize {
			return nil, fmt.Errorf("storage: offset index entry %d points at %d, past the log's %d bytes", i, e.pos, logSize)
		}
		idx[i] = e
	}
	return idx, nil
}

// decodeTimeIndex parses a .timeindex file, refusing one that is not a whole
// number of strictly increasing entries or whose offsets reach maxRel.
func decodeTimeIndex(b []byte, maxRel uint32) ([]timeEntry, error) {
	if len(b)%timeEntrySize != 0 {
		return nil, fmt.Errorf("storage: time index of %d bytes is not a whole number of entries", len(b))
	}
	idx := make([]timeEntry, len(b)/timeEntrySize)
	for i := range idx {
		e := timeEntry{ts: int64(binary.BigEndian.Uint64(b[i*12:])), rel: binary.BigEndian.Uint32(b[i*12+8:])}
		if i > 0 && (e.ts <= idx[i-1].ts || e.rel <= idx[i-1].rel) {
			return nil, fmt.Errorf("storage: time index entry %d (%d@%d) does not follow (%d@%d)", i, e.ts, e.rel, idx[i-1].ts, idx[i-1].rel)
		}
		if e.rel > maxRel {
			return nil, fmt.Errorf("storage: time index entry %d names offset +%d past the segment's +%d", i, e.rel, maxRel)
		}
		idx[i] = e
	}
	return idx, nil
}
