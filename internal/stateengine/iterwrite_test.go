package stateengine_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/state/statetest"
)

// Writes during iteration (state.Iterator: allowed, their visibility
// unspecified). Each test opens iterators of every kind on every
// implementation and, between steps, writes and deletes the entry just
// returned, others of its key and other keys, and sometimes flushes, with a
// write cache so small that those writes evict. A plain map is the model:
// every entry in the iterator's range when it opened that the caller did
// not write during the iteration must come back once, with its value, in
// the iterator's order; nothing else may come back out of order or twice.

// iwCacheBytes is the write caches' budget in these tests: a few dozen
// entries, so that most writes evict.
const iwCacheBytes = 8 << 10

// iwKey names an entry: a key-value store's key, a window (K, Start) or a
// session (K, Start, End).
type iwKey struct {
	K          string
	Start, End int64
}

func (k iwKey) String() string {
	return fmt.Sprintf("(%q %d %d)", k.K, k.Start, k.End)
}

// iwCheck checks one iteration against the model.
type iwCheck struct {
	t    *testing.T
	what string // the iterator, the round and the seed
	// want holds the model's entries in the iterator's range at open.
	want map[iwKey]string
	// touched are the entries the caller wrote or deleted since.
	touched map[iwKey]bool
	// less is the iterator's order.
	less    func(a, b iwKey) bool
	inRange func(iwKey) bool
	got     map[iwKey]bool
	last    iwKey
	n       int
}

func newIWCheck(t *testing.T, what string, model map[iwKey]string, inRange func(iwKey) bool, less func(a, b iwKey) bool) *iwCheck {
	c := &iwCheck{t: t, what: what, want: map[iwKey]string{}, touched: map[iwKey]bool{}, less: less, inRange: inRange, got: map[iwKey]bool{}}
	for k, v := range model {
		if inRange(k) {
			c.want[k] = v
		}
	}
	return c
}

func (c *iwCheck) saw(k iwKey, v []byte) {
	c.t.Helper()
	if c.n > 0 && !c.less(c.last, k) {
		c.t.Fatalf("%s: %v after %v: out of order or twice", c.what, k, c.last)
	}
	if !c.inRange(k) {
		c.t.Fatalf("%s: %v is out of the range", c.what, k)
	}
	if !c.touched[k] {
		wv, ok := c.want[k]
		if !ok {
			c.t.Fatalf("%s: %v = %.20q was neither there at open nor written since", c.what, k, v)
		}
		if wv != string(v) {
			c.t.Fatalf("%s: %v = %.20q (%d bytes), want %.20q (%d bytes)", c.what, k, v, len(v), wv, len(wv))
		}
	}
	c.got[k], c.last = true, k
	c.n++
}

// finish checks that every entry there at open and not touched came back.
func (c *iwCheck) finish() {
	c.t.Helper()
	var missing []iwKey
	for k := range c.want {
		if !c.touched[k] && !c.got[k] {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		slices.SortFunc(missing, func(a, b iwKey) int {
			if c.less(a, b) {
				return -1
			}
			return 1
		})
		c.t.Fatalf("%s: %d of %d entries missing (after %d returned): %v", c.what, len(missing), len(c.want), c.n, missing)
	}
}

// iwOpen closes the iterator a failed round leaves open, before the store
// and the engine close.
type iwOpen struct{ it interface{ Close() error } }

func newIWOpen(t *testing.T) *iwOpen {
	o := &iwOpen{}
	t.Cleanup(func() {
		if o.it != nil {
			_ = o.it.Close()
		}
	})
	return o
}

// iwValue is a value unique to (round, n), often past the 64 bytes
// iterators keep inline, and rarely of 1 MiB: past half a memtable of the
// test engine and past its uncommitted batches' share, so that the batch
// it goes into commits at once (early), as a batch Pebble hands to its
// flush as a whole (a flushable batch), clearing the batch's data.
func iwValue(r *rand.Rand, round, n int) string {
	v := fmt.Sprintf("r%d.%d.", round, n)
	if r.IntN(200) == 0 {
		return v + strings.Repeat("y", 1<<20)
	}
	return v + strings.Repeat("x", r.IntN(160))
}

// iwRounds is the iterations each implementation runs per test.
func iwRounds() int {
	if testing.Short() {
		return 30
	}
	return 100
}

// iwEngine is an engine whose write caches evict at once.
func iwEngine(t *testing.T) *stateengine.Engine {
	e := testEngine(t, nil)
	stateengine.SetWriteCacheForTest(e, iwCacheBytes)
	return e
}

func reverseIf(less func(a, b iwKey) bool, reverse bool) func(a, b iwKey) bool {
	if !reverse {
		return less
	}
	return func(a, b iwKey) bool { return less(b, a) }
}

func TestIterateWhileWritingKeyValue(t *testing.T) {
	seed := testSeed(t)
	forEachImpl(t, func(t *testing.T, im impl) {
		r := rand.New(rand.NewPCG(seed, 11))
		ctx := context.Background()
		s := im.kv(t, iwEngine(t), statetest.NewChangelog("kv", 0))
		open := newIWOpen(t)
		model := map[iwKey]string{}
		key := func() string { return fmt.Sprintf("k%02d", r.IntN(60)) }
		n := 0
		write := func(round int, k string, del bool) {
			n++
			if del {
				if err := s.Delete([]byte(k)); err != nil {
					t.Fatal(err)
				}
				delete(model, iwKey{K: k})
				return
			}
			v := iwValue(r, round, n)
			put(t, s, k, v)
			model[iwKey{K: k}] = v
		}
		for round := range iwRounds() {
			for range r.IntN(20) {
				write(round, key(), r.IntN(5) == 0)
			}
			if r.IntN(4) == 0 {
				if err := s.Flush(ctx); err != nil {
					t.Fatal(err)
				}
			}
			reverse := r.IntN(2) == 0
			var (
				it      state.Iterator
				err     error
				what    string
				inRange func(iwKey) bool
			)
			switch r.IntN(3) {
			case 0:
				it, err = s.All(reverse)
				what, inRange = "All", func(iwKey) bool { return true }
			case 1:
				lo, hi := key(), key()
				if lo > hi {
					lo, hi = hi, lo
				}
				it, err = s.Range([]byte(lo), []byte(hi), reverse)
				what, inRange = fmt.Sprintf("Range(%q, %q)", lo, hi), func(k iwKey) bool { return k.K >= lo && k.K < hi }
			default:
				p := key()[:2]
				it, err = s.Prefix([]byte(p), reverse)
				what, inRange = fmt.Sprintf("Prefix(%q)", p), func(k iwKey) bool { return strings.HasPrefix(k.K, p) }
			}
			if err != nil {
				t.Fatal(err)
			}
			open.it = it
			what = fmt.Sprintf("round %d (seed %d): %s reverse=%v", round, seed, what, reverse)
			c := newIWCheck(t, what, model, inRange, reverseIf(func(a, b iwKey) bool { return a.K < b.K }, reverse))
			stopAt := math.MaxInt
			if r.IntN(8) == 0 {
				stopAt = r.IntN(10)
			}
			for c.n < stopAt && it.Next() {
				cur := string(it.Key())
				c.saw(iwKey{K: cur}, it.Value())
				for range r.IntN(4) {
					k := key()
					switch x := r.IntN(20); {
					case x < 6:
						k = cur
					case x < 8:
						if err := s.Flush(ctx); err != nil {
							t.Fatal(err)
						}
						continue
					}
					c.touched[iwKey{K: k}] = true
					write(round, k, r.IntN(4) == 0)
				}
			}
			open.it = nil
			if err := it.Close(); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if stopAt == math.MaxInt {
				c.finish()
			}
		}
	})
}

// iwTimed is the part of the window and session tests they share: times
// advance round by round, writes during an iteration stay at or below the
// observed stream time (so that nothing expires under the iterator), and
// the model drops what expires.
type iwTimed struct {
	r        *rand.Rand
	model    map[iwKey]string
	observed int64
	now      int64
}

// iwRet is the retention of the timed stores: segments of 2 minutes.
const iwRet = 4 * 60_000

func (m *iwTimed) key() string { return fmt.Sprintf("k%d", m.r.IntN(8)) }

// recent returns a time up to 150 s before now, a multiple of 10 s.
func (m *iwTimed) recent() int64 {
	ts := m.now - int64(m.r.IntN(150_000))
	return ts - ts%10_000
}

func (m *iwTimed) cutoff() int64 {
	if m.observed == math.MinInt64 {
		return math.MinInt64
	}
	return m.observed - iwRet
}

// expire drops what the observed stream time expired.
func (m *iwTimed) expire(timeOf func(iwKey) int64) {
	for k := range m.model {
		if timeOf(k) < m.cutoff() {
			delete(m.model, k)
		}
	}
}

func segOf(ts int64) int64 {
	const seg = iwRet / 2
	if ts < 0 && ts%seg != 0 {
		return ts/seg - 1
	}
	return ts / seg
}

func TestIterateWhileWritingWindow(t *testing.T) {
	seed := testSeed(t)
	forEachImpl(t, func(t *testing.T, im impl) {
		r := rand.New(rand.NewPCG(seed, 12))
		ctx := context.Background()
		s := im.window(t, iwEngine(t), statetest.NewChangelog("win", 0), iwRet)
		open := newIWOpen(t)
		m := &iwTimed{r: r, model: map[iwKey]string{}, observed: math.MinInt64}
		n := 0
		write := func(round int, k string, start int64, del bool) {
			n++
			v := ""
			if !del {
				v = iwValue(r, round, n)
			}
			wput(t, s, k, start, v)
			if start < m.cutoff() {
				return
			}
			m.observed = max(m.observed, start)
			if del {
				delete(m.model, iwKey{K: k, Start: start})
			} else {
				m.model[iwKey{K: k, Start: start}] = v
			}
		}
		for round := range iwRounds() {
			m.now += int64(r.IntN(20_000))
			for range r.IntN(12) {
				write(round, m.key(), m.recent(), r.IntN(6) == 0)
			}
			m.expire(func(k iwKey) int64 { return k.Start })
			if r.IntN(4) == 0 {
				if err := s.Flush(ctx); err != nil {
					t.Fatal(err)
				}
			}
			reverse := r.IntN(2) == 0
			from := m.recent() - int64(r.IntN(3))*10_000
			to := from + int64(r.IntN(20))*10_000
			var (
				it      state.WindowIterator
				err     error
				what    string
				inRange func(iwKey) bool
				less    func(a, b iwKey) bool
			)
			cut := m.cutoff()
			byTime := func(a, b iwKey) bool { return a.Start < b.Start }
			bySegment := func(a, b iwKey) bool {
				if sa, sb := segOf(a.Start), segOf(b.Start); sa != sb {
					return sa < sb
				}
				if a.K != b.K {
					return a.K < b.K
				}
				return a.Start < b.Start
			}
			switch r.IntN(4) {
			case 0, 1:
				k := m.key()
				it, err = s.Fetch([]byte(k), from, to, reverse)
				what, less = fmt.Sprintf("Fetch(%q, %d, %d)", k, from, to), byTime
				inRange = func(e iwKey) bool { return e.K == k && e.Start >= from && e.Start <= to && e.Start >= cut }
			case 2:
				it, err = s.FetchAll(from, to, reverse)
				what, less = fmt.Sprintf("FetchAll(%d, %d)", from, to), bySegment
				inRange = func(e iwKey) bool { return e.Start >= from && e.Start <= to && e.Start >= cut }
			default:
				it, err = s.All(reverse)
				what, less = "All", bySegment
				inRange = func(e iwKey) bool { return e.Start >= cut }
			}
			if err != nil {
				t.Fatal(err)
			}
			open.it = it
			what = fmt.Sprintf("round %d (seed %d): %s reverse=%v", round, seed, what, reverse)
			c := newIWCheck(t, what, m.model, inRange, reverseIf(less, reverse))
			stopAt := math.MaxInt
			if r.IntN(8) == 0 {
				stopAt = r.IntN(6)
			}
			for c.n < stopAt && it.Next() {
				cur := iwKey{K: string(it.Key()), Start: it.WindowStart()}
				c.saw(cur, it.Value())
				for range r.IntN(4) {
					// NB: at or below the observed stream time, so that
					// nothing expires while the iterator is open.
					k := iwKey{K: m.key(), Start: min(m.recent(), m.observed)}
					switch x := r.IntN(20); {
					case x < 3:
						k = cur
					case x < 9:
						k.K = cur.K // a new window of the same key
					case x < 11:
						if err := s.Flush(ctx); err != nil {
							t.Fatal(err)
						}
						continue
					}
					c.touched[k] = true
					write(round, k.K, k.Start, r.IntN(4) == 0)
				}
			}
			open.it = nil
			if err := it.Close(); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if stopAt == math.MaxInt {
				c.finish()
			}
		}
	})
}

func TestIterateWhileWritingSession(t *testing.T) {
	seed := testSeed(t)
	forEachImpl(t, func(t *testing.T, im impl) {
		r := rand.New(rand.NewPCG(seed, 13))
		ctx := context.Background()
		s := im.session(t, iwEngine(t), statetest.NewChangelog("sess", 0), iwRet)
		open := newIWOpen(t)
		m := &iwTimed{r: r, model: map[iwKey]string{}, observed: math.MinInt64}
		n := 0
		write := func(round int, k iwKey, del bool) {
			n++
			var err error
			if del {
				err = s.Remove([]byte(k.K), k.Start, k.End)
			} else {
				v := iwValue(r, round, n)
				err = s.Put([]byte(k.K), k.Start, k.End, []byte(v))
				if k.End >= m.cutoff() {
					m.model[k] = v
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.End >= m.cutoff() {
				m.observed = max(m.observed, k.End)
				if del {
					delete(m.model, k)
				}
			}
		}
		session := func(end int64) iwKey {
			return iwKey{K: m.key(), Start: end - int64(r.IntN(2))*10_000, End: end}
		}
		for round := range iwRounds() {
			m.now += int64(r.IntN(20_000))
			for range r.IntN(12) {
				write(round, session(m.recent()), r.IntN(6) == 0)
			}
			m.expire(func(k iwKey) int64 { return k.End })
			if r.IntN(4) == 0 {
				if err := s.Flush(ctx); err != nil {
					t.Fatal(err)
				}
			}
			var (
				it      state.SessionIterator
				err     error
				what    string
				inRange func(iwKey) bool
				less    = func(a, b iwKey) bool {
					if a.End != b.End {
						return a.End < b.End
					}
					return a.Start < b.Start
				}
			)
			cut := m.cutoff()
			switch k := m.key(); r.IntN(3) {
			case 0:
				earliestEnd := m.recent() - int64(r.IntN(3))*10_000
				latestStart := earliestEnd + int64(r.IntN(10))*10_000
				it, err = s.FindSessions([]byte(k), earliestEnd, latestStart)
				what = fmt.Sprintf("FindSessions(%q, %d, %d)", k, earliestEnd, latestStart)
				inRange = func(e iwKey) bool {
					return e.K == k && e.End >= earliestEnd && e.Start <= latestStart && e.End >= cut
				}
			case 1:
				it, err = s.Fetch([]byte(k))
				what = fmt.Sprintf("Fetch(%q)", k)
				inRange = func(e iwKey) bool { return e.K == k && e.End >= cut }
			default:
				it, err = s.All()
				what = "All"
				inRange = func(e iwKey) bool { return e.End >= cut }
				byKey := less
				less = func(a, b iwKey) bool {
					if sa, sb := segOf(a.End), segOf(b.End); sa != sb {
						return sa < sb
					}
					if a.K != b.K {
						return a.K < b.K
					}
					return byKey(a, b)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			open.it = it
			what = fmt.Sprintf("round %d (seed %d): %s", round, seed, what)
			c := newIWCheck(t, what, m.model, inRange, less)
			stopAt := math.MaxInt
			if r.IntN(8) == 0 {
				stopAt = r.IntN(6)
			}
			for c.n < stopAt && it.Next() {
				cur := iwKey{K: string(it.Key()), Start: it.Start(), End: it.End()}
				c.saw(cur, it.Value())
				for range r.IntN(4) {
					k := session(min(m.recent(), m.observed))
					switch x := r.IntN(20); {
					case x < 3:
						k = cur
					case x < 9:
						k.K = cur.K
					case x < 11:
						if err := s.Flush(ctx); err != nil {
							t.Fatal(err)
						}
						continue
					}
					c.touched[k] = true
					write(round, k, r.IntN(4) == 0)
				}
			}
			open.it = nil
			if err := it.Close(); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if stopAt == math.MaxInt {
				c.finish()
			}
		}
	})
}
