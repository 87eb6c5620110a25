// Package layout holds the byte layouts of Weir's state stores: how a
// store's user keys, window starts, session bounds and time segments become
// keys that sort in the order scans need, and the changelog key formats.
//
// Order-preserving pieces:
//
//   - A time t (int64 milliseconds) is 8 big-endian bytes of uint64(t) with
//     the sign bit flipped, so bytewise order is numeric order, negative
//     times included.
//   - A user key inside a composite key is escaped: every 0x00 byte becomes
//     0x00 0xFF and the key ends with 0x00 0x01. Escaped keys compare like
//     the raw keys, and no escaped key is a prefix of another, so the
//     entries of one key are contiguous and sort by key first, then by what
//     follows.
package layout
