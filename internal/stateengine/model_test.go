package stateengine_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/state/statetest"
)

// Model-based tests: random operations on each implementation and on a
// plain map, compared after every read. Reopen-without-flush reverts the
// model to its last flushed state (unflushed writes are dropped, as the
// producer of a crashed process would drop its unsent changelog records).

func randKey(r *rand.Rand) []byte {
	n := 1 + r.IntN(3)
	b := make([]byte, n)
	for i := range b {
		b[i] = "ab\x00\xff"[r.IntN(4)]
	}
	return b
}

func TestModelKeyValue(t *testing.T) {
	seed := testSeed(t)
	ops := 3000
	if testing.Short() {
		ops = 600
	}
	forEachImpl(t, func(t *testing.T, im impl) {
		r := rand.New(rand.NewPCG(seed, 42))
		ctx := context.Background()
		e := testEngine(t, nil)
		cl := statetest.NewChangelog("kv", 0)
		s := im.kv(t, e, cl)
		model, flushed := map[string]string{}, map[string]string{}
		copyMap := func(m map[string]string) map[string]string {
			c := make(map[string]string, len(m))
			for k, v := range m {
				c[k] = v
			}
			return c
		}
		for op := range ops {
			k := randKey(r)
			switch x := r.IntN(100); {
			case x < 35:
				v := fmt.Sprintf("v%d", op)
				put(t, s, string(k), v)
				model[string(k)] = v
			case x < 45:
				if err := s.Delete(k); err != nil {
					t.Fatal(err)
				}
				delete(model, string(k))
			case x < 50:
				old, err := s.PutIfAbsent(k, []byte("pia"))
				if err != nil {
					t.Fatal(err)
				}
				mv, ok := model[string(k)]
				if ok != (old != nil) || (ok && mv != string(old)) {
					t.Fatalf("op %d: PutIfAbsent(%q) = %q, model has %q (%v)", op, k, old, mv, ok)
				}
				if !ok {
					model[string(k)] = "pia"
				}
			case x < 70:
				got, err := s.Get(k)
				if err != nil {
					t.Fatal(err)
				}
				mv, ok := model[string(k)]
				if ok != (got != nil) || (ok && mv != string(got)) {
					t.Fatalf("op %d: Get(%q) = %q, model %q (%v)", op, k, got, mv, ok)
				}
			case x < 85:
				from, to := randKey(r), randKey(r)
				if r.IntN(4) == 0 {
					from = nil
				}
				if r.IntN(4) == 0 {
					to = nil
				}
				rev := r.IntN(2) == 0
				var want []kvPair
				for mk, mv := range model {
					if (from == nil || mk >= string(from)) && (to == nil || mk < string(to)) {
						want = append(want, kvPair{mk, mv})
					}
				}
				sort.Slice(want, func(i, j int) bool { return (want[i].K < want[j].K) != rev })
				got := drainKV(t)(s.Range(from, to, rev))
				if d := cmp.Diff(want, got); d != "" {
					t.Fatalf("op %d: Range(%q, %q, %v) (-model +store):\n%s", op, from, to, rev, d)
				}
			case x < 90:
				p := randKey(r)[:1]
				var want []kvPair
				for mk, mv := range model {
					if bytes.HasPrefix([]byte(mk), p) {
						want = append(want, kvPair{mk, mv})
					}
				}
				sort.Slice(want, func(i, j int) bool { return want[i].K < want[j].K })
				if d := cmp.Diff(want, drainKV(t)(s.Prefix(p, false))); d != "" {
					t.Fatalf("op %d: Prefix(%q) (-model +store):\n%s", op, p, d)
				}
			case x < 96:
				if err := s.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				flushed = copyMap(model)
			default:
				// Reopen: after a flush (clean) or not (unclean).
				if r.IntN(2) == 0 {
					if err := s.Flush(ctx); err != nil {
						t.Fatal(err)
					}
					flushed = copyMap(model)
				} else {
					cl.DropPending()
					model = copyMap(flushed)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				s = im.kv(t, e, cl)
			}
		}
	})
}

type wkey struct {
	k     string
	start int64
}

func TestModelWindow(t *testing.T) {
	seed := testSeed(t)
	ops := 3000
	if testing.Short() {
		ops = 600
	}
	const ret = 4 * 60_000 // segments of 2 minutes
	const seg = 2 * 60_000
	forEachImpl(t, func(t *testing.T, im impl) {
		r := rand.New(rand.NewPCG(seed, 7))
		ctx := context.Background()
		e := testEngine(t, nil)
		cl := statetest.NewChangelog("win", 0)
		s := im.window(t, e, cl, ret)
		model, flushed := map[wkey]string{}, map[wkey]string{}
		observed, flushedObs := int64(math.MinInt64), int64(math.MinInt64)
		now := int64(0)
		cutoff := func() int64 {
			if observed == math.MinInt64 {
				return math.MinInt64
			}
			return observed - ret
		}
		live := func() []winEntry {
			var out []winEntry
			for wk, v := range model {
				if wk.start >= cutoff() {
					out = append(out, winEntry{wk.k, wk.start, v})
				}
			}
			return out
		}
		segOf := func(t int64) int64 {
			if t < 0 {
				return (t - seg + 1) / seg
			}
			return t / seg
		}
		copyM := func(m map[wkey]string) map[wkey]string {
			c := make(map[wkey]string, len(m))
			for k, v := range m {
				c[k] = v
			}
			return c
		}
		for op := range ops {
			now += int64(r.IntN(5000))
			k := string(randKey(r))
			start := now - int64(r.IntN(6*60_000))
			start -= start % 10_000
			switch x := r.IntN(100); {
			case x < 40:
				v := fmt.Sprintf("v%d", op)
				if r.IntN(8) == 0 {
					v = ""
				}
				wput(t, s, k, start, v)
				if start >= cutoff() {
					if v == "" {
						delete(model, wkey{k, start})
					} else {
						model[wkey{k, start}] = v
					}
					observed = max(observed, start)
				}
			case x < 55:
				got, err := s.Get([]byte(k), start)
				if err != nil {
					t.Fatal(err)
				}
				mv, ok := model[wkey{k, start}]
				ok = ok && start >= cutoff()
				if ok != (got != nil) || (ok && mv != string(got)) {
					t.Fatalf("op %d: Get(%q, %d) = %q, model %q (%v)", op, k, start, got, mv, ok)
				}
			case x < 75:
				from := start - int64(r.IntN(3*60_000))
				to := start + int64(r.IntN(3*60_000))
				rev := r.IntN(2) == 0
				var want []winEntry
				for _, w := range live() {
					if w.K == k && w.Start >= from && w.Start <= to {
						want = append(want, w)
					}
				}
				sort.Slice(want, func(i, j int) bool { return (want[i].Start < want[j].Start) != rev })
				if d := cmp.Diff(want, drainWin(t)(s.Fetch([]byte(k), from, to, rev))); d != "" {
					t.Fatalf("op %d: Fetch(%q, %d, %d, %v) (-model +store):\n%s", op, k, from, to, rev, d)
				}
			case x < 85:
				from := start - int64(r.IntN(3*60_000))
				to := start + int64(r.IntN(3*60_000))
				var want []winEntry
				for _, w := range live() {
					if w.Start >= from && w.Start <= to {
						want = append(want, w)
					}
				}
				sort.Slice(want, func(i, j int) bool {
					a, b := want[i], want[j]
					if sa, sb := segOf(a.Start), segOf(b.Start); sa != sb {
						return sa < sb
					}
					if a.K != b.K {
						return a.K < b.K
					}
					return a.Start < b.Start
				})
				if d := cmp.Diff(want, drainWin(t)(s.FetchAll(from, to, false))); d != "" {
					t.Fatalf("op %d: FetchAll(%d, %d) (-model +store):\n%s", op, from, to, d)
				}
			case x < 95:
				if err := s.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				flushed, flushedObs = copyM(model), observed
			default:
				if r.IntN(2) == 0 {
					if err := s.Flush(ctx); err != nil {
						t.Fatal(err)
					}
					flushed, flushedObs = copyM(model), observed
				} else {
					cl.DropPending()
					model, observed = copyM(flushed), flushedObs
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				s = im.window(t, e, cl, ret)
				if s.ObservedStreamTime() != observed {
					t.Fatalf("op %d: observed stream time %d after reopen, model %d", op, s.ObservedStreamTime(), observed)
				}
			}
		}
	})
}

type skey struct {
	k          string
	start, end int64
}

func TestModelSession(t *testing.T) {
	seed := testSeed(t)
	ops := 2000
	if testing.Short() {
		ops = 500
	}
	const ret = 4 * 60_000
	forEachImpl(t, func(t *testing.T, im impl) {
		r := rand.New(rand.NewPCG(seed, 9))
		ctx := context.Background()
		e := testEngine(t, nil)
		cl := statetest.NewChangelog("sess", 0)
		s := im.session(t, e, cl, ret)
		model, flushed := map[skey]string{}, map[skey]string{}
		observed, flushedObs := int64(math.MinInt64), int64(math.MinInt64)
		cutoff := func() int64 {
			if observed == math.MinInt64 {
				return math.MinInt64
			}
			return observed - ret
		}
		copyM := func(m map[skey]string) map[skey]string {
			c := make(map[skey]string, len(m))
			for k, v := range m {
				c[k] = v
			}
			return c
		}
		now := int64(0)
		for op := range ops {
			now += int64(r.IntN(3000))
			k := string(randKey(r)[:1])
			end := now - int64(r.IntN(5*60_000))
			start := end - int64(r.IntN(90_000))
			switch x := r.IntN(100); {
			case x < 35:
				v := fmt.Sprintf("v%d", op)
				sput(t, s, k, start, end, v)
				if end >= cutoff() {
					model[skey{k, start, end}] = v
					observed = max(observed, end)
				}
			case x < 45:
				// Remove one of the key's live sessions, or a random one.
				for sk := range model {
					if sk.k == k {
						start, end = sk.start, sk.end
						break
					}
				}
				if err := s.Remove([]byte(k), start, end); err != nil {
					t.Fatal(err)
				}
				if end >= cutoff() {
					delete(model, skey{k, start, end})
					observed = max(observed, end)
				}
			case x < 80:
				earliestEnd := now - int64(r.IntN(6*60_000))
				latestStart := earliestEnd + int64(r.IntN(3*60_000))
				var want []sessEntry
				for sk, v := range model {
					if sk.k == k && sk.end >= cutoff() && sk.end >= earliestEnd && sk.start <= latestStart {
						want = append(want, sessEntry{sk.k, sk.start, sk.end, v})
					}
				}
				sort.Slice(want, func(i, j int) bool {
					if want[i].End != want[j].End {
						return want[i].End < want[j].End
					}
					return want[i].Start < want[j].Start
				})
				if d := cmp.Diff(want, drainSess(t)(s.FindSessions([]byte(k), earliestEnd, latestStart))); d != "" {
					t.Fatalf("op %d: FindSessions(%q, %d, %d) (-model +store):\n%s", op, k, earliestEnd, latestStart, d)
				}
			case x < 95:
				if err := s.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				flushed, flushedObs = copyM(model), observed
			default:
				if r.IntN(2) == 0 {
					if err := s.Flush(ctx); err != nil {
						t.Fatal(err)
					}
					flushed, flushedObs = copyM(model), observed
				} else {
					cl.DropPending()
					model, observed = copyM(flushed), flushedObs
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				s = im.session(t, e, cl, ret)
			}
		}
	})
}
