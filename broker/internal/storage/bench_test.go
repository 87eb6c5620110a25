package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/weir-dev/weir/broker/internal/batch"
)

const benchBatchBytes = 16 << 10

// benchBatch builds an uncompressed batch of about 16 KiB of records with
// valueSize-byte values.
func benchBatch(b testing.TB, valueSize int) []byte {
	b.Helper()
	var recs []batch.Record
	size := batch.HeaderSize
	for i := 0; size+valueSize+24 <= benchBatchBytes; i++ {
		recs = append(recs, batch.Record{OffsetDelta: int32(i), Key: fmt.Appendf(nil, "key-%06d", i), Value: make([]byte, valueSize)})
		size += valueSize + 24
	}
	h := batch.Header{FirstTimestamp: 1, MaxTimestamp: 1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
	out, err := batch.Build(h, recs, batch.CodecNone)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// BenchmarkAppend measures appends of ~16 KiB batches under the default
// group-commit fsync on the real filesystem, beside the physical limit: a
// plain sequential write + fsync of the same bytes per batch, and the same
// with fdatasync, which the log's group commit uses. The log
// sub-benchmarks report "x-file" and "x-datasync", their throughput as a
// fraction of each plain file's measured in the same run (1.0 = as fast
// as the plain file).
// appenders=N runs N concurrent appenders, which share fsyncs.
func BenchmarkAppend(b *testing.B) {
	for _, valueSize := range []int{100, 1024} {
		b.Run(fmt.Sprintf("record=%dB", valueSize), func(b *testing.B) {
			data := benchBatch(b, valueSize)
			var fileNs, dataNs float64
			plain := func(name string, sync func(vfs.File) error, ns *float64) {
				b.Run(name, func(b *testing.B) {
					b.ReportAllocs()
					b.SetBytes(int64(len(data)))
					f, err := vfs.Default.Create(filepath.Join(b.TempDir(), "plain"), vfs.WriteCategoryUnspecified)
					if err != nil {
						b.Fatal(err)
					}
					defer f.Close()
					b.ResetTimer()
					for range b.N {
						if _, err := f.Write(data); err != nil {
							b.Fatal(err)
						}
						if err := sync(f); err != nil {
							b.Fatal(err)
						}
					}
					b.StopTimer()
					*ns = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
				})
			}
			plain("file-write+fsync", vfs.File.Sync, &fileNs)
			plain("file-write+fdatasync", vfs.File.SyncData, &dataNs)
			for _, appenders := range []int{1, 4, 16} {
				b.Run(fmt.Sprintf("log/appenders=%d", appenders), func(b *testing.B) {
					b.ReportAllocs()
					b.SetBytes(int64(len(data)))
					l, err := Open(b.TempDir(), Options{Logger: quietLogger()})
					if err != nil {
						b.Fatal(err)
					}
					defer l.Close()
					var wg sync.WaitGroup
					work := make(chan struct{}, 1024)
					b.ResetTimer()
					for range appenders {
						wg.Add(1)
						go func() {
							defer wg.Done()
							buf := append([]byte(nil), data...)
							for range work {
								if _, err := l.Append(context.Background(), buf, 0); err != nil {
									b.Error(err)
									return
								}
							}
						}()
					}
					for range b.N {
						work <- struct{}{}
					}
					close(work)
					wg.Wait()
					b.StopTimer()
					logNs := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
					if fileNs > 0 {
						b.ReportMetric(fileNs/logNs, "x-file")
					}
					if dataNs > 0 {
						b.ReportMetric(dataNs/logNs, "x-datasync")
					}
				})
			}
		})
	}
}

// BenchmarkRead measures reading a log front to back by offset, 1 MiB per
// Read, beside plain preads of the same segment file.
func BenchmarkRead(b *testing.B) {
	dir := b.TempDir()
	l, err := Open(dir, Options{Sync: SyncNever, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	data := benchBatch(b, 100)
	const batches = 1024 // 16 MiB
	for range batches {
		if _, err := l.Append(context.Background(), data, 0); err != nil {
			b.Fatal(err)
		}
	}
	total := int64(batches * len(data))
	var fileNs float64
	b.Run("file-pread", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(total)
		f, err := os.Open(filepath.Join(dir, segmentName(0, logSuffix)))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		buf := make([]byte, 1<<20)
		b.ResetTimer()
		for range b.N {
			for pos := int64(0); pos < total; pos += int64(len(buf)) {
				out := make([]byte, min(int64(len(buf)), total-pos)) // Read returns fresh memory too
				if _, err := f.ReadAt(out, pos); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StopTimer()
		fileNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("log", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(total)
		for range b.N {
			var n int64
			for off := Offset(0); off < l.HighWatermark(); {
				out, err := l.Read(off, 1<<20)
				if err != nil {
					b.Fatal(err)
				}
				n += int64(len(out))
				// The next offset is the last batch's end: peek its header.
				last := lastBatchEnd(b, out)
				off = last
			}
			if n != total {
				b.Fatalf("read %d bytes, want %d", n, total)
			}
		}
		b.StopTimer()
		if fileNs > 0 {
			b.ReportMetric(fileNs/(float64(b.Elapsed().Nanoseconds())/float64(b.N)), "x-file")
		}
	})
}

func lastBatchEnd(b testing.TB, buf []byte) Offset {
	var end Offset
	for len(buf) > 0 {
		one, rest, err := batch.Next(buf)
		if err != nil {
			b.Fatal(err)
		}
		h, _ := batch.ParseHeader(one)
		end = Offset(h.LastOffset() + 1)
		buf = rest
	}
	return end
}

// BenchmarkCompaction measures one compaction pass over 8 MiB of sealed
// segments (100-byte values, 1,000 distinct keys, so most records are
// superseded), beside a plain copy (read + write + fsync) of the same files.
func BenchmarkCompaction(b *testing.B) {
	const segBytes = 1 << 20
	// makeLog fills dir with 8 sealed segments (plus an active one).
	makeLog := func(b *testing.B, dir string) *Log {
		l, err := Open(dir, Options{Sync: SyncNever, Logger: quietLogger(), CleanerBytesPerSecond: -1,
			Config: Config{SegmentBytes: segBytes, Cleanup: Compact}})
		if err != nil {
			b.Fatal(err)
		}
		i := 0
		for len(l.segs) < 9 {
			var recs []batch.Record
			for j := range 100 {
				recs = append(recs, batch.Record{OffsetDelta: int32(j), Key: fmt.Appendf(nil, "key-%04d", i%1000), Value: make([]byte, 100)})
				i++
			}
			h := batch.Header{FirstTimestamp: 1, MaxTimestamp: 1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
			data, err := batch.Build(h, recs, batch.CodecNone)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := l.Append(context.Background(), data, 0); err != nil {
				b.Fatal(err)
			}
		}
		return l
	}
	var sealed int64
	var copyNs float64
	b.Run("file-copy", func(b *testing.B) {
		b.ReportAllocs()
		dir := b.TempDir()
		l := makeLog(b, dir)
		var names []string
		for _, s := range l.segs[:len(l.segs)-1] {
			names = append(names, s.path)
			sealed += s.size
		}
		l.Close()
		b.SetBytes(sealed / 1)
		buf := make([]byte, 1<<20)
		b.ResetTimer()
		for range b.N {
			for _, n := range names {
				src, err := vfs.Default.Open(n)
				if err != nil {
					b.Fatal(err)
				}
				dst, err := vfs.Default.Create(n+".copy", vfs.WriteCategoryUnspecified)
				if err != nil {
					b.Fatal(err)
				}
				size, _ := sizeOf(src)
				for pos := int64(0); pos < size; pos += int64(len(buf)) {
					m, _ := src.ReadAt(buf, pos)
					if _, err := dst.Write(buf[:m]); err != nil {
						b.Fatal(err)
					}
				}
				if err := dst.Sync(); err != nil {
					b.Fatal(err)
				}
				src.Close()
				dst.Close()
			}
		}
		b.StopTimer()
		copyNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("log-clean", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(sealed)
		var elapsed int64
		for range b.N {
			b.StopTimer()
			l := makeLog(b, b.TempDir())
			b.StartTimer()
			if err := l.Clean(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if l.CleanerStats().Passes != 1 {
				b.Fatal("no compaction pass ran")
			}
			l.Close()
		}
		elapsed = b.Elapsed().Nanoseconds()
		if copyNs > 0 {
			b.ReportMetric(copyNs/(float64(elapsed)/float64(b.N)), "x-copy")
		}
	})
}

// BenchmarkAppendWhileCleaning measures 4 concurrent group-commit appenders
// on one partition while another partition on the same disk is compacted
// over and over (at the default cleaner rate, 64 MiB/s, and at 8 MiB/s),
// beside the same appenders with the cleaner idle. "x-idle" is the throughput while cleaning as a fraction
// of the idle throughput in the same run.
func BenchmarkAppendWhileCleaning(b *testing.B) {
	data := benchBatch(b, 100)
	var idleNs float64
	for _, rate := range []int64{0, 64 << 20, 8 << 20} {
		cleaning := rate > 0
		name := "idle"
		if cleaning {
			name = fmt.Sprintf("cleaning-at-%dMiBps", rate>>20)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			l, err := Open(b.TempDir(), Options{Logger: quietLogger()})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			stop := make(chan struct{})
			var cleaner sync.WaitGroup
			if cleaning {
				other, err := Open(b.TempDir(), Options{Sync: SyncNever, Logger: quietLogger(), CleanerBytesPerSecond: rate, Config: Config{SegmentBytes: 1 << 20, Cleanup: Compact}})
				if err != nil {
					b.Fatal(err)
				}
				defer other.Close()
				for len(other.segs) < 9 {
					if _, err := other.Append(context.Background(), append([]byte(nil), data...), 0); err != nil {
						b.Fatal(err)
					}
				}
				cleaner.Add(1)
				go func() {
					defer cleaner.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						other.cleanMu.Lock()
						other.compactedThrough = -1 // make every pass a full one
						other.cleanMu.Unlock()
						if err := other.Clean(context.Background()); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			work := make(chan struct{}, 1024)
			var wg sync.WaitGroup
			b.ResetTimer()
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					buf := append([]byte(nil), data...)
					for range work {
						if _, err := l.Append(context.Background(), buf, 0); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			for range b.N {
				work <- struct{}{}
			}
			close(work)
			wg.Wait()
			b.StopTimer()
			close(stop)
			cleaner.Wait()
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if !cleaning {
				idleNs = ns
			} else if idleNs > 0 {
				b.ReportMetric(idleNs/ns, "x-idle")
			}
		})
	}
}

// BenchmarkOpenAfterKill opens a log of 200 sealed segments (16 KiB
// batches, 4 a segment) on the real filesystem as a kill leaves it: no
// clean-shutdown marker. "checkpoint" has the recovery-point checkpoint
// the rolls wrote, so only the active segment is read; "no-checkpoint"
// has it removed, so every sealed segment's indexes and last batches are
// checked (as before the checkpoint existed). Compare ns/op in one run.
func BenchmarkOpenAfterKill(b *testing.B) {
	data := benchBatch(b, 100)
	for _, mode := range []string{"checkpoint", "no-checkpoint"} {
		b.Run(mode, func(b *testing.B) {
			dir := filepath.Join(b.TempDir(), "p")
			opts := Options{FS: vfs.Default, Logger: quietLogger(), Config: Config{SegmentBytes: int64(4 * len(data))}}
			l, err := Open(dir, opts)
			if err != nil {
				b.Fatal(err)
			}
			for range 200*4 + 1 {
				mustAppend(b, l, data)
			}
			end := l.LogEndOffset()
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				os.Remove(filepath.Join(dir, cleanShutdownFile))
				if mode == "no-checkpoint" {
					os.Remove(filepath.Join(dir, recoveryPointFile))
				}
				b.StartTimer()
				l, err := Open(dir, opts)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if got := l.LogEndOffset(); got != end {
					b.Fatalf("log end offset %d, want %d", got, end)
				}
				if err := l.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
