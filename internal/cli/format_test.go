package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kgo"
)

func sampleRecord() *kgo.Record {
	return &kgo.Record{
		Topic: "orders", Partition: 2, Offset: 41,
		Timestamp: time.UnixMilli(1_700_000_000_123),
		Key:       []byte("order-123"),
		Value:     []byte(`{"total": 59.98}`),
		Headers:   []kgo.RecordHeader{{Key: "trace", Value: []byte("abc")}, {Key: "n", Value: nil}},
	}
}

func TestFormatTemplate(t *testing.T) {
	tests := []struct {
		format, want string
	}{
		{`%k\t%v\n`, "order-123\t{\"total\": 59.98}\n"},
		{`%t/%p@%o %T`, "orders/2@41 1700000000123"},
		{`%K %S [%h] 100%%\\`, "9 16 [trace=abc,n=] 100%\\"},
		{`plain`, "plain"},
		{`\0\r`, "\x00\r"},
	}
	for _, tt := range tests {
		f, err := ParseFormat(tt.format)
		if err != nil {
			t.Fatalf("%q: %v", tt.format, err)
		}
		if d := cmp.Diff(tt.want, string(f.AppendRecord(nil, sampleRecord()))); d != "" {
			t.Errorf("%q (-want +got):\n%s", tt.format, d)
		}
	}
	null := &kgo.Record{Topic: "t"}
	f, _ := ParseFormat(`[%k][%v] %K %S`)
	if d := cmp.Diff("[][] -1 -1", string(f.AppendRecord(nil, null))); d != "" {
		t.Errorf("null key/value (-want +got):\n%s", d)
	}
	for _, bad := range []string{`%x`, `%`, `\q`, `abc\`} {
		if _, err := ParseFormat(bad); err == nil {
			t.Errorf("ParseFormat(%q) succeeded", bad)
		}
	}
}

func TestFormatHuman(t *testing.T) {
	got := string(FormatHuman{}.AppendRecord(nil, sampleRecord()))
	want := "p=2 o=41 ts=2023-11-14T22:13:20.123Z key=order-123 h.trace=abc h.n=<null> value={\"total\": 59.98}\n"
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	r := &kgo.Record{Timestamp: time.UnixMilli(0), Key: []byte("a key"), Value: []byte{0xff, 0, 'x'}}
	got = string(FormatHuman{}.AppendRecord(nil, r))
	want = "p=0 o=0 ts=1970-01-01T00:00:00.000Z key=\"a key\" value=\"\\xff\\x00x\"\n"
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("quoted (-want +got):\n%s", d)
	}
	r = &kgo.Record{Timestamp: time.UnixMilli(0), Key: []byte{}, Value: nil}
	if got := string(FormatHuman{}.AppendRecord(nil, r)); !strings.HasSuffix(got, `key="" value=<null>`+"\n") {
		t.Fatalf("empty/null: %q", got)
	}
}

// TestFormatJSONRoundTrip: every byte string, UTF-8 or not, null or empty,
// comes back exactly from the JSON form.
func TestFormatJSONRoundTrip(t *testing.T) {
	for _, b := range [][]byte{nil, {}, []byte("plain"), []byte("ünïcode"), {0xff, 0xfe, 0}, []byte(`"quoted"`)} {
		r := sampleRecord()
		r.Key, r.Value = b, b
		r.Headers = []kgo.RecordHeader{{Key: "h", Value: b}}
		line := FormatJSON{}.AppendRecord(nil, r)
		if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
			t.Fatalf("not one line: %q", line)
		}
		var jr JSONRecord
		if err := json.Unmarshal(line, &jr); err != nil {
			t.Fatal(err)
		}
		key, err1 := FromJSON(jr.Key, jr.KeyBase64)
		val, err2 := FromJSON(jr.Value, jr.ValueBase64)
		hv, err3 := FromJSON(jr.Headers[0].Value, jr.Headers[0].ValueBase64)
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatal(err1, err2, err3)
		}
		for _, got := range [][]byte{key, val, hv} {
			if (got == nil) != (b == nil) || !bytes.Equal(got, b) {
				t.Fatalf("%q came back as %q", b, got)
			}
		}
		if jr.Topic != "orders" || jr.Partition != 2 || jr.Offset != 41 || jr.Timestamp != 1_700_000_000_123 {
			t.Fatalf("metadata %+v", jr)
		}
	}
}

func TestParseStart(t *testing.T) {
	now := func() time.Time { return time.UnixMilli(1_000_000) }
	tests := []struct {
		in   string
		want Start
	}{
		{"beginning", Start{Kind: StartBeginning}},
		{"", Start{Kind: StartBeginning}},
		{"end", Start{Kind: StartEnd}},
		{"latest", Start{Kind: StartEnd}},
		{"42", Start{Kind: StartOffset, N: 42}},
		{"offset:0", Start{Kind: StartOffset, N: 0}},
		{"-10", Start{Kind: StartFromEnd, N: 10}},
		{"ts:1700000000000", Start{Kind: StartTimestamp, Millis: 1_700_000_000_000}},
		{"timestamp:2023-11-14T22:13:20Z", Start{Kind: StartTimestamp, Millis: 1_700_000_000_000}},
		{"2023-11-14T22:13:20.5Z", Start{Kind: StartTimestamp, Millis: 1_700_000_000_500}},
		{"ts:-10s", Start{Kind: StartTimestamp, Millis: 990_000}},
	}
	for _, tt := range tests {
		got, err := ParseStart(tt.in, now)
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("%q (-want +got):\n%s", tt.in, d)
		}
	}
	for _, bad := range []string{"yesterday", "ts:soon", "offset:x", "1.5"} {
		if _, err := ParseStart(bad, now); err == nil {
			t.Errorf("ParseStart(%q) succeeded", bad)
		}
	}
}

func TestParseConfigs(t *testing.T) {
	got, err := ParseConfigs([]string{"retention.ms=1000", "cleanup.policy=compact,delete", "empty="})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"retention.ms": "1000", "cleanup.policy": "compact,delete", "empty": ""}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatal(d)
	}
	for _, bad := range []string{"noequals", "=v"} {
		if _, err := ParseConfigs([]string{bad}); err == nil {
			t.Errorf("ParseConfigs(%q) succeeded", bad)
		}
	}
}

// syncWriter records writes and reports each on wrote.
type syncWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func (w *syncWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(b)
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return n, err
}

// TestProgress drives the indicator with its own ticks and clock.
func TestProgress(t *testing.T) {
	out := &syncWriter{wrote: make(chan struct{}, 1)}
	var n atomic.Int64
	ticks := make(chan time.Time)
	var clock atomic.Int64 // Unix ms
	clock.Store(100_000)
	now := func() time.Time { return time.UnixMilli(clock.Load()) }
	p := StartProgress(out, "consumed", &n, ticks, now)
	n.Store(10)
	clock.Add(2000)
	ticks <- time.Time{}
	<-out.wrote // first redraw done
	n.Store(30)
	clock.Add(1000)
	p.Stop()
	p.Stop() // idempotent
	want := "\rconsumed 10 records (5/s)  \rconsumed 30 records (10/s)  \n"
	out.mu.Lock()
	got := out.buf.String()
	out.mu.Unlock()
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	if IsTerminal(&bytes.Buffer{}) || IsTerminal(nil) {
		t.Fatal("a buffer is not a terminal")
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{`\t`: "\t", `a\\b`: `a\b`, `::`: "::", `\n\r\0`: "\n\r\x00", "": ""} {
		got, err := Unescape(in)
		if err != nil || got != want {
			t.Errorf("Unescape(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`\`, `\x`} {
		if _, err := Unescape(bad); err == nil {
			t.Errorf("Unescape(%q) succeeded", bad)
		}
	}
}
