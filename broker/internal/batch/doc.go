// Package batch reads, checks and writes Kafka RecordBatch v2 bytes, the
// unit the Weir log stores verbatim and serves back on fetch.
//
// Two layers, with different costs:
//
//   - The header layer (ParseHeader, Validate, ValidateProduced, Next,
//     SetBaseOffset, SetPartitionLeaderEpoch) is the produce and recovery hot
//     path. It reads the fixed 61-byte header and the CRC32C of the batch and
//     never decodes a record; on success it allocates nothing.
//   - The record layer (Records, Scan, Build) decodes and encodes the
//     records of a batch, decompressing and compressing gzip, snappy (raw
//     blocks and the xerial framing Java clients send), lz4 frames and zstd.
//     Compaction, the lookup of an offset by timestamp, and tests use it;
//     the produce path does only for a compacted topic (to refuse records
//     without a key), the fetch path never.
//
// Every malformed input is reported as a *CorruptError (see IsCorrupt and
// IsTruncated) carrying the byte position of the problem; decompression past
// the caller's bound is ErrTooLarge. Nothing in this package panics on input.
//
// Every function is safe for concurrent use; codec state is pooled.
//
// Byte layout of a batch (all integers big-endian):
//
//	offset size field
//	0      8    baseOffset
//	8      4    batchLength           (bytes after this field: whole size - 12)
//	12     4    partitionLeaderEpoch
//	16     1    magic                 (2)
//	17     4    crc                   (CRC32C of bytes 21..end)
//	21     2    attributes            (bits 0-2 codec, 3 timestamp type,
//	                                   4 transactional, 5 control)
//	23     4    lastOffsetDelta
//	27     8    firstTimestamp
//	35     8    maxTimestamp
//	43     8    producerId
//	51     2    producerEpoch
//	53     4    baseSequence
//	57     4    recordCount
//	61     ...  records, compressed as a whole when the codec is not none
//
// baseOffset and partitionLeaderEpoch lie before the CRC'd range, which is
// why the log can assign them in place without recomputing the CRC.
package batch
