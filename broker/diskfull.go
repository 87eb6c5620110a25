package broker

import (
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weir-dev/weir/broker/internal/storage"
)

// lowDiskBytes is the free space below which the broker says at startup
// that the disk is full (1 MiB: an append of one ordinary batch may
// already fail there).
const lowDiskBytes = 1 << 20

// storageErrorLogEvery is how often, at most, the broker logs a line for
// each kind of append storage failure; the failures in between are counted
// in the metric and summed up in the next line.
const storageErrorLogEvery = 10 * time.Second

// Reasons of weir_storage_errors_total.
const (
	reasonDiskFull = "disk_full"
	reasonIO       = "io_error"
)

// storageHealth counts the storage failures of appends (a produce request
// gets KAFKA_STORAGE_ERROR for them) in weir_storage_errors_total{reason}
// and logs them, at most one line per reason each storageErrorLogEvery.
// The success path never touches it.
type storageHealth struct {
	log   *slog.Logger
	now   func() time.Time
	every time.Duration

	errs     *prometheus.CounterVec
	byReason map[string]prometheus.Counter // pre-resolved children of errs
	free     prometheus.GaugeFunc          // nil where free space cannot be read

	mu sync.Mutex
	// lastLog and suppressed are per reason: when the last line was logged
	// and how many failures were not logged since. Guarded by mu.
	lastLog    map[string]time.Time
	suppressed map[string]int
}

func newStorageHealth(log *slog.Logger, dataDir string) *storageHealth {
	h := &storageHealth{
		log: log, now: time.Now, every: storageErrorLogEvery,
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_storage_errors_total",
			Help: "Appends (produce requests, consumer group commits) that failed with KAFKA_STORAGE_ERROR, by reason: disk_full (ENOSPC) or io_error (any other I/O failure, e.g. a failed fsync).",
		}, []string{"reason"}),
		lastLog:    map[string]time.Time{},
		suppressed: map[string]int{},
	}
	h.byReason = map[string]prometheus.Counter{
		reasonDiskFull: h.errs.WithLabelValues(reasonDiskFull),
		reasonIO:       h.errs.WithLabelValues(reasonIO),
	}
	if _, err := freeBytes(dataDir); err == nil {
		h.free = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "weir_data_dir_free_bytes",
			Help: "Bytes free to the broker on the filesystem holding its data directory, read at scrape time.",
		}, func() float64 {
			n, err := freeBytes(dataDir)
			if err != nil {
				return -1
			}
			return float64(n)
		})
	}
	return h
}

// register registers the health metrics on r.
func (h *storageHealth) register(r prometheus.Registerer) error {
	if err := r.Register(h.errs); err != nil {
		return err
	}
	if h.free != nil {
		return r.Register(h.free)
	}
	return nil
}

// appendFailed records an append (or its durability wait) that failed with
// err on the partition log in dir. Errors other than storage
// failures are not this type's business and are ignored.
func (h *storageHealth) appendFailed(dir string, err error) {
	if h == nil || !storage.IsStorage(err) {
		return
	}
	reason := reasonIO
	if storage.IsDiskFull(err) {
		reason = reasonDiskFull
	}
	h.byReason[reason].Inc()
	now := h.now()
	h.mu.Lock()
	if last, ok := h.lastLog[reason]; ok && now.Sub(last) < h.every {
		h.suppressed[reason]++
		h.mu.Unlock()
		return
	}
	h.lastLog[reason] = now
	n := h.suppressed[reason]
	h.suppressed[reason] = 0
	h.mu.Unlock()
	if reason == reasonDiskFull {
		h.log.Error("broker: disk full: append refused, produce answered KAFKA_STORAGE_ERROR; reads still work; delete topics or records to free space",
			"partition_dir", dir, "not_logged_since_last", n, "err", err)
		return
	}
	h.log.Error("broker: storage error: append refused, produce answered KAFKA_STORAGE_ERROR",
		"partition_dir", dir, "not_logged_since_last", n, "err", err)
}

// reportFreeSpace says in the log, at startup, when the filesystem holding
// dir is full, so that an operator reading the log knows why produces fail
// and what still works.
func reportFreeSpace(log *slog.Logger, dir string) {
	n, err := freeBytes(dir)
	if err != nil || n >= lowDiskBytes {
		return
	}
	log.Error("broker: disk full: the data directory's filesystem has almost no free space; produces will fail with KAFKA_STORAGE_ERROR until space is freed; reads work; delete topics or records to free space",
		"data_dir", dir, "free_bytes", n)
}
