package cli

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// FuzzParseFormat: ParseFormat never panics; an accepted template renders
// any record; a template without % or \ renders as itself.
func FuzzParseFormat(f *testing.F) {
	for _, s := range []string{`%k\t%v\n`, `%t/%p@%o %T %K %S [%h] 100%%\\`, `plain`, `%`, `\`, `\q`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tmpl, err := ParseFormat(s)
		if err != nil {
			return
		}
		out := string(tmpl.AppendRecord(nil, sampleRecord()))
		if !strings.ContainsAny(s, `%\`) && out != s {
			t.Fatalf("literal template %q rendered %q", s, out)
		}
	})
}

// FuzzParseStart: ParseStart never panics, and what it accepts, written
// back in canonical form, parses to the same Start.
func FuzzParseStart(f *testing.F) {
	for _, s := range []string{"beginning", "end", "42", "-10", "offset:7", "ts:1700000000000", "timestamp:2023-11-14T22:13:20Z", "ts:-15m", "x"} {
		f.Add(s)
	}
	now := func() time.Time { return time.UnixMilli(1_700_000_000_000) }
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseStart(s, now)
		if err != nil {
			return
		}
		var canon string
		switch st.Kind {
		case StartBeginning:
			canon = "beginning"
		case StartEnd:
			canon = "end"
		case StartOffset:
			if st.N < 0 {
				t.Fatalf("%q: negative offset %d", s, st.N)
			}
			canon = strconv.FormatInt(st.N, 10)
		case StartFromEnd:
			if st.N < 0 {
				t.Fatalf("%q: negative count %d", s, st.N)
			}
			canon = "-" + strconv.FormatInt(st.N, 10)
		case StartTimestamp:
			canon = "ts:" + strconv.FormatInt(st.Millis, 10)
		default:
			t.Fatalf("%q: kind %d", s, st.Kind)
		}
		again, err := ParseStart(canon, now)
		if err != nil {
			t.Fatalf("%q -> %q: %v", s, canon, err)
		}
		if d := cmp.Diff(st, again); d != "" {
			t.Fatalf("%q -> %q (-first +again):\n%s", s, canon, d)
		}
	})
}
