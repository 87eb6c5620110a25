package txn

import (
	"errors"
	"fmt"
	"time"
)

// ProducerIDs hands out producer ids for new transactional ids and for ids
// whose epoch is exhausted. The broker's producer-id allocator implements it
// (it persists a block of ids now and then, rarely and briefly).
type ProducerIDs interface {
	// NextProducerID returns an id never handed out before.
	NextProducerID() (int64, error)
}

// Topics tells the coordinator which topic partitions exist, so that
// AddPartitionsToTxn for unknown ones is refused with
// UNKNOWN_TOPIC_OR_PARTITION. It is a read of broker metadata held in
// memory, not I/O.
type Topics interface {
	// Partitions returns the partition count of topic and whether it exists.
	Partitions(topic string) (int32, bool)
}

// Options configure a Coordinator. The zero value of each field means its
// default; EnsureDefaults fills them in.
type Options struct {
	// StatePartitions is the partition count of __transaction_state; a
	// transactional id's records go to Partition(id, StatePartitions).
	// Default 50, as Kafka's transaction.state.log.num.partitions.
	StatePartitions int32

	// OffsetsPartitions is the partition count of __consumer_offsets:
	// AddOffsetsToTxn adds the group's partition of it to the transaction.
	// Default 50, as Kafka's offsets.topic.num.partitions.
	OffsetsPartitions int32

	// MaxTransactionTimeout is the longest transaction timeout a producer
	// may ask for in InitProducerId (INVALID_TRANSACTION_TIMEOUT beyond).
	// Default 15m, as Kafka's transaction.max.timeout.ms.
	MaxTransactionTimeout time.Duration

	// TransactionalIDExpiration is how long a transactional id with no
	// transaction open stays after its last update; then it is dropped and
	// its record tombstoned. Default 7 days, as Kafka's
	// transactional.id.expiration.ms.
	TransactionalIDExpiration time.Duration

	// MaxTransactionalIDs caps the transactional ids the coordinator holds,
	// so that a flood of InitProducerId with fresh ids cannot exhaust memory;
	// a new id beyond it is answered COORDINATOR_NOT_AVAILABLE. Kafka has no
	// such cap. Default 100000.
	MaxTransactionalIDs int

	// MaxPartitionsPerTransaction caps the partitions one transaction may
	// hold (INVALID_REQUEST beyond for AddPartitionsToTxn; Kafka has no such
	// cap). Default 100000.
	MaxPartitionsPerTransaction int

	// ProducerIDs hands out producer ids. Required.
	ProducerIDs ProducerIDs

	// Topics, when set, is asked whether added partitions exist. Nil
	// accepts every partition.
	Topics Topics
}

// EnsureDefaults fills in zero fields with their defaults and returns o.
func (o *Options) EnsureDefaults() *Options {
	if o.StatePartitions == 0 {
		o.StatePartitions = 50
	}
	if o.OffsetsPartitions == 0 {
		o.OffsetsPartitions = 50
	}
	if o.MaxTransactionTimeout == 0 {
		o.MaxTransactionTimeout = 15 * time.Minute
	}
	if o.TransactionalIDExpiration == 0 {
		o.TransactionalIDExpiration = 7 * 24 * time.Hour
	}
	if o.MaxTransactionalIDs == 0 {
		o.MaxTransactionalIDs = 100000
	}
	if o.MaxPartitionsPerTransaction == 0 {
		o.MaxPartitionsPerTransaction = 100000
	}
	return o
}

// Validate reports every problem with o at once.
func (o *Options) Validate() error {
	var errs []error
	if o.StatePartitions < 1 {
		errs = append(errs, fmt.Errorf("txn: StatePartitions %d < 1", o.StatePartitions))
	}
	if o.OffsetsPartitions < 1 {
		errs = append(errs, fmt.Errorf("txn: OffsetsPartitions %d < 1", o.OffsetsPartitions))
	}
	// The timeout travels as int32 milliseconds.
	if o.MaxTransactionTimeout < time.Millisecond || o.MaxTransactionTimeout.Milliseconds() > 1<<31-1 {
		errs = append(errs, fmt.Errorf("txn: MaxTransactionTimeout %v is not in [1ms, 2^31-1 ms]", o.MaxTransactionTimeout))
	}
	if o.TransactionalIDExpiration <= 0 {
		errs = append(errs, fmt.Errorf("txn: TransactionalIDExpiration %v <= 0", o.TransactionalIDExpiration))
	}
	if o.MaxTransactionalIDs < 1 {
		errs = append(errs, fmt.Errorf("txn: MaxTransactionalIDs %d < 1", o.MaxTransactionalIDs))
	}
	if o.MaxPartitionsPerTransaction < 1 {
		errs = append(errs, fmt.Errorf("txn: MaxPartitionsPerTransaction %d < 1", o.MaxPartitionsPerTransaction))
	}
	if o.ProducerIDs == nil {
		errs = append(errs, errors.New("txn: ProducerIDs is nil"))
	}
	return errors.Join(errs...)
}
