package quorum

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Every value the raft storage writes is a record:
//
//	version  byte    (recordVersion)
//	checksum uint32  big-endian CRC-32C of the key, then the payload
//	payload  []byte
//
// The checksum covers the key too, so a value that lands under another key
// (an entry under the wrong index) is caught like a flipped bit.
const (
	recordVersion    = 1
	recordHeaderSize = 1 + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func recordChecksum(key, payload []byte) uint32 {
	c := crc32.Update(0, castagnoli, key)
	return crc32.Update(c, castagnoli, payload)
}

// appendRecord appends the record of payload stored under key to dst.
func appendRecord(dst, key, payload []byte) []byte {
	dst = append(dst, recordVersion)
	dst = binary.BigEndian.AppendUint32(dst, recordChecksum(key, payload))
	return append(dst, payload...)
}

// errBadRecord is wrapped by every decodeRecord error.
var errBadRecord = errors.New("bad record")

// decodeRecord checks the record stored under key and returns its payload,
// which aliases val.
func decodeRecord(key, val []byte) ([]byte, error) {
	if len(val) < recordHeaderSize {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", errBadRecord, len(val), recordHeaderSize)
	}
	if val[0] != recordVersion {
		return nil, fmt.Errorf("%w: unknown version %d", errBadRecord, val[0])
	}
	payload := val[recordHeaderSize:]
	want := binary.BigEndian.Uint32(val[1:])
	if got := recordChecksum(key, payload); got != want {
		return nil, fmt.Errorf("%w: checksum mismatch (stored %#08x, computed %#08x)", errBadRecord, want, got)
	}
	return payload, nil
}

// Keys of the raft storage's Pebble database.
const (
	keyIdentity  = 0x01 // identity: cluster id, node id, voters
	keyHardState = 0x02 // raftpb.HardState
	keySnapshot  = 0x03 // raftpb.Snapshot (data and metadata)
	keyEntry     = 0x04 // + big-endian index: raftpb.Entry
	// keyRejoin marks a directory created to rejoin the voters (see
	// Options.Rejoin): present until the node applied its own re-addition.
	// Its payload is empty.
	keyRejoin = 0x05
)

func entryKey(index uint64) []byte {
	k := make([]byte, 9)
	k[0] = keyEntry
	binary.BigEndian.PutUint64(k[1:], index)
	return k
}

// identity is what a data directory is bound to at its first start.
type identity struct {
	ClusterID string
	NodeID    NodeID
	Voters    []Voter // sorted by id
}

const identityVersion = 1

func (id identity) encode() []byte {
	b := []byte{identityVersion}
	b = binary.AppendUvarint(b, uint64(len(id.ClusterID)))
	b = append(b, id.ClusterID...)
	b = binary.AppendUvarint(b, id.NodeID)
	b = binary.AppendUvarint(b, uint64(len(id.Voters)))
	for _, v := range id.Voters {
		b = binary.AppendUvarint(b, v.ID)
		b = binary.AppendUvarint(b, uint64(len(v.Addr)))
		b = append(b, v.Addr...)
	}
	return b
}

func decodeIdentity(b []byte) (identity, error) {
	var id identity
	if len(b) == 0 || b[0] != identityVersion {
		return id, fmt.Errorf("%w: identity: unknown version", errBadRecord)
	}
	b = b[1:]
	var ok bool
	uv := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			ok = false
			return 0
		}
		b = b[n:]
		return v
	}
	str := func() string {
		n := uv()
		if !ok || n > uint64(len(b)) {
			ok = false
			return ""
		}
		s := string(b[:n])
		b = b[n:]
		return s
	}
	ok = true
	id.ClusterID = str()
	id.NodeID = uv()
	n := uv()
	if ok && n > uint64(len(b)) {
		ok = false
	}
	for i := uint64(0); ok && i < n; i++ {
		v := Voter{ID: uv()}
		v.Addr = str()
		id.Voters = append(id.Voters, v)
	}
	if !ok || len(b) != 0 {
		return identity{}, fmt.Errorf("%w: identity: truncated or trailing bytes", errBadRecord)
	}
	return id, nil
}
