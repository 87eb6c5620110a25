package console

import "encoding/binary"

// maxMsgpackDepth bounds the nesting of a value rendered as msgpack.
const maxMsgpackDepth = 64

// msgpackWellFormed reports whether b is exactly one msgpack value whose
// every container declares no more elements than bytes remain, nested at
// most maxMsgpackDepth deep. The decoder allocates what a header
// declares: without this check five bytes (an array of 2^32-1 elements)
// would make it allocate tens of gigabytes.
func msgpackWellFormed(b []byte) bool {
	// left[i] is how many items the i-th open container still holds; the
	// bottom entry stands for the one top-level value.
	left := []int{1}
	i := 0
	for len(left) > 0 {
		if left[len(left)-1] == 0 {
			left = left[:len(left)-1]
			continue
		}
		left[len(left)-1]--
		if i >= len(b) {
			return false
		}
		c := b[i]
		i++
		var skip, items int // bytes of payload; items of a container
		switch {
		case c <= 0x7f, c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
		case c >= 0x80 && c <= 0x8f:
			items = 2 * int(c&0x0f)
		case c >= 0x90 && c <= 0x9f:
			items = int(c & 0x0f)
		case c >= 0xa0 && c <= 0xbf:
			skip = int(c & 0x1f)
		default:
			n, size, ok := msgpackHeader(c, b[i:])
			if !ok {
				return false
			}
			i += size
			switch c {
			case 0xdc, 0xdd:
				items = n
			case 0xde, 0xdf:
				items = 2 * n
			default:
				skip = n
			}
		}
		if skip > len(b)-i || items > len(b)-i {
			return false
		}
		i += skip
		if items > 0 {
			if len(left) > maxMsgpackDepth {
				return false
			}
			left = append(left, items)
		}
	}
	return i == len(b)
}

// msgpackHeader decodes the rest of the header of a value of type byte c
// (other than the fixed ones): n is its payload's bytes, or its
// container's element count, and size the header bytes read after c.
func msgpackHeader(c byte, b []byte) (n, size int, ok bool) {
	uintN := func(width int) (int, bool) {
		if len(b) < width {
			return 0, false
		}
		switch width {
		case 1:
			return int(b[0]), true
		case 2:
			return int(binary.BigEndian.Uint16(b)), true
		default:
			return int(binary.BigEndian.Uint32(b)), true
		}
	}
	switch c {
	case 0xc4, 0xd9: // bin8, str8
		n, ok = uintN(1)
		return n, 1, ok
	case 0xc5, 0xda, 0xdc, 0xde: // bin16, str16, array16, map16
		n, ok = uintN(2)
		return n, 2, ok
	case 0xc6, 0xdb, 0xdd, 0xdf: // bin32, str32, array32, map32
		n, ok = uintN(4)
		return n, 4, ok
	case 0xc7, 0xc8, 0xc9: // ext8, ext16, ext32: length, then a type byte
		width := map[byte]int{0xc7: 1, 0xc8: 2, 0xc9: 4}[c]
		n, ok = uintN(width)
		return n + 1, width, ok
	case 0xca, 0xce, 0xd2: // float32, uint32, int32
		return 4, 0, true
	case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
		return 8, 0, true
	case 0xcc, 0xd0: // uint8, int8
		return 1, 0, true
	case 0xcd, 0xd1: // uint16, int16
		return 2, 0, true
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16 plus a type byte
		return 1 + 1<<(c-0xd4), 0, true
	}
	return 0, 0, false // 0xc1, never used
}
