package protocol

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchResponseForEncode builds a Fetch response of version v with
// partitions partitions of recordBytes record bytes each, every other one
// carrying aborted transactions.
func fetchResponseForEncode(tb testing.TB, v int16, partitions, recordBytes int) *kmsg.FetchResponse {
	tb.Helper()
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = v
	for ti := range 2 {
		t := kmsg.NewFetchResponseTopic()
		t.Topic = fmt.Sprintf("topic-%d-with-a-longer-name", ti)
		t.TopicID = [16]byte{byte(ti + 1)}
		for pi := range partitions / 2 {
			p := kmsg.NewFetchResponseTopicPartition()
			p.Partition = int32(pi)
			p.HighWatermark = 1 << 40
			p.LastStableOffset = 1 << 40
			p.LogStartOffset = 7
			if pi%2 == 1 {
				for a := range 3 {
					at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
					at.ProducerID = int64(a)
					at.FirstOffset = int64(a * 10)
					p.AbortedTransactions = append(p.AbortedTransactions, at)
				}
			}
			p.RecordBatches = bytes.Repeat([]byte{byte(pi)}, recordBytes)
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

// TestEncodeResponseSizeHint checks, for every Fetch version, that the
// presized encoding is byte-for-byte the plain one, that the hint bounds
// the encoded size (so the one growth before encoding is the only one).
func TestEncodeResponseSizeHint(t *testing.T) {
	fr := kmsg.NewPtrFetchResponse()
	for v := int16(0); v <= fr.MaxVersion(); v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			resp := fetchResponseForEncode(t, v, 6, 1000)
			for _, headerV0 := range []bool{false, true} {
				got := encodeResponse(nil, 42, resp, headerV0)
				want := appendResponse(nil, 42, resp, headerV0)
				if !bytes.Equal(got, want) {
					t.Fatalf("headerV0=%v: presized encoding differs from plain encoding (%d vs %d bytes)", headerV0, len(got), len(want))
				}
				if hint := encodedSizeHint(resp); len(got) > hint {
					t.Fatalf("headerV0=%v: encoded %d bytes, above the hint %d", headerV0, len(got), hint)
				}
			}
		})
	}
	if h := encodedSizeHint(kmsg.NewPtrMetadataResponse()); h != 0 {
		t.Fatalf("size hint for a Metadata response = %d, want 0", h)
	}
}

// BenchmarkEncodeFetchResponse encodes a 6 × 1 MiB Fetch response into an
// empty buffer, as the writer does for a connection's first large response.
// "presized" is encodeResponse; "plain" is its peer without the size hint.
func BenchmarkEncodeFetchResponse(b *testing.B) {
	resp := fetchResponseForEncode(b, kmsg.NewPtrFetchResponse().MaxVersion(), 6, 1<<20)
	for _, bc := range []struct {
		name   string
		encode func([]byte, int32, kmsg.Response, bool) []byte
	}{
		{"presized", encodeResponse},
		{"plain", appendResponse},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(6 << 20)
			for b.Loop() {
				_ = bc.encode(nil, 42, resp, false)
			}
		})
	}
}
