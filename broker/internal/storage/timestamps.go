package storage

import (
	"github.com/weir-dev/weir/broker/internal/batch"
)

// OffsetForTimestamp returns the first offset, at or after the log start
// offset and below the high watermark, whose record timestamp is >= ts, and
// that record's timestamp (ListOffsets by timestamp). ok is false when no
// such record exists. It decodes the records of the one batch it lands on;
// if they cannot be decoded it answers with the batch's base offset and max
// timestamp.
func (l *Log) OffsetForTimestamp(ts int64) (off Offset, recordTs int64, ok bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	hw, start := l.hw, l.logStart
	for _, s := range l.segs {
		if s.size == 0 || s.maxTs < ts || s.next <= start {
			continue
		}
		pos := int64(0)
		s.ensureIndexes()
		if rel, found := lookupTime(s.timeIdx, ts); found {
			pos = int64(lookupOffset(s.offIdx, rel))
		}
		var hbuf [batch.HeaderSize]byte
		for pos < s.size {
			h, err := readHeaderAt(s.f, pos, &hbuf)
			if err != nil || Offset(h.BaseOffset) >= hw {
				return 0, -1, false
			}
			if h.MaxTimestamp >= ts && Offset(h.LastOffset()) >= start {
				if off, rts, found := s.firstRecordAtOrAfter(pos, h, ts, start); found {
					return off, rts, true
				}
			}
			pos += int64(h.Size())
		}
	}
	return 0, -1, false
}

// firstRecordAtOrAfter finds, in the batch at pos, the first record at or
// after offset start with timestamp >= ts.
func (s *segment) firstRecordAtOrAfter(pos int64, h batch.Header, ts int64, start Offset) (Offset, int64, bool) {
	if h.LogAppendTime() {
		return max(Offset(h.BaseOffset), start), h.MaxTimestamp, true
	}
	b := make([]byte, h.Size())
	if n, _ := s.f.ReadAt(b, pos); n < len(b) {
		return max(Offset(h.BaseOffset), start), h.MaxTimestamp, true
	}
	recs, err := batch.Records(b, maxCompactDecompressed)
	if err != nil {
		return max(Offset(h.BaseOffset), start), h.MaxTimestamp, true
	}
	for _, r := range recs {
		off := Offset(h.BaseOffset) + Offset(r.OffsetDelta)
		if rts := h.FirstTimestamp + r.TimestampDelta; rts >= ts && off >= start {
			return off, rts, true
		}
	}
	return 0, -1, false
}

// MaxTimestamp returns the offset and timestamp of the record with the
// largest timestamp below the high watermark (the first such record on a
// tie), or (-1, -1) when the log holds no record.
func (l *Log) MaxTimestamp() (Offset, int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	hw, start := l.hw, l.logStart
	bestOff, bestTs := Offset(-1), int64(-1)
	for _, s := range l.segs {
		if s.size == 0 || s.maxTs <= bestTs || s.next <= start {
			continue
		}
		var hbuf [batch.HeaderSize]byte
		for pos := int64(0); pos < s.size; {
			h, err := readHeaderAt(s.f, pos, &hbuf)
			if err != nil || Offset(h.BaseOffset) >= hw {
				break
			}
			if h.MaxTimestamp > bestTs && Offset(h.LastOffset()) >= start {
				if off, rts, ok := s.firstRecordAtOrAfter(pos, h, h.MaxTimestamp, start); ok {
					bestOff, bestTs = off, rts
				}
			}
			pos += int64(h.Size())
		}
	}
	return bestOff, bestTs
}
