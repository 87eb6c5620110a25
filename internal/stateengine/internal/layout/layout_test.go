package layout

import (
	"bytes"
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTimeOrder(t *testing.T) {
	ts := []int64{math.MinInt64, -1 << 40, -2, -1, 0, 1, 2, 1 << 40, math.MaxInt64}
	for i := 1; i < len(ts); i++ {
		a, b := AppendTime(nil, ts[i-1]), AppendTime(nil, ts[i])
		if bytes.Compare(a, b) >= 0 {
			t.Fatalf("encoding of %d does not sort before %d", ts[i-1], ts[i])
		}
		if got := Time(b); got != ts[i] {
			t.Fatalf("Time(AppendTime(%d)) = %d", ts[i], got)
		}
	}
}

func TestWindowKeysSortByKeyThenStart(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	type wk struct {
		key   []byte
		start int64
	}
	var in []wk
	for range 500 {
		k := make([]byte, r.IntN(4))
		for i := range k {
			k[i] = []byte{0, 1, 0xFF, 'a'}[r.IntN(4)]
		}
		in = append(in, wk{k, r.Int64N(2000) - 1000})
	}
	enc := func(w wk) []byte { return AppendWindowKey(nil, 7, w.key, w.start) }
	byEnc := append([]wk(nil), in...)
	sort.SliceStable(byEnc, func(i, j int) bool { return bytes.Compare(enc(byEnc[i]), enc(byEnc[j])) < 0 })
	byVal := append([]wk(nil), in...)
	sort.SliceStable(byVal, func(i, j int) bool {
		if c := bytes.Compare(byVal[i].key, byVal[j].key); c != 0 {
			return c < 0
		}
		return byVal[i].start < byVal[j].start
	})
	if d := cmp.Diff(byVal, byEnc, cmp.AllowUnexported(wk{})); d != "" {
		t.Fatalf("encoded order differs from (key, start) order (-want +got):\n%s", d)
	}
}

func FuzzWindowKey(f *testing.F) {
	f.Add([]byte("k"), int64(5), int64(0))
	f.Add([]byte{0, 0xFF, 0, 1}, int64(-1), int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, key []byte, start, seg int64) {
		b := AppendWindowKey(nil, seg, key, start)
		s2, k2, st2, err := ParseWindowKey(nil, b)
		if err != nil {
			t.Fatalf("parse of own encoding: %v", err)
		}
		if s2 != seg || st2 != start || !bytes.Equal(k2, key) {
			t.Fatalf("round trip: got (%d, %q, %d) want (%d, %q, %d)", s2, k2, st2, seg, key, start)
		}
		// Any key sharing the escaped prefix sorts below EscapedEnd.
		pre := AppendEscaped(AppendTime(nil, seg), key)
		if bytes.Compare(b, EscapedEnd(pre)) >= 0 {
			t.Fatalf("key %x not below EscapedEnd %x", b, EscapedEnd(pre))
		}
	})
}

func FuzzParseWindowKey(f *testing.F) {
	f.Add(AppendWindowKey(nil, 1, []byte("abc"), 3))
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		seg, key, start, err := ParseWindowKey(nil, b)
		if err != nil {
			return
		}
		// Whatever parses re-encodes to the same bytes.
		if again := AppendWindowKey(nil, seg, key, start); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding %x gave %x", b, again)
		}
	})
}

func FuzzParseSessionKey(f *testing.F) {
	f.Add(AppendSessionKey(nil, 1, []byte("a\x00b"), 3, 9))
	f.Add([]byte{1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		seg, key, start, end, err := ParseSessionKey(nil, b)
		if err != nil {
			return
		}
		if again := AppendSessionKey(nil, seg, key, start, end); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding %x gave %x", b, again)
		}
	})
}

func FuzzChangelogKeys(f *testing.F) {
	f.Add([]byte("user"), int64(10), int64(20))
	f.Fuzz(func(t *testing.T, key []byte, start, end int64) {
		k, s, err := ParseWindowChangelogKey(AppendWindowChangelogKey(nil, key, start))
		if err != nil || s != start || !bytes.Equal(k, key) {
			t.Fatalf("window changelog key round trip: %q %d %v", k, s, err)
		}
		if start > end {
			start, end = end, start
		}
		k, s, e, err := ParseSessionChangelogKey(AppendSessionChangelogKey(nil, key, start, end))
		if err != nil || s != start || e != end || !bytes.Equal(k, key) {
			t.Fatalf("session changelog key round trip: %q %d %d %v", k, s, e, err)
		}
	})
}

func TestSegment(t *testing.T) {
	for _, c := range []struct{ t, iv, want int64 }{{0, 10, 0}, {9, 10, 0}, {10, 10, 1}, {-1, 10, -1}, {-10, 10, -1}, {-11, 10, -2}} {
		if got := Segment(c.t, c.iv); got != c.want {
			t.Errorf("Segment(%d, %d) = %d, want %d", c.t, c.iv, got, c.want)
		}
	}
}
