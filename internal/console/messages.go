package console

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/weir-dev/weir/internal/msgpackcheck"
)

// Message browser bounds: a page never holds more than maxMessages
// records, nor scans more than maxScanned (a key filter that matches
// nothing stops there and says where to go on from), nor waits longer than
// the request timeout.
const (
	defaultMessages = 50
	maxMessages     = 500
	maxScanned      = 100_000
	idleWait        = 2 * time.Second
)

// Value renderings.
const (
	FormatAuto    = "auto"
	FormatJSON    = "json"
	FormatMsgpack = "msgpack"
	FormatText    = "text"
	FormatHex     = "hex"
)

// MessagesQuery is what /api/topics/{topic}/messages takes, as URL
// parameters: partition (default all), offset (default 0: each
// partition's start, clamped into its log) or time (RFC 3339 or Unix
// milliseconds: the first record at or after it; not both) or resume (a
// previous answer's Next as "p:o,p:o": go on from there, in those
// partitions only), key (only records whose key contains it), limit
// (default 50, at most 500), format (auto, json, msgpack, text, hex;
// default auto).
type MessagesQuery struct {
	Partition int32 // -1: all
	Offset    int64
	TimeMs    int64 // -1: none
	// Resume, when not nil, is where each partition to read starts.
	Resume map[int32]int64
	Key    string
	Limit  int
	Format string
}

// Messages is the answer: the records found, in partition then offset
// order, and where each partition's scan stopped (Next), to go on from.
type Messages struct {
	Messages []Message `json:"messages"`
	// Next maps each partition read to the offset after the last record
	// scanned.
	Next map[int32]int64 `json:"next"`
	// Scanned counts the records read, matched or not.
	Scanned int `json:"scanned"`
	// Truncated is true when the scan stopped at a bound (limit,
	// maxScanned or the time allowed) before every partition's end.
	Truncated bool `json:"truncated"`
	// Idle is true when no record came for idleWait before the ranges'
	// ends: what is left of them holds no record to show (compacted
	// away, transaction markers) or the brokers are slow.
	Idle bool `json:"idle,omitempty"`
}

// Message is one record, rendered.
type Message struct {
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Timestamp time.Time `json:"timestamp"`
	Key       Rendered  `json:"key"`
	Value     Rendered  `json:"value"`
	Headers   []Header  `json:"headers,omitempty"`
}

// Header is a record header, its value rendered as text or hex.
type Header struct {
	Key   string   `json:"key"`
	Value Rendered `json:"value"`
}

// Rendered is bytes shown as Format says; Null for a null key or value.
// Text holds at most maxRendered bytes; Truncated says it was cut.
type Rendered struct {
	Format    string `json:"format"`
	Text      string `json:"text"`
	Null      bool   `json:"null,omitempty"`
	Bytes     int    `json:"bytes"`
	Truncated bool   `json:"truncated,omitempty"`
}

// maxRendered bounds a rendered key, value or header, so that a page of
// large records stays a page a browser draws at once.
const maxRendered = 16 << 10

func parseMessagesQuery(r *http.Request) (MessagesQuery, error) {
	q := MessagesQuery{Partition: -1, TimeMs: -1, Limit: defaultMessages, Format: FormatAuto}
	v := r.URL.Query()
	if s := v.Get("partition"); s != "" && s != "all" {
		p, err := strconv.ParseInt(s, 10, 32)
		if err != nil || p < 0 {
			return q, badRequest("partition %q: want a partition number or \"all\"", s)
		}
		q.Partition = int32(p)
	}
	if s := v.Get("offset"); s != "" {
		o, err := strconv.ParseInt(s, 10, 64)
		if err != nil || o < 0 {
			return q, badRequest("offset %q: want an offset >= 0", s)
		}
		q.Offset = o
	}
	if s := v.Get("time"); s != "" {
		if v.Get("offset") != "" {
			return q, badRequest("give offset or time, not both")
		}
		ms, err := parseTime(s)
		if err != nil {
			return q, err
		}
		q.TimeMs = ms
	}
	if s := v.Get("resume"); s != "" {
		if v.Get("offset") != "" || v.Get("time") != "" {
			return q, badRequest("give resume alone, without offset or time")
		}
		q.Resume = map[int32]int64{}
		for _, po := range strings.Split(s, ",") {
			ps, os, ok := strings.Cut(po, ":")
			p, err1 := strconv.ParseInt(ps, 10, 32)
			o, err2 := strconv.ParseInt(os, 10, 64)
			if !ok || err1 != nil || err2 != nil || p < 0 || o < 0 {
				return q, badRequest("resume %q: want partition:offset pairs separated by commas", s)
			}
			q.Resume[int32(p)] = o
		}
	}
	q.Key = v.Get("key")
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxMessages {
			return q, badRequest("limit %q: want 1 to %d", s, maxMessages)
		}
		q.Limit = n
	}
	if s := v.Get("format"); s != "" {
		switch s {
		case FormatAuto, FormatJSON, FormatMsgpack, FormatText, FormatHex:
			q.Format = s
		default:
			return q, badRequest("format %q: want auto, json, msgpack, text or hex", s)
		}
	}
	return q, nil
}

// parseTime accepts RFC 3339, a UTC time without zone (as a datetime-local
// input sends it), or Unix milliseconds.
func parseTime(s string) (int64, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ms, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixMilli(), nil
		}
	}
	return 0, badRequest("time %q: want RFC 3339 (2006-01-02T15:04:05Z), 2006-01-02T15:04 (UTC) or Unix milliseconds", s)
}

func (s *Server) messages(ctx context.Context, r *http.Request) (any, error) {
	topic := r.PathValue("topic")
	q, err := parseMessagesQuery(r)
	if err != nil {
		return nil, err
	}
	starts, err := s.adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("console: start offsets of %q: %w", topic, err)
	}
	ends, err := s.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("console: end offsets of %q: %w", topic, err)
	}
	if len(starts[topic]) == 0 {
		return nil, notFound("topic %q does not exist", topic)
	}
	if q.Partition >= 0 {
		if _, ok := starts.Lookup(topic, q.Partition); !ok {
			return nil, notFound("topic %q has no partition %d", topic, q.Partition)
		}
	}
	// from and end bound each partition's scan: [from, end).
	from, end := map[int32]int64{}, map[int32]int64{}
	var at map[int32]int64
	if q.TimeMs >= 0 {
		after, err := s.adm.ListOffsetsAfterMilli(ctx, q.TimeMs, topic)
		if err != nil {
			return nil, fmt.Errorf("console: offsets after %d ms: %w", q.TimeMs, err)
		}
		at = map[int32]int64{}
		after.Each(func(o kadm.ListedOffset) {
			if o.Err == nil && o.Offset >= 0 {
				at[o.Partition] = o.Offset
			}
		})
	}
	for p, st := range starts[topic] {
		if q.Partition >= 0 && p != q.Partition {
			continue
		}
		en, ok := ends.Lookup(topic, p)
		if st.Err != nil || !ok || en.Err != nil {
			continue
		}
		f := max(q.Offset, st.Offset)
		if q.Resume != nil {
			o, ok := q.Resume[p]
			if !ok {
				continue
			}
			f = max(o, st.Offset)
		}
		if at != nil {
			f = en.Offset
			if o, ok := at[p]; ok {
				f = max(o, st.Offset)
			}
		}
		f = min(f, en.Offset)
		from[p], end[p] = f, en.Offset
	}
	out := Messages{Messages: []Message{}, Next: map[int32]int64{}}
	offsets := map[string]map[int32]kgo.Offset{topic: {}}
	for p, f := range from {
		out.Next[p] = f
		if f < end[p] {
			offsets[topic][p] = kgo.NewOffset().At(f)
		}
	}
	if len(offsets[topic]) == 0 {
		return out, nil
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.opts.Brokers...), kgo.ClientID("weir-console"),
		kgo.ConsumePartitions(offsets), kgo.FetchMaxWait(200 * time.Millisecond)}, s.opts.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	defer cl.Close()
	// Each partition is read to its end as listed above; matches are kept
	// per partition, at most Limit each, then merged.
	byPart := map[int32][]Message{}
	done := func() bool {
		for p, n := range out.Next {
			if n < end[p] && len(byPart[p]) < q.Limit {
				return false
			}
		}
		return true
	}
	pctx, cancel := context.WithTimeout(ctx, max(s.opts.RequestTimeout-time.Second, time.Second))
	defer cancel()
	for polls := 0; !done() && out.Scanned < maxScanned; polls++ {
		// NB: the records of a range may end before its end offset
		// (compacted away, or transaction markers): a poll that brings
		// nothing for idleWait ends the read rather than waiting for
		// records that will not come. The first poll, which connects,
		// waits longer.
		wait := idleWait
		if polls == 0 {
			wait = 3 * idleWait
		}
		ictx, icancel := context.WithTimeout(pctx, wait)
		fs := cl.PollFetches(ictx)
		icancel()
		if pctx.Err() != nil {
			break
		}
		if ictx.Err() != nil && fs.NumRecords() == 0 {
			out.Idle = true
			break
		}
		fs.EachRecord(func(rec *kgo.Record) {
			p := rec.Partition
			if rec.Offset >= end[p] || len(byPart[p]) >= q.Limit {
				return
			}
			out.Scanned++
			out.Next[p] = rec.Offset + 1
			if q.Key != "" && !bytes.Contains(rec.Key, []byte(q.Key)) {
				return
			}
			byPart[p] = append(byPart[p], renderRecord(rec, q.Format))
		})
	}
	for p := range out.Next {
		if out.Next[p] < end[p] {
			out.Truncated = true
		}
		out.Messages = append(out.Messages, byPart[p]...)
	}
	slices.SortFunc(out.Messages, func(a, b Message) int {
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(a.Offset - b.Offset)
	})
	if len(out.Messages) > q.Limit {
		// The records cut are read again by a resume: each partition's
		// Next goes back to its first record cut.
		for _, m := range slices.Backward(out.Messages[q.Limit:]) {
			out.Next[m.Partition] = m.Offset
		}
		out.Messages = out.Messages[:q.Limit]
		out.Truncated = true
	}
	return out, nil
}

func renderRecord(rec *kgo.Record, format string) Message {
	m := Message{Partition: rec.Partition, Offset: rec.Offset, Timestamp: rec.Timestamp.UTC(),
		Key: Render(rec.Key, format), Value: Render(rec.Value, format)}
	for _, h := range rec.Headers {
		m.Headers = append(m.Headers, Header{Key: h.Key, Value: Render(h.Value, FormatAuto)})
	}
	return m
}

// Render shows b as format says. Auto picks the first that fits of JSON,
// text (valid UTF-8 without control characters other than whitespace),
// msgpack (one value using every byte) and hex. A forced format that does
// not fit b falls back to hex, saying so in Format.
func Render(b []byte, format string) Rendered {
	if b == nil {
		return Rendered{Format: format, Null: true}
	}
	r := Rendered{Bytes: len(b)}
	try := []string{format}
	if format == FormatAuto {
		try = []string{FormatJSON, FormatText, FormatMsgpack}
	}
	for _, f := range try {
		if text, ok := renderAs(b, f); ok {
			r.Format, r.Text = f, text
			return r.cut()
		}
	}
	r.Format, r.Text = FormatHex, hex.EncodeToString(b[:min(len(b), maxRendered/2+1)])
	return r.cut()
}

// cut bounds Text to maxRendered bytes, on a character boundary.
func (r Rendered) cut() Rendered {
	if len(r.Text) <= maxRendered {
		return r
	}
	n := maxRendered
	for n > 0 && !utf8.RuneStart(r.Text[n]) {
		n--
	}
	r.Text, r.Truncated = r.Text[:n], true
	return r
}

func renderAs(b []byte, format string) (string, bool) {
	switch format {
	case FormatJSON:
		if len(b) == 0 || !json.Valid(b) {
			return "", false
		}
		var out bytes.Buffer
		if err := json.Indent(&out, b, "", "  "); err != nil {
			return "", false
		}
		return out.String(), true
	case FormatText:
		if !utf8.Valid(b) || strings.IndexFunc(string(b), func(r rune) bool {
			return unicode.IsControl(r) && !unicode.IsSpace(r)
		}) >= 0 {
			return "", false
		}
		return string(b), true
	case FormatMsgpack:
		if len(b) == 0 || !msgpackWellFormed(b) {
			return "", false
		}
		v, ok := decodeMsgpack(b)
		if !ok {
			return "", false
		}
		j, err := json.MarshalIndent(jsonable(v), "", "  ")
		if err != nil {
			return "", false
		}
		return string(j), true
	case FormatHex:
		return hex.EncodeToString(b[:min(len(b), maxRendered/2+1)]), true
	}
	return "", false
}

// decodeMsgpack decodes one well-formed msgpack value using all of b.
// Maps decode to map[string]any, their keys printed, whatever their type
// (an array key would not hash). A panic of the decoder on bytes it did
// not expect makes the value not msgpack, not a crash of the console.
func decodeMsgpack(b []byte) (v any, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			v, ok = nil, false
		}
	}()
	rd := bytes.NewReader(b)
	dec := msgpack.NewDecoder(rd)
	dec.SetMapDecoder(func(d *msgpack.Decoder) (any, error) {
		n, err := d.DecodeMapLen()
		if err != nil || n < 0 {
			return nil, err
		}
		m := make(map[string]any, n)
		for range n {
			k, err := d.DecodeInterface()
			if err != nil {
				return nil, err
			}
			e, err := d.DecodeInterface()
			if err != nil {
				return nil, err
			}
			m[fmt.Sprint(k)] = e
		}
		return m, nil
	})
	v, err := dec.DecodeInterface()
	return v, err == nil && rd.Len() == 0
}

// jsonable turns a decoded msgpack value into one encoding/json takes:
// maps with non-string keys get their keys printed.
func jsonable(v any) any {
	switch x := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case map[string]any:
		for k, e := range x {
			x[k] = jsonable(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = jsonable(e)
		}
		return x
	case []byte:
		return hex.EncodeToString(x)
	}
	return v
}

// msgpackWellFormed reports whether b is one well-formed msgpack value
// (msgpackcheck.Check), safe to hand to the decoder.
func msgpackWellFormed(b []byte) bool { return msgpackcheck.Check(b) == nil }
