package storage

import (
	"errors"

	"github.com/weir-dev/weir/broker/internal/batch"
)

// Sentinel errors. Callers classify with the IsXxx helpers; the broker maps
// them to Kafka error codes.
var (
	// ErrOffsetOutOfRange: a read below the log start offset or past the
	// log end offset (OFFSET_OUT_OF_RANGE).
	ErrOffsetOutOfRange = errors.New("storage: offset out of range")
	// ErrOutOfOrderSequence: an idempotent producer skipped a sequence
	// number (OUT_OF_ORDER_SEQUENCE_NUMBER).
	ErrOutOfOrderSequence = errors.New("storage: out of order sequence number")
	// ErrInvalidProducerEpoch: a batch from a fenced (older) producer epoch
	// (INVALID_PRODUCER_EPOCH).
	ErrInvalidProducerEpoch = errors.New("storage: invalid producer epoch")
	// ErrTxnNotOpen: batches appended as part of a producer's open
	// transaction (AppendNoWaitInTxn) found none open here at their epoch
	// (INVALID_TXN_STATE).
	ErrTxnNotOpen = errors.New("storage: no transaction of the producer open here")
	// ErrCoordinatorFenced: a transaction marker from a coordinator epoch
	// older than one the producer's markers here already carried: a
	// coordinator that lost its __transaction_state partition
	// (TRANSACTION_COORDINATOR_FENCED).
	ErrCoordinatorFenced = errors.New("storage: transaction coordinator fenced")
	// ErrMessageTooLarge: a batch larger than max.message.bytes or than a
	// segment can hold (MESSAGE_TOO_LARGE).
	ErrMessageTooLarge = errors.New("storage: message too large")
	// ErrCorrupt: a batch failed validation (CORRUPT_MESSAGE).
	ErrCorrupt = errors.New("storage: corrupt batch")
	// ErrDiskFull: the device is full; the append wrote nothing
	// (KAFKA_STORAGE_ERROR).
	ErrDiskFull = errors.New("storage: disk full")
	// ErrStorage: an I/O error left the log unable to accept appends until
	// it is reopened (KAFKA_STORAGE_ERROR). Reads keep working.
	ErrStorage = errors.New("storage: I/O error")
	// ErrClosed: the log is closed.
	ErrClosed = errors.New("storage: log closed")
)

// IsOffsetOutOfRange reports whether err is ErrOffsetOutOfRange.
func IsOffsetOutOfRange(err error) bool { return errors.Is(err, ErrOffsetOutOfRange) }

// IsOutOfOrderSequence reports whether err is ErrOutOfOrderSequence.
func IsOutOfOrderSequence(err error) bool { return errors.Is(err, ErrOutOfOrderSequence) }

// IsInvalidProducerEpoch reports whether err is ErrInvalidProducerEpoch.
func IsInvalidProducerEpoch(err error) bool { return errors.Is(err, ErrInvalidProducerEpoch) }

// IsTxnNotOpen reports whether err is ErrTxnNotOpen.
func IsTxnNotOpen(err error) bool { return errors.Is(err, ErrTxnNotOpen) }

// IsCoordinatorFenced reports whether err is ErrCoordinatorFenced.
func IsCoordinatorFenced(err error) bool { return errors.Is(err, ErrCoordinatorFenced) }

// IsMessageTooLarge reports whether err is ErrMessageTooLarge.
func IsMessageTooLarge(err error) bool { return errors.Is(err, ErrMessageTooLarge) }

// IsCorrupt reports whether err is ErrCorrupt or a batch corruption.
func IsCorrupt(err error) bool { return errors.Is(err, ErrCorrupt) || batch.IsCorrupt(err) }

// IsDiskFull reports whether err is ErrDiskFull or the device's ENOSPC.
func IsDiskFull(err error) bool { return errors.Is(err, ErrDiskFull) || isNoSpace(err) }

// IsStorage reports whether err is an I/O failure (ErrStorage or
// ErrDiskFull).
func IsStorage(err error) bool { return errors.Is(err, ErrStorage) || IsDiskFull(err) }

// IsClosed reports whether err is ErrClosed.
func IsClosed(err error) bool { return errors.Is(err, ErrClosed) }
