package base

// Offset is a record's position in a partition log: its base offset plus
// its offset delta within its batch. The log start offset, the high
// watermark and the log end offset are Offsets too (positions between
// records: the first readable, the first not yet readable, and the one the
// next append gets).
type Offset int64

// Epoch is a partition leader epoch (KIP-101): it numbers the leaderships
// of a partition and is written into every batch appended under it
// (partitionLeaderEpoch).
type Epoch int32
