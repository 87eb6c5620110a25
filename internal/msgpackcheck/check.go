// Package msgpackcheck checks that bytes are one well-formed msgpack value
// before a decoder sees them. The msgpack decoder allocates what a
// container's header declares: without this check five bytes (an array of
// 2^32-1 elements) make it allocate tens of gigabytes.
package msgpackcheck

import (
	"encoding/binary"
	"fmt"
)

// MaxDepth bounds the nesting of containers.
const MaxDepth = 64

// wide marks the type bytes whose header may declare more than 255
// elements or bytes: str16/32, bin16/32, ext16/32, array16/32, map16/32.
var wide = func() (w [256]bool) {
	for _, c := range []byte{0xc5, 0xc6, 0xc8, 0xc9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf} {
		w[c] = true
	}
	return w
}()

// MayClaimMuch reports whether any byte of b could begin a header that
// declares more than 255 elements or bytes. When it is false, no header in
// b can make a decoder allocate more than a small multiple of len(b), so
// decoders may skip Check on that cheaper test.
func MayClaimMuch(b []byte) bool {
	for _, c := range b {
		if wide[c] {
			return true
		}
	}
	return false
}

// Check returns nil if b is exactly one msgpack value whose every container
// declares no more elements than bytes remain, nested at most MaxDepth
// deep, and otherwise an error naming the byte where that stopped being
// so. It allocates nothing.
func Check(b []byte) error {
	// left[i] is how many items the i-th open container still holds; the
	// bottom entry stands for the one top-level value.
	var stack [MaxDepth + 1]int
	left := stack[:1]
	left[0] = 1
	i := 0
	for len(left) > 0 {
		if left[len(left)-1] == 0 {
			left = left[:len(left)-1]
			continue
		}
		left[len(left)-1]--
		if i >= len(b) {
			return fmt.Errorf("msgpack: value ends early: %d bytes, another item expected", len(b))
		}
		at := i
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
			n, size, ok := header(c, b[i:])
			if !ok {
				return fmt.Errorf("msgpack: bad or cut header 0x%02x at byte %d", c, at)
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
			return fmt.Errorf("msgpack: value at byte %d declares %d, only %d bytes follow", at, max(skip, items), len(b)-i)
		}
		i += skip
		if items > 0 {
			if len(left) > MaxDepth {
				return fmt.Errorf("msgpack: containers nested deeper than %d at byte %d", MaxDepth, at)
			}
			left = append(left, items)
		}
	}
	if i != len(b) {
		return fmt.Errorf("msgpack: %d bytes after the value, which ends at byte %d", len(b)-i, i)
	}
	return nil
}

// header decodes the rest of the header of a value of type byte c
// (other than the fixed ones): n is its payload's bytes, or its
// container's element count, and size the header bytes read after c.
func header(c byte, b []byte) (n, size int, ok bool) {
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
		width := 1 << (c - 0xc7) // 1, 2 or 4 bytes of length
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
