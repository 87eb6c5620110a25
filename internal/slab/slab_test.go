package slab_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/internal/slab"
	"github.com/weir-dev/weir/serde"
)

// Carved values keep their bytes while later ones are carved, including
// values larger than a slab and values from serdes without Appender.
func TestCarvedValuesStayIntact(t *testing.T) {
	var sl slab.Slab
	var got [][]byte
	var want []string
	for i := 0; i < 5000; i++ {
		v := fmt.Sprintf("value-%d", i)
		if i%997 == 0 {
			v = strings.Repeat("x", slab.Size+i) // larger than a slab
		}
		b, err := slab.Append(&sl, serde.String(), "t", v)
		if err != nil {
			t.Fatal(err)
		}
		if cap(b) != len(b) {
			t.Fatalf("value %d: cap %d > len %d: an append would overwrite the next value", i, cap(b), len(b))
		}
		got = append(got, b)
		want = append(want, v)
	}
	j, err := slab.Append(&sl, serde.JSON[int](), "t", 42)
	if err != nil || !bytes.Equal(j, []byte("42")) {
		t.Fatalf("JSON through a slab = %q, %v", j, err)
	}
	strs := make([]string, len(got))
	for i, b := range got {
		strs[i] = string(b)
	}
	if d := cmp.Diff(want, strs); d != "" {
		t.Fatalf("carved values changed (-want +got):\n%s", d)
	}
}

func BenchmarkAppend(b *testing.B) {
	var sl slab.Slab
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := slab.Append(&sl, serde.String(), "t", "customer-1234"); err != nil {
			b.Fatal(err)
		}
	}
}
