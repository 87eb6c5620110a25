package memstore

import (
	"bytes"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Random operations on the stores and on trivial models, compared.
func TestKeyValueAgainstModel(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	s := NewKeyValue("kv")
	model := map[string]string{}
	for range 3000 {
		k := []byte{byte('a' + rng.IntN(20))}
		switch rng.IntN(4) {
		case 0, 1:
			v := []byte{byte(rng.IntN(256))}
			if err := s.Put(k, v); err != nil {
				t.Fatal(err)
			}
			model[string(k)] = string(v)
		case 2:
			_ = s.Delete(k)
			delete(model, string(k))
		case 3:
			got, _ := s.Get(k)
			want, ok := model[string(k)]
			if ok != (got != nil) || ok && string(got) != want {
				t.Fatalf("Get(%q) = %q, model %q %v", k, got, want, ok)
			}
		}
	}
	it, _ := s.Range([]byte("c"), []byte("m"), false)
	var got []string
	for it.Next() {
		got = append(got, string(it.Key()))
	}
	var want []string
	for k := range model {
		if k >= "c" && k < "m" {
			want = append(want, k)
		}
	}
	sort.Strings(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Range (-want +got):\n%s", diff)
	}
}

func TestWindowAgainstModel(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	const retention = 50
	s := NewWindow("w", retention*time.Millisecond)
	type wk struct {
		k     string
		start int64
	}
	model := map[wk][]byte{}
	observed := int64(-1 << 62)
	for range 3000 {
		k := string(rune('a' + rng.IntN(5)))
		start := int64(rng.IntN(300))
		v := []byte{byte(rng.IntN(256))}
		if rng.IntN(5) == 0 {
			v = nil
		}
		if err := s.Put([]byte(k), start, v); err != nil {
			t.Fatal(err)
		}
		observed = max(observed, start)
		if start >= observed-retention {
			if v == nil {
				delete(model, wk{k, start})
			} else {
				model[wk{k, start}] = v
			}
		}
		// Fetch one key's live windows and compare.
		q := string(rune('a' + rng.IntN(5)))
		it, _ := s.Fetch([]byte(q), 0, 1000, false)
		var got, want []wk
		for it.Next() {
			got = append(got, wk{string(it.Key()), it.WindowStart()})
			if !bytes.Equal(it.Value(), model[wk{q, it.WindowStart()}]) {
				t.Fatalf("value of %s@%d differs", q, it.WindowStart())
			}
		}
		for m := range model {
			if m.k == q && m.start >= observed-retention {
				want = append(want, m)
			}
		}
		sort.Slice(want, func(i, j int) bool { return want[i].start < want[j].start })
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(wk{})); diff != "" {
			t.Fatalf("Fetch(%s) (-want +got):\n%s", q, diff)
		}
	}
}
