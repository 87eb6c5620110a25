package layout

import (
	"encoding/binary"
	"errors"
)

// TimeLen is the size of an encoded time.
const TimeLen = 8

// ErrBadKey reports a composite key that does not parse.
var ErrBadKey = errors.New("layout: malformed composite key")

const signBit = 1 << 63

// AppendTime appends the order-preserving encoding of t.
func AppendTime(dst []byte, t int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(t)^signBit)
}

// Time decodes an order-preserving time from the first 8 bytes of b.
func Time(b []byte) int64 {
	return int64(binary.BigEndian.Uint64(b) ^ signBit)
}

// AppendEscaped appends the escaped form of key, terminator included.
func AppendEscaped(dst, key []byte) []byte {
	for {
		i := indexZero(key)
		if i < 0 {
			dst = append(dst, key...)
			break
		}
		dst = append(dst, key[:i+1]...)
		dst = append(dst, 0xFF)
		key = key[i+1:]
	}
	return append(dst, 0x00, 0x01)
}

func indexZero(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}

// EscapedEnd returns the smallest byte string greater than every key that
// starts with AppendEscaped(prefix, key): the same bytes with the final
// terminator byte 0x01 raised to 0x02. b must end with an escaped key.
func EscapedEnd(b []byte) []byte {
	out := append([]byte(nil), b...)
	out[len(out)-1] = 0x02
	return out
}

// DecodeEscaped decodes the escaped key at the start of b, appending the raw
// key to dst. It returns the extended dst and the bytes after the key.
func DecodeEscaped(dst, b []byte) (key, rest []byte, err error) {
	for {
		i := indexZero(b)
		if i < 0 || i+1 >= len(b) {
			return dst, nil, ErrBadKey
		}
		dst = append(dst, b[:i]...)
		switch b[i+1] {
		case 0xFF:
			dst = append(dst, 0)
			b = b[i+2:]
		case 0x01:
			return dst, b[i+2:], nil
		default:
			return dst, nil, ErrBadKey
		}
	}
}

// Window keys inside a store: segment(8) escaped-key start(8).

// AppendWindowKey appends the store key of (key, start) in segment seg.
func AppendWindowKey(dst []byte, seg int64, key []byte, start int64) []byte {
	dst = AppendTime(dst, seg)
	dst = AppendEscaped(dst, key)
	return AppendTime(dst, start)
}

// ParseWindowKey splits a window store key, appending the raw key to dst.
func ParseWindowKey(dst, b []byte) (seg int64, key []byte, start int64, err error) {
	if len(b) < 2*TimeLen+2 {
		return 0, dst, 0, ErrBadKey
	}
	seg = Time(b)
	key, rest, err := DecodeEscaped(dst, b[TimeLen:])
	if err != nil {
		return 0, dst, 0, err
	}
	if len(rest) != TimeLen {
		return 0, dst, 0, ErrBadKey
	}
	return seg, key, Time(rest), nil
}

// Session keys inside a store: segment(8) escaped-key end(8) start(8).

// AppendSessionKey appends the store key of the session (key, start, end)
// in segment seg.
func AppendSessionKey(dst []byte, seg int64, key []byte, start, end int64) []byte {
	dst = AppendTime(dst, seg)
	dst = AppendEscaped(dst, key)
	dst = AppendTime(dst, end)
	return AppendTime(dst, start)
}

// ParseSessionKey splits a session store key, appending the raw key to dst.
func ParseSessionKey(dst, b []byte) (seg int64, key []byte, start, end int64, err error) {
	if len(b) < 3*TimeLen+2 {
		return 0, dst, 0, 0, ErrBadKey
	}
	seg = Time(b)
	key, rest, err := DecodeEscaped(dst, b[TimeLen:])
	if err != nil {
		return 0, dst, 0, 0, err
	}
	if len(rest) != 2*TimeLen {
		return 0, dst, 0, 0, ErrBadKey
	}
	return seg, key, Time(rest[TimeLen:]), Time(rest), nil
}

// Changelog keys: plain, so that any Kafka tool can read them.
//   window:  key, start as 8 big-endian bytes (two's complement)
//   session: key, end (8 bytes), start (8 bytes)

// AppendWindowChangelogKey appends the changelog key of (key, start).
func AppendWindowChangelogKey(dst, key []byte, start int64) []byte {
	dst = append(dst, key...)
	return binary.BigEndian.AppendUint64(dst, uint64(start))
}

// ParseWindowChangelogKey splits a window changelog key. key aliases b.
func ParseWindowChangelogKey(b []byte) (key []byte, start int64, err error) {
	if len(b) < TimeLen {
		return nil, 0, ErrBadKey
	}
	n := len(b) - TimeLen
	return b[:n], int64(binary.BigEndian.Uint64(b[n:])), nil
}

// AppendSessionChangelogKey appends the changelog key of (key, start, end).
func AppendSessionChangelogKey(dst, key []byte, start, end int64) []byte {
	dst = append(dst, key...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(end))
	return binary.BigEndian.AppendUint64(dst, uint64(start))
}

// ParseSessionChangelogKey splits a session changelog key. key aliases b.
func ParseSessionChangelogKey(b []byte) (key []byte, start, end int64, err error) {
	if len(b) < 2*TimeLen {
		return nil, 0, 0, ErrBadKey
	}
	n := len(b) - 2*TimeLen
	end = int64(binary.BigEndian.Uint64(b[n:]))
	start = int64(binary.BigEndian.Uint64(b[n+TimeLen:]))
	if start > end {
		return nil, 0, 0, ErrBadKey
	}
	return b[:n], start, end, nil
}

// Segment returns the time segment of t for segments of interval ms,
// rounding toward negative infinity.
func Segment(t, interval int64) int64 {
	s := t / interval
	if t%interval != 0 && t < 0 {
		s--
	}
	return s
}
