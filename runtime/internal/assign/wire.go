package assign

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The assignor's own bytes ride in the UserData of the consumer protocol's
// member metadata (join) and member assignment (sync). Both carry one task
// list in the same format:
//
//	version  byte     (1)
//	count    uvarint
//	count × (subtopology uvarint, partition uvarint)
//
// In the join metadata the list is the tasks the member holds local state
// for; in the sync assignment it is the member's standby tasks.

const wireVersion = 1

// ErrBadUserData is returned when assignor user data cannot be decoded.
var ErrBadUserData = errors.New("assign: malformed user data")

// EncodeTasks appends the wire form of ts to dst.
func EncodeTasks(dst []byte, ts []TaskID) []byte {
	dst = append(dst, wireVersion)
	dst = binary.AppendUvarint(dst, uint64(len(ts)))
	for _, t := range ts {
		dst = binary.AppendUvarint(dst, uint64(t.Subtopology))
		dst = binary.AppendUvarint(dst, uint64(t.Partition))
	}
	return dst
}

// DecodeTasks decodes a task list written by EncodeTasks. Empty input
// decodes to no tasks (a member that sent no user data).
func DecodeTasks(b []byte) ([]TaskID, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if b[0] != wireVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrBadUserData, b[0], wireVersion)
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, fmt.Errorf("%w: bad task count", ErrBadUserData)
	}
	b = b[k:]
	// Each task takes at least two bytes: cap before allocating.
	if n > uint64(len(b)/2) {
		return nil, fmt.Errorf("%w: %d tasks in %d bytes", ErrBadUserData, n, len(b))
	}
	out := make([]TaskID, 0, n)
	for range n {
		s, k := binary.Uvarint(b)
		if k <= 0 || s > math.MaxInt32 {
			return nil, fmt.Errorf("%w: bad sub-topology", ErrBadUserData)
		}
		b = b[k:]
		p, k := binary.Uvarint(b)
		if k <= 0 || p > math.MaxInt32 {
			return nil, fmt.Errorf("%w: bad partition", ErrBadUserData)
		}
		b = b[k:]
		out = append(out, TaskID{Subtopology: int(s), Partition: int32(p)})
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadUserData, len(b))
	}
	return out, nil
}

// IsBadUserData reports whether err came from decoding malformed user data.
func IsBadUserData(err error) bool { return errors.Is(err, ErrBadUserData) }
