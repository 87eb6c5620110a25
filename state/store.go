package state

import (
	"context"
	"time"
)

// Offset is a position in a changelog partition, as Kafka numbers it.
type Offset int64

// NoOffset means "no offset": nothing was appended, or nothing is known.
const NoOffset Offset = -1

// Store is what every state store has: a name, a flush and a close.
//
// Stores are not safe for concurrent use: a store belongs to one task, and
// the task's goroutine is the only one that calls it. (The engine that opens
// stores is safe for concurrent use.)
type Store interface {
	// Name returns the store's name, unique within an application.
	Name() string
	// Flush makes every write so far durable together with the changelog
	// offset it reflects: a cached store first writes its dirty entries to
	// the store below (calling its flush listener), the store's changelog
	// writer is flushed, and then the data and the changelog offset are
	// committed in one atomic batch. The runtime calls Flush on commit.
	Flush(ctx context.Context) error
	// Close releases the store. Writes not flushed are dropped (the
	// changelog, replayed from the store's checkpoint, is the truth), so
	// callers Flush first on a clean stop. Close is idempotent.
	Close() error
}

// Iterator walks key-value pairs in key order (or reverse order).
//
// Usage:
//
//	it, err := kv.Range(from, to, false)
//	...
//	defer it.Close()
//	for it.Next() { use(it.Key(), it.Value()) }
//	if err := it.Err(); err != nil { ... }
//
// The slices returned by Key and Value are valid until the next call to Next
// or Close; copy them to keep them. Writing to the store while an iterator is
// open is allowed; whether the iterator sees the write is unspecified.
type Iterator interface {
	// Next advances to the next pair and reports whether there is one.
	Next() bool
	// Key returns the current key.
	Key() []byte
	// Value returns the current value.
	Value() []byte
	// Err returns the error that stopped the iteration, if any.
	Err() error
	// Close releases the iterator. It returns Err().
	Close() error
}

// KeyValueStore maps byte keys to byte values, ordered by key (bytewise,
// like bytes.Compare).
//
// Keys and values passed in are not retained by the store: the caller may
// reuse them after the call returns. A nil or empty key is invalid. Values
// returned by Get are the caller's to keep.
type KeyValueStore interface {
	Store
	// Get returns the value of key, or nil and no error if key is absent.
	Get(key []byte) ([]byte, error)
	// Put sets key to value. A nil value deletes key (and appends a
	// tombstone to the changelog).
	Put(key, value []byte) error
	// PutIfAbsent sets key to value if key is absent and returns nil; if key
	// is present it leaves it and returns the present value.
	PutIfAbsent(key, value []byte) ([]byte, error)
	// Delete removes key. Deleting an absent key is not an error.
	Delete(key []byte) error
	// Range iterates the keys k with from <= k < to. A nil from means from
	// the first key, a nil to means up to the last key. With reverse the
	// order is descending.
	Range(from, to []byte, reverse bool) (Iterator, error)
	// Prefix iterates the keys that start with prefix.
	Prefix(prefix []byte, reverse bool) (Iterator, error)
	// All iterates every key.
	All(reverse bool) (Iterator, error)
	// ApproximateCount returns an estimate of the number of keys, cheaply:
	// exact for the in-memory store; on Pebble exact up to 1,000 keys (a
	// bounded scan), and past that estimated from Pebble's table statistics
	// (overwritten and deleted keys not yet compacted away may count, data
	// not yet flushed from the memtable may not). A cached store adds its
	// dirty entries.
	ApproximateCount() (int64, error)
}

// WindowIterator walks windowed entries: a key, the start of its window and
// the value. Slices are valid until the next Next or Close.
type WindowIterator interface {
	Next() bool
	Key() []byte
	// WindowStart returns the start of the current entry's window, in
	// milliseconds (the timestamp scale of records). The window's end is
	// WindowStart + the window size, which the caller knows.
	WindowStart() int64
	Value() []byte
	Err() error
	Close() error
}

// WindowStore keeps one value per key and window start. Times are record
// timestamps in milliseconds.
//
// Retention: the store tracks its observed stream time, the largest window
// start ever put. Windows whose start is older than observed stream time
// minus the store's retention are expired: they are dropped in whole time
// segments (never by scanning keys), no longer returned, and a Put into an
// expired window is ignored (and counted; see ExpiredPuts).
type WindowStore interface {
	Store
	// Put sets the value for key in the window starting at windowStart. A
	// nil value deletes the entry.
	Put(key []byte, windowStart int64, value []byte) error
	// Get returns the value for key in the window starting at windowStart,
	// or nil if there is none.
	Get(key []byte, windowStart int64) ([]byte, error)
	// Fetch iterates the windows of one key whose start t satisfies
	// timeFrom <= t <= timeTo, in ascending window start (descending with
	// reverse).
	Fetch(key []byte, timeFrom, timeTo int64, reverse bool) (WindowIterator, error)
	// FetchAll iterates the windows of every key whose start lies in
	// [timeFrom, timeTo]. Order: ascending (descending with reverse) by time
	// segment, and within a segment by key, then window start.
	FetchAll(timeFrom, timeTo int64, reverse bool) (WindowIterator, error)
	// All iterates every unexpired window, in FetchAll's order.
	All(reverse bool) (WindowIterator, error)
	// ObservedStreamTime returns the largest window start put so far, or
	// math.MinInt64 if none.
	ObservedStreamTime() int64
	// ExpiredPuts returns how many puts were ignored because their window
	// had expired.
	ExpiredPuts() int64
}

// SessionIterator walks sessions: a key, the session's first and last
// record timestamps (both inclusive) and the value. Slices are valid until
// the next Next or Close.
type SessionIterator interface {
	Next() bool
	Key() []byte
	// Start returns the timestamp of the session's first record.
	Start() int64
	// End returns the timestamp of the session's last record.
	End() int64
	Value() []byte
	Err() error
	Close() error
}

// SessionStore keeps sessions: per key, any number of (start, end) time
// ranges, each with a value. Retention works as for WindowStore, with a
// session's end as its time: observed stream time is the largest end put,
// and sessions ending before observed stream time minus retention expire.
type SessionStore interface {
	Store
	// Put sets the value of the session (key, start, end), start <= end.
	// A nil value removes it.
	Put(key []byte, start, end int64, value []byte) error
	// Remove removes the session (key, start, end).
	Remove(key []byte, start, end int64) error
	// Get returns the value of the session (key, start, end), or nil.
	Get(key []byte, start, end int64) ([]byte, error)
	// FindSessions iterates the sessions of key that end at or after
	// earliestEnd and start at or before latestStart: for session merging
	// with inactivity gap g and a record at t, earliestEnd = t-g and
	// latestStart = t+g find every session the record overlaps or touches.
	// Order: ascending by end, then start.
	FindSessions(key []byte, earliestEnd, latestStart int64) (SessionIterator, error)
	// Fetch iterates every session of key, ascending by end, then start.
	Fetch(key []byte) (SessionIterator, error)
	// All iterates every unexpired session: ascending by time segment,
	// then key, end, start.
	All() (SessionIterator, error)
	// ObservedStreamTime returns the largest session end put so far, or
	// math.MinInt64 if none.
	ObservedStreamTime() int64
	// ExpiredPuts returns how many puts were ignored because the session
	// had expired.
	ExpiredPuts() int64
}

// Kind says which interface a store implements.
type Kind int8

const (
	// KindKeyValue is a KeyValueStore.
	KindKeyValue Kind = iota + 1
	// KindWindow is a WindowStore.
	KindWindow
	// KindSession is a SessionStore.
	KindSession
)

// String returns "key-value", "window" or "session".
func (k Kind) String() string {
	switch k {
	case KindKeyValue:
		return "key-value"
	case KindWindow:
		return "window"
	case KindSession:
		return "session"
	}
	return "unknown"
}

// Spec describes a store of a topology. The zero value of each option is
// its default, so a Spec with just Name and Kind is a logged, Pebble-backed,
// write-back cached store.
type Spec struct {
	// Name is the store's name, unique within the application. It names the
	// changelog topic: <application>-<name>-changelog. Required.
	Name string
	// Kind is the store's interface. Required.
	Kind Kind
	// InMemory keeps the store in an ordered in-memory structure instead of
	// Pebble. It is restored in full from its changelog on every open.
	// Default false (Pebble).
	InMemory bool
	// Unlogged disables the changelog: the store is not recoverable on
	// another machine. The runtime refuses it under ExactlyOnce (an
	// aborted transaction's writes could not be undone). Default false
	// (logged).
	Unlogged bool
	// Uncached disables the per-task write-back cache. Default false
	// (cached). The cache is what makes an aggregation emit once per key
	// per commit instead of once per record.
	Uncached bool
	// ReadCache fronts the store with a ristretto read cache (key-value
	// stores only), for read-heavy stores such as the table side of a join.
	// Default false.
	ReadCache bool
	// Retention is how long window and session stores keep data, measured
	// in stream time. Default DefaultRetention (one day). Must cover the
	// window size plus grace.
	Retention time.Duration
	// WindowSize is the size of the windows of a window store; informative
	// (the store keys windows by start), used to check Retention >=
	// WindowSize. Default 0 (not checked).
	WindowSize time.Duration
	// ChangelogConfigs overrides or adds topic configs of the changelog
	// topic (see ChangelogTopicFor). Default none.
	ChangelogConfigs map[string]string
}

// DefaultRetention is the retention of window and session stores whose Spec
// leaves it zero: one day, as Kafka Streams.
const DefaultRetention = 24 * time.Hour

// ChangelogRetentionExtra is added to a window or session store's retention
// to give its changelog's retention.ms: one day.
const ChangelogRetentionExtra = 24 * time.Hour

// ChangelogRecord is one record of a changelog partition, as read for a
// restore. A nil Value is a tombstone.
type ChangelogRecord struct {
	Offset Offset
	Key    []byte
	Value  []byte
}

// ChangelogWriter appends a store's writes to its changelog partition. The
// runtime implements it with a franz-go producer, the test driver with an
// in-memory topic. There is one writer per store and partition; it is called
// from the store owner's goroutine only.
type ChangelogWriter interface {
	// Append queues one record. A nil value is a tombstone. The writer may
	// retain key and value: the store never modifies them afterwards.
	// Append may return an error from an earlier failed send.
	Append(key, value []byte) error
	// Flush waits until every appended record is acknowledged and returns
	// the offset of the last record appended through this writer, or
	// NoOffset if none has been.
	Flush(ctx context.Context) (Offset, error)
}

// ChangelogReader reads a store's changelog partition for a restore.
type ChangelogReader interface {
	// Topic and Partition name the changelog (for error messages).
	Topic() string
	Partition() int32
	// EndOffset returns the offset the next appended record will get (the
	// high watermark).
	EndOffset(ctx context.Context) (Offset, error)
	// Read delivers the records with offsets in [from, to), in offset order,
	// in batches to fn. Offsets may have gaps (compaction, retention); Read
	// returns nil once it has delivered every record below to that the log
	// holds. It stops early with fn's error or ctx's error. The batch and
	// the slices in it are valid only during the call to fn.
	Read(ctx context.Context, from, to Offset, fn func(batch []ChangelogRecord) error) error
}

// ChangelogTopic names a changelog topic and the topic configs it needs. The
// runtime creates it (with the input topics' partition count) before the
// application starts.
type ChangelogTopic struct {
	// Name is <application>-<store>-changelog.
	Name string
	// Configs are topic configs: cleanup.policy, and retention.ms for window
	// and session stores, plus the Spec's ChangelogConfigs.
	Configs map[string]string
}
