package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/weir-dev/weir/broker/internal/base"
)

// Offset is a record's position in a partition: the broker's one offset
// type, base.Offset, named here for the package's brevity.
type Offset = base.Offset

// Epoch is a partition leader epoch: the broker's one epoch type,
// base.Epoch.
type Epoch = base.Epoch

// Marker is a transaction marker to write (WriteMarker), base.Marker.
type Marker = base.Marker

// CleanupPolicy is a partition's cleanup.policy.
type CleanupPolicy uint8

// The cleanup policies.
const (
	// Delete removes whole segments by retention.ms and retention.bytes.
	Delete CleanupPolicy = iota
	// Compact keeps the latest record per key.
	Compact
	// CompactDelete compacts and applies retention.
	CompactDelete
)

func (p CleanupPolicy) String() string {
	switch p {
	case Delete:
		return "delete"
	case Compact:
		return "compact"
	case CompactDelete:
		return "compact,delete"
	}
	return fmt.Sprintf("CleanupPolicy(%d)", uint8(p))
}

func (p CleanupPolicy) compacts() bool { return p == Compact || p == CompactDelete }
func (p CleanupPolicy) deletes() bool  { return p == Delete || p == CompactDelete }

// SyncPolicy says when appended bytes are fsynced.
type SyncPolicy uint8

// The sync policies.
const (
	// SyncGroupCommit (the default): Append returns only after an fsync
	// covering its bytes; appenders waiting at the same moment share one
	// fsync. The high watermark is the end of the fsynced bytes.
	SyncGroupCommit SyncPolicy = iota
	// SyncInterval fsyncs every Options.SyncInterval; Append returns once
	// the bytes are written. A machine crash may lose up to an interval of
	// acknowledged appends (a process crash loses nothing: the bytes are in
	// the OS page cache).
	SyncInterval
	// SyncNever leaves flushing to the OS (segments are still fsynced when
	// rolled and on Close). Fastest, and a machine crash may lose any
	// acknowledged append not yet flushed.
	SyncNever
)

func (p SyncPolicy) String() string {
	switch p {
	case SyncGroupCommit:
		return "group-commit"
	case SyncInterval:
		return "interval"
	case SyncNever:
		return "never"
	}
	return fmt.Sprintf("SyncPolicy(%d)", uint8(p))
}

// Config is a partition's topic-level configuration. Zero fields take the
// default stated beside them (as Kafka's); -1 means unlimited where Kafka
// allows it.
type Config struct {
	// SegmentBytes is segment.bytes: a segment is rolled before an append
	// would take it past this size. Default 1 GiB; at least 1 KiB (smaller
	// values are allowed for tests: at least HeaderSize); at most 2 GiB - 1.
	SegmentBytes int64
	// SegmentMS is segment.ms: the active segment is rolled at the first
	// append this long after its first batch. Default 7 days.
	SegmentMS int64
	// RetentionMS is retention.ms: sealed segments whose newest timestamp
	// is older than this are deleted. Default 7 days; -1 keeps forever.
	RetentionMS int64
	// RetentionBytes is retention.bytes: the oldest sealed segments are
	// deleted while the partition is larger than this. Default -1
	// (unlimited).
	RetentionBytes int64
	// Cleanup is cleanup.policy. Default Delete.
	Cleanup CleanupPolicy
	// DeleteRetentionMS is delete.retention.ms: how long a tombstone
	// survives compaction, measured from its record timestamp. Default 1
	// day.
	DeleteRetentionMS int64
	// MaxMessageBytes is max.message.bytes: the largest batch accepted.
	// Default 1 MiB + 12 (Kafka's 1048588).
	MaxMessageBytes int32
	// IndexIntervalBytes is index.interval.bytes: an offset index entry is
	// added after at least this many bytes since the previous one. Default
	// 4096.
	IndexIntervalBytes int32
	// MinCleanableDirtyRatio is min.cleanable.dirty.ratio: Clean compacts
	// only when the sealed bytes written since the last compaction are at
	// least this fraction of all sealed bytes (or a kept tombstone has
	// expired). Default 0.5; at most 1. Zero takes the default: use a small
	// positive value to compact at every new sealed segment.
	MinCleanableDirtyRatio float64
	// LogAppendTime is message.timestamp.type=LogAppendTime: Append
	// writes the clock's time (Options.Now) into each batch as its max
	// timestamp, marks it LogAppendTime and recomputes its CRC, after
	// validating it. Default false (CreateTime: batches keep the
	// producer's timestamps).
	LogAppendTime bool
}

// Default values of Config.
const (
	DefaultSegmentBytes       = 1 << 30
	DefaultSegmentMS          = 7 * 24 * 3600 * 1000
	DefaultRetentionMS        = 7 * 24 * 3600 * 1000
	DefaultRetentionBytes     = -1
	DefaultDeleteRetentionMS  = 24 * 3600 * 1000
	DefaultMaxMessageBytes    = 1048588
	DefaultIndexIntervalBytes = 4096
	// DefaultMinCleanableDirtyRatio is Kafka's default.
	DefaultMinCleanableDirtyRatio = 0.5
)

// EnsureDefaults fills zero fields with their defaults.
func (c *Config) EnsureDefaults() {
	if c.SegmentBytes == 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	if c.SegmentMS == 0 {
		c.SegmentMS = DefaultSegmentMS
	}
	if c.RetentionMS == 0 {
		c.RetentionMS = DefaultRetentionMS
	}
	if c.RetentionBytes == 0 {
		c.RetentionBytes = DefaultRetentionBytes
	}
	if c.DeleteRetentionMS == 0 {
		c.DeleteRetentionMS = DefaultDeleteRetentionMS
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.IndexIntervalBytes == 0 {
		c.IndexIntervalBytes = DefaultIndexIntervalBytes
	}
	if c.MinCleanableDirtyRatio == 0 {
		c.MinCleanableDirtyRatio = DefaultMinCleanableDirtyRatio
	}
}

// Validate reports every invalid field at once.
func (c *Config) Validate() error {
	var errs []error
	if c.SegmentBytes < 64 || c.SegmentBytes > math.MaxInt32 {
		errs = append(errs, fmt.Errorf("storage: segment.bytes %d outside [64, %d]", c.SegmentBytes, math.MaxInt32))
	}
	if c.SegmentMS < 1 {
		errs = append(errs, fmt.Errorf("storage: segment.ms %d must be positive", c.SegmentMS))
	}
	if c.RetentionMS < -1 {
		errs = append(errs, fmt.Errorf("storage: retention.ms %d must be -1 or positive", c.RetentionMS))
	}
	if c.RetentionBytes < -1 {
		errs = append(errs, fmt.Errorf("storage: retention.bytes %d must be -1 or positive", c.RetentionBytes))
	}
	if c.Cleanup > CompactDelete {
		errs = append(errs, fmt.Errorf("storage: unknown cleanup.policy %d", c.Cleanup))
	}
	if c.DeleteRetentionMS < 0 {
		errs = append(errs, fmt.Errorf("storage: delete.retention.ms %d must not be negative", c.DeleteRetentionMS))
	}
	if c.MaxMessageBytes < 0 {
		errs = append(errs, fmt.Errorf("storage: max.message.bytes %d must not be negative", c.MaxMessageBytes))
	}
	if c.MinCleanableDirtyRatio < 0 || c.MinCleanableDirtyRatio > 1 {
		errs = append(errs, fmt.Errorf("storage: min.cleanable.dirty.ratio %v outside [0, 1]", c.MinCleanableDirtyRatio))
	}
	if c.IndexIntervalBytes < 0 {
		errs = append(errs, fmt.Errorf("storage: index.interval.bytes %d must not be negative", c.IndexIntervalBytes))
	}
	return errors.Join(errs...)
}

// Options configure a Log.
type Options struct {
	// FS is the filesystem (Pebble's vfs). Default vfs.Default (the OS).
	FS vfs.FS
	// Now is the clock, used for segment.ms, retention.ms and tombstone
	// expiry. Default time.Now.
	Now func() time.Time
	// Sync is the durability policy. Default SyncGroupCommit.
	Sync SyncPolicy
	// SyncInterval is the fsync period under SyncInterval. Default 1s.
	SyncInterval time.Duration
	// Config is the partition's topic configuration; see Config for its
	// defaults.
	Config Config
	// CleanerBytesPerSecond bounds the compaction's read plus write rate so
	// appends keep their throughput while it runs. Default 64 MiB/s; -1 is
	// unlimited.
	CleanerBytesPerSecond int64
	// CleanerBufferBytes bounds the memory the compaction uses to read a
	// segment at a time. Default 1 MiB.
	CleanerBufferBytes int
	// FileCache bounds the open files of sealed segments; a broker shares
	// one among its partitions. Default: a cache of the log's own,
	// DefaultOpenSegmentFiles files.
	FileCache *FileCache
	// Logger receives recovery and cleaning events. Default slog.Default().
	Logger *slog.Logger
}

// EnsureDefaults fills zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = time.Second
	}
	if o.CleanerBytesPerSecond == 0 {
		o.CleanerBytesPerSecond = 64 << 20
	}
	if o.CleanerBufferBytes == 0 {
		o.CleanerBufferBytes = 1 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Config.EnsureDefaults()
}

// Validate reports every invalid field at once.
func (o *Options) Validate() error {
	var errs []error
	if o.Sync > SyncNever {
		errs = append(errs, fmt.Errorf("storage: unknown sync policy %d", o.Sync))
	}
	if o.SyncInterval < 0 {
		errs = append(errs, fmt.Errorf("storage: sync interval %v must not be negative", o.SyncInterval))
	}
	if o.CleanerBytesPerSecond < -1 {
		errs = append(errs, fmt.Errorf("storage: cleaner rate %d must be -1 or positive", o.CleanerBytesPerSecond))
	}
	if o.CleanerBufferBytes < 0 {
		errs = append(errs, fmt.Errorf("storage: cleaner buffer %d must not be negative", o.CleanerBufferBytes))
	}
	if err := o.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
