package runtime

import (
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/runtime/internal/app"
)

// Option configures an Application (see New).
type Option interface{ apply(*config) }

type config struct {
	app app.Options
	// embedded broker options, used when no brokers are given
	brokerListen string
	// security is set by TLS and SASL, which need Brokers.
	security bool
	// errs are the options' own errors (New reports them).
	errs []error
}

type optFunc func(*config)

func (f optFunc) apply(c *config) { f(c) }

// ApplicationID names the application: the consumer group its instances
// join and the prefix of its internal topics: ASCII letters, digits, '.',
// '_' and '-', at most 150 characters. Required.
func ApplicationID(id string) Option {
	return optFunc(func(c *config) { c.app.ApplicationID = id })
}

// Brokers are the seed brokers of the cluster the application runs on (a
// Weir cluster or any Kafka-compatible one). Default none: New starts an
// embedded Weir broker in the process, with its data under the state
// directory, listening on 127.0.0.1 on a free port (see Application.Brokers).
func Brokers(addrs ...string) Option {
	return optFunc(func(c *config) { c.app.Brokers = append([]string(nil), addrs...) })
}

// EmbeddedBrokerListen sets the address the embedded broker listens on when
// no brokers are given. Default "127.0.0.1:0" (a free port).
func EmbeddedBrokerListen(addr string) Option {
	return optFunc(func(c *config) { c.brokerListen = addr })
}

// StateDir is the directory holding the instance's stores (and the
// embedded broker's data, under StateDir/broker). Default
// DefaultStateDir(application id): os.TempDir()/weir-streams/<application
// id>, which the OS may clean up, so that state is rebuilt from the
// changelogs after a reboot; give a directory of your own to keep it. Two
// instances of one application on one machine need distinct directories
// (New locks it, flock on StateDir/weir.lock holding the process's pid,
// before anything else touches it: a second instance fails at once).
func StateDir(dir string) Option {
	return optFunc(func(c *config) { c.app.StateDir = dir })
}

// Workers is the number of goroutines processing tasks in parallel.
// Default GOMAXPROCS.
func Workers(n int) Option { return optFunc(func(c *config) { c.app.Workers = n }) }

// CommitInterval is how often the instance commits: flush stores and their
// changelogs, flush the producer, commit input offsets. Default 1s.
func CommitInterval(d time.Duration) Option {
	return optFunc(func(c *config) { c.app.CommitInterval = d })
}

// CommitTimeout bounds one commit attempt: how long it waits for the
// stores' changelog records and the output to be acknowledged and for the
// input offsets to be committed. An attempt that runs out of time because
// the broker is unreachable does not stop the instance: it is logged and
// counted (weir_commit_failures_total{reason="timeout"}), processing and
// fetching pause (weir_commit_stalled is 1), and the commit is retried
// with backoff, starting at the commit interval and doubling up to 5s, for
// as long as the instance runs; once an attempt succeeds, processing
// resumes. A broker outage of any length is thus ridden through. Default
// 60s.
func CommitTimeout(d time.Duration) Option {
	return optFunc(func(c *config) { c.app.CommitTimeout = d })
}

// StandbyReplicas is the number of standby replicas per task the assignor
// places on other instances. Default 0. An instance keeps a warm copy of
// each standby task's stores by reading their changelogs continuously, so
// that when the task fails over to it, or moves to it, only the changelog
// tail it had not read yet is replayed. The copy of a Pebble-backed store is
// the store itself, checkpointed; the copy of an in-memory store (such as a
// Suppress buffer) is its changelog compacted by key, held in memory and
// handed to the task's restore, which reads from the broker only the rest.
func StandbyReplicas(n int) Option { return optFunc(func(c *config) { c.app.Standbys = n }) }

// MemoryBudget bounds the memory of all the instance's stores together
// (Pebble caches and memtables, write-back and read caches), in bytes.
// Default 256 MiB (the state package's default).
func MemoryBudget(bytes int64) Option {
	return optFunc(func(c *config) { c.app.MemoryBudget = bytes })
}

// NoWriteCache turns the tasks' write-back caches off: aggregations then
// forward every update downstream at once instead of each key's latest
// value once per commit (or when the cache evicts it), and every update
// reaches the changelog. Default: cached.
func NoWriteCache() Option { return optFunc(func(c *config) { c.app.NoWriteCache = true }) }

// DeserializationErrorHandler says what happens to an input record that a
// source cannot deserialize.
type DeserializationErrorHandler = app.OnDeserializationError

// Deserialization error handlers.
const (
	// FailOnDeserializationError stops the application with an error that
	// names the record's topic, partition and offset. The default.
	FailOnDeserializationError = app.DeserializationFail
	// SkipOnDeserializationError drops the record and counts it in
	// weir_deserialization_errors_total.
	SkipOnDeserializationError = app.DeserializationSkip
	// DeadLetterOnDeserializationError writes the raw record to the dead
	// letter topic with headers weir.error, weir.topic, weir.partition and
	// weir.offset, counts it, and continues.
	DeadLetterOnDeserializationError = app.DeserializationDeadLetter
)

// OnDeserializationError sets the handler for records that fail to
// deserialize. Default FailOnDeserializationError.
func OnDeserializationError(h DeserializationErrorHandler) Option {
	return optFunc(func(c *config) { c.app.OnDeserializationError = h })
}

// DeadLetterTopic names the topic of DeadLetterOnDeserializationError.
// Default "<application id>-dead-letter".
func DeadLetterTopic(topic string) Option {
	return optFunc(func(c *config) { c.app.DeadLetterTopic = topic })
}

// MetricsAddr starts an HTTP server on addr serving Prometheus metrics at
// /metrics, the topology description (Topology.Describe) at /topology, and
// at /application a JSON description of the instance (the topology as
// data, its active and standby tasks, restore progress, stores, commits,
// dropped records) that `weir console --apps` shows.
// New binds it (port 0 picks a free port; Application.MetricsAddr says
// which). Default none.
func MetricsAddr(addr string) Option {
	return optFunc(func(c *config) { c.app.MetricsAddr = addr })
}

// SessionTimeout is the group session timeout: how long the group waits
// for an instance that stopped heartbeating before its tasks move to
// others. Default 10s.
func SessionTimeout(d time.Duration) Option {
	return optFunc(func(c *config) { c.app.SessionTimeout = d })
}

// MaxBufferedPerPartition bounds the records buffered per input partition
// of a task; fetching that partition pauses above it. Default 1000.
func MaxBufferedPerPartition(n int) Option {
	return optFunc(func(c *config) { c.app.MaxBufferedPerPartition = n })
}

// MaxTaskIdle bounds how long a task reading several input partitions (a
// join, a merge) waits for one of them that may hold earlier records (its
// lag is unknown, or records are on the broker but not fetched yet) while
// others have records buffered. A task processes in timestamp order only
// while every input partition has records buffered or is known to be at
// its end; after waiting d it processes without the missing partition
// (counted in weir_enforced_processing_total), and that partition's records
// may then arrive late. Negative: never wait. Default 10s.
func MaxTaskIdle(d time.Duration) Option {
	return optFunc(func(c *config) { c.app.MaxTaskIdle = d })
}

// ReplicationFactor of the internal topics the application creates
// (changelogs, repartition topics). Default -1: min(3, the cluster's
// brokers), with min.insync.replicas 2 at 3 (an acknowledged write
// survives the loss of one broker while another is down); a single broker
// gets 1.
func ReplicationFactor(n int16) Option {
	return optFunc(func(c *config) { c.app.ReplicationFactor = n })
}

// ExactlyOnce makes the instance process exactly once (Kafka Streams'
// processing.guarantee=exactly_once_v2): the instance has one transactional
// producer (transactional id "<application id>-<instance id>", the instance
// id kept in the state directory, so that a restarted instance fences its
// own earlier incarnation and aborts what it left open), and each commit is
// one transaction holding the output, changelog and repartition records of
// every task and the input offsets they consumed (sent to the group
// coordinator with the group's generation, KIP-447). Inputs and changelogs
// are read at read_committed. A store's local checkpoint moves only once its
// transaction has committed: a crash or an aborted transaction leaves the
// store at the last committed transaction, and a restore replays only
// committed changelog records from there. A rebalance that takes partitions
// from the instance, a lost membership or a failed commit aborts the open
// transaction; every task then closes without flushing, restores the tail of
// its stores and processes again from the committed offsets. A commit whose
// outcome is unknown (a broker lost during it) or a producer the coordinator
// fenced (a transaction past TransactionTimeout) does not stop the instance:
// it replaces its transactional client, which settles the transaction on the
// broker, and its tasks resume from what the broker committed
// (weir_client_restarts_total; five in a row with no input committed stop
// it). Readers of the output see each input record's effect once when they
// read at read_committed. Needs a broker with transactions (a Weir broker, Kafka
// 2.5 or later). Default: at-least-once.
func ExactlyOnce() Option { return optFunc(func(c *config) { c.app.ExactlyOnce = true }) }

// TransactionTimeout is how long the broker lets one of the instance's
// transactions stay open before it aborts it; an instance that crashes with
// a transaction open holds read_committed readers of its output back for
// that long. With ExactlyOnce only. Default 10s.
func TransactionTimeout(d time.Duration) Option {
	return optFunc(func(c *config) { c.app.TransactionTimeout = d })
}

// ClientOptions adds franz-go options to every client the application
// creates (a dialer, a logger; TLS and SASL have options of their own).
// Default none.
func ClientOptions(opts ...kgo.Opt) Option {
	return optFunc(func(c *config) { c.app.ClientOpts = append(c.app.ClientOpts, opts...) })
}

// Logger receives the application's log lines. Default slog.Default().
func Logger(l *slog.Logger) Option { return optFunc(func(c *config) { c.app.Logger = l }) }
