package app

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weir-dev/weir/streams"
)

func TestGlobalCheckpointRoundTrip(t *testing.T) {
	m := map[streams.TopicPartition]streams.Offset{
		{Topic: "customers", Partition: 0}: 17,
		{Topic: "customers", Partition: 2}: 0,
		{Topic: "a.b-c_d", Partition: 11}:  1 << 40,
	}
	file := filepath.Join(t.TempDir(), "global", "app-1.offsets")
	if err := writeGlobalCheckpoint(file, m); err != nil {
		t.Fatal(err)
	}
	got, err := readGlobalCheckpoint(file)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("(-wrote +read):\n%s", diff)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	want := "weir-global-offsets 1\na.b-c_d 11 1099511627776\ncustomers 0 17\ncustomers 2 0\n"
	if string(b) != want {
		t.Errorf("file:\n%s\nwant:\n%s", b, want)
	}
	if _, err := readGlobalCheckpoint(filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want os.ErrNotExist", err)
	}
}

func TestGlobalCheckpointRejects(t *testing.T) {
	for _, in := range []string{
		"",
		"weir-global-offsets 1",                             // no newline
		"weir-global-offsets 2\n",                           // version
		"weir-global-offsets 1\nt 0 1",                      // unterminated line
		"weir-global-offsets 1\nt 0\n",                      // missing field
		"weir-global-offsets 1\n 0 1\n",                     // empty topic
		"weir-global-offsets 1\nt -1 1\n",                   // negative partition
		"weir-global-offsets 1\nt 0 -1\n",                   // negative offset
		"weir-global-offsets 1\nt 0 1 2\n",                  // extra field
		"weir-global-offsets 1\nt 0 1\nt 0 2\n",             // duplicate
		"weir-global-offsets 1\nt 99999999999 1\n",          // partition overflow
		"weir-global-offsets 1\nt 0 99999999999999999999\n", // offset overflow
	} {
		if m, err := decodeGlobalCheckpoint([]byte(in)); !errors.Is(err, errBadGlobalCheckpoint) {
			t.Errorf("decode(%q) = %v, %v; want errBadGlobalCheckpoint", in, m, err)
		}
	}
}

// FuzzGlobalCheckpoint checks that whatever decodes holds valid entries
// and survives an encode/decode round trip unchanged.
func FuzzGlobalCheckpoint(f *testing.F) {
	f.Add([]byte("weir-global-offsets 1\ncustomers 0 17\ncustomers 2 0\n"))
	f.Add([]byte("weir-global-offsets 1\n"))
	f.Add([]byte("weir-global-offsets 1\nt 0 1\nt 0 2\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeGlobalCheckpoint(b)
		if err != nil {
			if !errors.Is(err, errBadGlobalCheckpoint) {
				t.Fatalf("error %v does not wrap errBadGlobalCheckpoint", err)
			}
			return
		}
		for tp, o := range m {
			if tp.Topic == "" || strings.ContainsAny(tp.Topic, " \n") || tp.Partition < 0 || o < 0 {
				t.Fatalf("decoded a bad entry %v: %d", tp, o)
			}
		}
		again, err := decodeGlobalCheckpoint(encodeGlobalCheckpoint(m))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if diff := cmp.Diff(m, again); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
