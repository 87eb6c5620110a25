package broker

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/batch"
)

// timedBatch encodes an uncompressed RecordBatch v2 of one record per
// timestamp; the header's first timestamp is the first one and its max
// timestamp the largest.
func timedBatch(ts ...int64) []byte {
	var recs []byte
	maxTS := ts[0]
	for i, t := range ts {
		r := kmsg.Record{TimestampDelta64: t - ts[0], OffsetDelta: int32(i), Value: []byte("v")}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
		maxTS = max(maxTS, t)
	}
	rb := kmsg.RecordBatch{
		Magic: 2, LastOffsetDelta: int32(len(ts) - 1), FirstTimestamp: ts[0], MaxTimestamp: maxTS,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(len(ts)), Records: recs,
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

func TestTimestampDifferenceMaxMS(t *testing.T) {
	b := startBroker(t, Options{})
	ctx := testCtx(t)
	c := newClient(t, b)
	adm := kadm.NewClient(c)
	limit := "60000"
	for topic, cfg := range map[string]map[string]*string{
		"checked":   {"message.timestamp.difference.max.ms": &limit},
		"unchecked": nil,
		"appended":  {"message.timestamp.difference.max.ms": &limit, "message.timestamp.type": kadm.StringPtr("LogAppendTime")},
	} {
		if _, err := adm.CreateTopic(ctx, 1, 1, cfg, topic); err != nil {
			t.Fatalf("create %s: %v", topic, err)
		}
	}
	now := time.Now().UnixMilli()
	hour := time.Hour.Milliseconds()
	type result struct{ Topic, Case, Code string }
	var got, want []result
	for _, tc := range []struct {
		name string
		ts   []int64
		bad  bool // refused on the checked topic
	}{
		{"now", []int64{now, now + 10}, false},
		{"first an hour ago", []int64{now - hour, now}, true},
		{"max an hour ahead", []int64{now, now + hour}, true},
		{"first an hour ahead", []int64{now + hour}, true},
		{"within a minute", []int64{now - 30_000, now + 30_000}, false},
		{"no timestamp", []int64{-1}, false},
	} {
		for _, topic := range []string{"checked", "unchecked", "appended"} {
			code := "NONE"
			if c := produceRaw(t, c, topic, timedBatch(tc.ts...)); c != 0 {
				code = kerr.ErrorForCode(c).Error()
			}
			got = append(got, result{topic, tc.name, code})
			w := "NONE"
			if tc.bad && topic == "checked" {
				w = kerr.InvalidTimestamp.Error()
			}
			want = append(want, result{topic, tc.name, w})
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("produce results (-want +got):\n%s", diff)
	}

	// A kgo producer whose record is a day old gets INVALID_TIMESTAMP.
	err := c.ProduceSync(ctx, &kgo.Record{Topic: "checked", Value: []byte("old"), Timestamp: time.Now().Add(-24 * time.Hour)}).FirstErr()
	if !errors.Is(err, kerr.InvalidTimestamp) {
		t.Errorf("kgo produce of a day-old record: %v, want INVALID_TIMESTAMP", err)
	}
}

func TestCheckTimestampsBounds(t *testing.T) {
	const now = 1_700_000_000_000
	for _, tc := range []struct {
		first, max, diff int64
		ok               bool
	}{
		{now, now, 0, true},
		{now - 1, now, 0, false},
		{now - 5, now + 5, 5, true},
		{now - 6, now, 5, false},
		{now, now + 6, 5, false},
		{math.MinInt64, now, 5, false},
		{now, math.MaxInt64, 5, false},
		{math.MinInt64, math.MaxInt64, math.MaxInt64 - 1, false},
		{0, math.MaxInt64, math.MaxInt64 - 1, true},
		{-1, -1, 0, true},
	} {
		err := checkTimestamps(batch.Header{FirstTimestamp: tc.first, MaxTimestamp: tc.max}, now, tc.diff)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, kerr.InvalidTimestamp)) {
			t.Errorf("first %d max %d diff %d: err %v, want ok=%v", tc.first, tc.max, tc.diff, err, tc.ok)
		}
	}
}
