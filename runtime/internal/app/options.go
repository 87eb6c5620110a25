package app

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// OnDeserializationError says what happens to an input record a source
// cannot deserialize.
type OnDeserializationError int

const (
	// DeserializationFail stops the application with an error naming the
	// record's topic, partition and offset. The default.
	DeserializationFail OnDeserializationError = iota
	// DeserializationSkip drops the record and counts it
	// (weir_deserialization_errors_total).
	DeserializationSkip
	// DeserializationDeadLetter writes the raw record to DeadLetterTopic
	// with headers saying where it came from and why, counts it, and
	// continues.
	DeserializationDeadLetter
)

// Options configure an App. Zero values take the documented defaults.
type Options struct {
	// ApplicationID names the consumer group and prefixes internal topics.
	// Required.
	ApplicationID string
	// Brokers are the seed brokers. Required (the public runtime package
	// starts an embedded broker when the user gives none).
	Brokers []string
	// StateDir holds the instance's stores. Required.
	StateDir string
	// Workers is the number of goroutines processing tasks in parallel.
	// Default GOMAXPROCS.
	Workers int
	// CommitInterval is how often tasks commit. Default 1s.
	CommitInterval time.Duration
	// CommitTimeout bounds one commit attempt: how long it waits for the
	// stores' changelog records and the output to be acknowledged and for
	// the offset commit. An attempt that runs out of time (the broker is
	// unreachable) is not fatal: it is logged, counted in
	// weir_commit_failures_total{reason="timeout"}, processing and
	// fetching pause, and the commit is retried with backoff (from
	// CommitInterval, doubling, at most 5s) for as long as the instance
	// runs, until the broker answers again. Default 60s.
	CommitTimeout time.Duration
	// Standbys is the number of standby replicas per task. Default 0.
	Standbys int
	// MemoryBudget bounds the state memory, in bytes. Default: the state
	// package's default.
	MemoryBudget int64
	// NoWriteCache opens stores without the task's write-back cache, so
	// aggregations forward every update instead of each key's latest value
	// per commit. Default false (cached).
	NoWriteCache bool
	// OnDeserializationError is the handler for records that fail to
	// deserialize. Default DeserializationFail.
	OnDeserializationError OnDeserializationError
	// DeadLetterTopic receives bad records under DeserializationDeadLetter.
	// Default "<ApplicationID>-dead-letter".
	DeadLetterTopic string
	// MetricsAddr, if set, is the address of an HTTP server serving
	// /metrics (Prometheus), /topology and /application (Describe).
	// Default "" (no server).
	MetricsAddr string
	// QueryAddr, if set, turns on the interactive query endpoint: an HTTP
	// server on this address (host:port; port 0 picks one) answering
	// key, range and window reads of the stores (see query.go), which
	// the instance advertises to the group so that every instance can
	// forward a read to the one holding the key. A host of 0.0.0.0 or ::
	// is advertised as the machine's host name. Default "" (off).
	QueryAddr string
	// QueryStores are the codecs the query endpoint renders stores with,
	// by store name; a store without one is refused with a message
	// saying so. Default none.
	QueryStores map[string]QueryCodec
	// SessionTimeout is the group session timeout: how long the group
	// waits for a silent instance before moving its tasks. Default 10s.
	SessionTimeout time.Duration
	// MaxBufferedPerPartition bounds the records buffered per input
	// partition; fetching pauses above it. Default 1000.
	MaxBufferedPerPartition int
	// MaxTaskIdle bounds how long a task reading several input partitions
	// waits, with records buffered for some of them, for another whose
	// lag is unknown or not zero (records on the broker not fetched yet)
	// before it processes without it: records of that partition that come
	// later with smaller timestamps may then arrive after the stream time
	// passed them (late). Such enforced processing is counted in
	// weir_enforced_processing_total. A partition the consumer knows to be
	// at its end is never waited for. Negative: never wait. Default 10s.
	MaxTaskIdle time.Duration
	// MaxBufferedProduce bounds the records the producer buffers: a
	// Produce beyond it waits for acknowledgements (see App), and
	// processing holds off from half of it. Default 100000; tests set it
	// small to make the producer full.
	MaxBufferedProduce int
	// ReplicationFactor of the internal topics Weir creates. Default -1:
	// min(3, brokers), with min.insync.replicas 2 at 3.
	ReplicationFactor int16
	// ExactlyOnce runs the instance exactly-once (see App): one
	// transactional producer for the instance, every commit one
	// transaction holding the tasks' output, changelog and repartition
	// records and their input offsets; input and changelogs are read at
	// read_committed, and a store's local checkpoint moves only once its
	// transaction has committed. Default false (at-least-once).
	ExactlyOnce bool
	// TransactionTimeout is how long the transaction coordinator lets a
	// transaction of this instance stay open before aborting it (a crashed
	// instance's open transaction holds read_committed readers back that
	// long). Under ExactlyOnce only. Default 10s.
	TransactionTimeout time.Duration
	// ClientOpts are extra franz-go options for every client (dialer,
	// TLS, SASL, logging). Default none.
	ClientOpts []kgo.Opt
	// Logger receives the instance's log lines. Default slog.Default().
	Logger *slog.Logger
	// EndTxnFault, for tests, is called under ExactlyOnce before each
	// transaction's end (ended false) and after it committed (ended
	// true), commit saying which end was asked for and partitions how
	// many input partitions' offsets the transaction commits. An error
	// before skips the end (the transaction stays open on the broker);
	// an error after replaces its result (the broker committed, the
	// answer was lost).
	EndTxnFault func(commit, ended bool, partitions int) error
}

// EnsureDefaults fills zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.Workers == 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.CommitInterval == 0 {
		o.CommitInterval = time.Second
	}
	if o.CommitTimeout == 0 {
		o.CommitTimeout = 60 * time.Second
	}
	if o.DeadLetterTopic == "" && o.ApplicationID != "" {
		o.DeadLetterTopic = o.ApplicationID + "-dead-letter"
	}
	if o.SessionTimeout == 0 {
		o.SessionTimeout = 10 * time.Second
	}
	if o.MaxBufferedPerPartition == 0 {
		o.MaxBufferedPerPartition = 1000
	}
	if o.MaxBufferedProduce == 0 {
		o.MaxBufferedProduce = 100_000
	}
	if o.MaxTaskIdle == 0 {
		o.MaxTaskIdle = 10 * time.Second
	}
	if o.TransactionTimeout == 0 {
		o.TransactionTimeout = 10 * time.Second
	}
	if o.ReplicationFactor == 0 {
		o.ReplicationFactor = -1
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Validate reports every problem with the options at once.
func (o *Options) Validate() error {
	var errs []error
	if o.ApplicationID == "" {
		errs = append(errs, errors.New("runtime: application id is required"))
	} else if err := checkApplicationID(o.ApplicationID); err != nil {
		errs = append(errs, err)
	}
	if len(o.Brokers) == 0 {
		errs = append(errs, errors.New("runtime: no brokers"))
	}
	if o.StateDir == "" {
		errs = append(errs, errors.New("runtime: state directory is required"))
	}
	if o.Workers < 0 {
		errs = append(errs, fmt.Errorf("runtime: workers %d < 0", o.Workers))
	}
	if o.CommitInterval < 0 {
		errs = append(errs, fmt.Errorf("runtime: commit interval %v < 0", o.CommitInterval))
	}
	if o.CommitTimeout < 0 {
		errs = append(errs, fmt.Errorf("runtime: commit timeout %v < 0", o.CommitTimeout))
	}
	if o.Standbys < 0 {
		errs = append(errs, fmt.Errorf("runtime: standby replicas %d < 0", o.Standbys))
	}
	if o.MemoryBudget < 0 {
		errs = append(errs, fmt.Errorf("runtime: memory budget %d < 0", o.MemoryBudget))
	}
	if o.OnDeserializationError < DeserializationFail || o.OnDeserializationError > DeserializationDeadLetter {
		errs = append(errs, fmt.Errorf("runtime: unknown deserialization error handler %d", o.OnDeserializationError))
	}
	if o.MaxBufferedPerPartition < 0 {
		errs = append(errs, fmt.Errorf("runtime: max buffered per partition %d < 0", o.MaxBufferedPerPartition))
	}
	if o.TransactionTimeout < 0 {
		errs = append(errs, fmt.Errorf("runtime: transaction timeout %v < 0", o.TransactionTimeout))
	}
	if o.MaxBufferedProduce < 0 {
		errs = append(errs, fmt.Errorf("runtime: max buffered produce %d < 0", o.MaxBufferedProduce))
	}
	return errors.Join(errs...)
}

// maxApplicationIDLen leaves room in Kafka's 249-character topic names for
// the longest suffixes Weir appends to an application id ("-<store>-changelog"
// and "-<node>-repartition" with names of a few dozen characters).
const maxApplicationIDLen = 150

// checkApplicationID refuses an id that cannot prefix internal topic names:
// Kafka allows only ASCII letters, digits, '.', '_' and '-' in them.
func checkApplicationID(id string) error {
	if len(id) > maxApplicationIDLen {
		return fmt.Errorf("runtime: application id %q is %d characters long; at most %d, since it prefixes internal topic names", id, len(id), maxApplicationIDLen)
	}
	if id == "." || id == ".." {
		return fmt.Errorf("runtime: application id %q is not a valid topic name prefix", id)
	}
	for i, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("runtime: application id %q has %q at byte %d: only ASCII letters, digits, '.', '_' and '-' may name the internal topics it prefixes", id, r, i)
		}
	}
	return nil
}
