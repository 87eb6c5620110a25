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

// Marker is a COMMIT or ABORT control batch that ends producer
// ProducerID's transaction in a partition, as a transaction coordinator
// asks for it (WriteTxnMarkers).
type Marker struct {
	ProducerID int64
	Epoch      int16
	Commit     bool
	// CoordinatorEpoch is the coordinator's: a partition refuses a marker
	// below the highest it has for the producer (a coordinator that has
	// since lost the transactional id). -1 is the broker's own marker
	// (no coordinator), which is not checked.
	CoordinatorEpoch int32
	// TransactionVersion is the coordinator's protocol for the
	// transaction (WriteTxnMarkers v2). At 2 (KIP-890 part 2) the marker
	// carries an epoch above every epoch of the data it ends, so one at or
	// below the producer's epoch in the partition is refused (one at that
	// epoch with no transaction open is a retry, answered as written);
	// below 2 it carries its data's epoch and only an older one is refused.
	TransactionVersion int8
}
