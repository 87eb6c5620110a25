package streams

import "encoding/binary"

// murmur2 is the 32-bit MurmurHash2 variant Kafka's default partitioner
// uses (seed 0x9747b28c), so Weir sends a key to the same partition as the
// Java client, librdkafka's murmur2 partitioner and franz-go's
// StickyKeyPartitioner.
func murmur2(b []byte) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	h := seed ^ uint32(len(b))
	n := len(b) &^ 3
	for i := 0; i < n; i += 4 {
		k := binary.LittleEndian.Uint32(b[i : i+4])
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	b = b[n:]
	switch len(b) {
	case 3:
		h ^= uint32(b[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(b[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(b[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// KeyPartition returns the partition, out of n, that Kafka's default
// partitioner assigns to a record with the serialized key: the positive
// murmur2 hash of the key modulo n. A nil key has no hash: callers choose
// a partition themselves (the test driver uses partition 0). n must be > 0.
func KeyPartition(key []byte, n int) Partition {
	return Partition(int32(murmur2(key)&0x7fffffff) % int32(n))
}
