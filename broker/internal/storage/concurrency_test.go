package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/weir-dev/weir/broker/internal/batch"
)

// TestConcurrentAppendReadClean runs appenders, readers, a long-polling
// waiter and the cleaner at once (run it with -race): the offsets handed out
// are disjoint and cover [0, N); readers only ever see whole valid batches
// below the high watermark; the waiter wakes for every advance up to N.
func TestConcurrentAppendReadClean(t *testing.T) {
	const appenders, perAppender = 4, 100
	l := openTest(t, vfs.NewMem(), Options{Config: Config{SegmentBytes: 2048, IndexIntervalBytes: 256, Cleanup: Compact}, CleanerBytesPerSecond: -1})
	total := Offset(appenders * perAppender * 2)

	var wg sync.WaitGroup
	var mu sync.Mutex
	var ranges [][2]Offset
	for w := range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perAppender {
				b := buildBatch(t, batchSpec{recs: []kv{
					{key: fmt.Appendf(nil, "w%d-%d", w, i%10), value: []byte("x"), ts: int64(i)},
					{key: fmt.Appendf(nil, "w%d-%d", w, i%7), value: []byte("y"), ts: int64(i)},
				}})
				res, err := l.Append(context.Background(), b, 0)
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				mu.Lock()
				ranges = append(ranges, [2]Offset{res.BaseOffset, res.LastOffset})
				mu.Unlock()
			}
		}()
	}
	done := make(chan struct{})
	var bg sync.WaitGroup
	for r := range 2 {
		bg.Add(1)
		go func() {
			defer bg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 2))
			for {
				select {
				case <-done:
					return
				default:
				}
				start, hw := l.LogStartOffset(), l.HighWatermark()
				if hw == start {
					select {
					case <-l.Changed():
					case <-done:
					}
					continue
				}
				from := start + Offset(rng.Int64N(int64(hw-start)))
				b, err := l.Read(from, rng.IntN(3000))
				if IsOffsetOutOfRange(err) && from < l.LogStartOffset() {
					continue // the cleaner dropped an emptied segment meanwhile
				}
				if err != nil {
					t.Errorf("read %d: %v", from, err)
					return
				}
				for len(b) > 0 {
					one, rest, err := batch.Next(b)
					if err != nil {
						t.Errorf("read %d: %v", from, err)
						return
					}
					h, err := batch.Validate(one)
					if err != nil || Offset(h.LastOffset()) >= l.HighWatermark() {
						t.Errorf("read %d: batch %d invalid (%v) or past hw", from, h.BaseOffset, err)
						return
					}
					b = rest
				}
			}
		}()
	}
	bg.Add(1)
	go func() { // the broker's cleaner goroutine
		defer bg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := l.Clean(context.Background()); err != nil {
				t.Errorf("clean: %v", err)
				return
			}
			select {
			case <-l.Changed():
			case <-done:
			}
		}
	}()
	waited := make(chan Offset)
	go func() { // a long-polling fetch
		for {
			ch := l.Changed()
			if hw := l.HighWatermark(); hw >= total {
				waited <- hw
				return
			}
			<-ch
		}
	}()
	wg.Wait()
	select {
	case hw := <-waited:
		if hw != total {
			t.Fatalf("waiter saw hw %d, want %d", hw, total)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("long-polling waiter never saw the final high watermark")
	}
	close(done)
	bg.Wait()

	sort.Slice(ranges, func(i, j int) bool { return ranges[i][0] < ranges[j][0] })
	next := Offset(0)
	for _, r := range ranges {
		if r[0] != next || r[1] != r[0]+1 {
			t.Fatalf("offsets %v do not follow %d", r, next)
		}
		next = r[1] + 1
	}
	if next != total {
		t.Fatalf("appends covered [0, %d), want [0, %d)", next, total)
	}
}

// TestCloseStopsSyncer checks that Close stops and waits for the log's
// goroutine, under each sync policy.
func TestCloseStopsSyncer(t *testing.T) {
	for _, p := range []SyncPolicy{SyncGroupCommit, SyncInterval, SyncNever} {
		l, err := Open("/p", Options{FS: vfs.NewMem(), Sync: p, SyncInterval: time.Millisecond, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		mustAppend(t, l, simpleBatch(t, 1, 0))
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		// The syncer signals Close from a deferred call, so it may still
		// be on its way out when Close returns: it must be gone soon
		// after, not at once.
		buf := make([]byte, 1<<20)
		var stacks string
		for deadline := time.Now().Add(5 * time.Second); ; {
			stacks = string(buf[:runtime.Stack(buf, true)])
			if !strings.Contains(stacks, "storage.(*Log).syncLoop") && !strings.Contains(stacks, "storage.(*Log).intervalLoop") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%v: a syncer goroutine outlived Close by 5 s:\n%s", p, stacks)
			}
			runtime.Gosched()
		}
		if _, err := l.Append(context.Background(), simpleBatch(t, 1, 0), 0); !IsClosed(err) {
			t.Fatalf("%v: append after close: %v", p, err)
		}
	}
}
