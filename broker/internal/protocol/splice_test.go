package protocol

import (
	"bytes"
	"fmt"
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// joinVecs concatenates write vectors as a vectored write sends them.
func joinVecs(t *testing.T, vecs net.Buffers) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := vecs.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestEncodeFetchSpliced checks, for every Fetch version and mixes of small
// (copied) and large (spliced) batches, that the spliced frame is byte for
// byte the whole encoding, that the large batches are sent from the
// response's own buffers, and that the response is left as it was.
func TestEncodeFetchSpliced(t *testing.T) {
	fr := kmsg.NewPtrFetchResponse()
	for v := int16(0); v <= fr.MaxVersion(); v++ {
		for _, size := range []int{spliceMinBytes - 1, spliceMinBytes, 3 * spliceMinBytes} {
			t.Run(fmt.Sprintf("v%d/%d", v, size), func(t *testing.T) {
				resp := fetchResponseForEncode(t, v, 6, size)
				resp.Topics[0].Partitions[1].RecordBatches = []byte("small")
				resp.Topics[1].Partitions[0].RecordBatches = []byte{}
				for _, headerV0 := range []bool{false, true} {
					want := appendResponse(nil, 42, resp, headerV0)
					vecs, _ := encodeFetchSpliced(nil, 42, resp, headerV0)
					if size < spliceMinBytes {
						if vecs != nil {
							t.Fatalf("headerV0=%v: spliced a response without a large batch", headerV0)
						}
						continue
					}
					if vecs == nil {
						t.Fatalf("headerV0=%v: no vectors for a response with large batches", headerV0)
					}
					shared := 0
					for _, v := range vecs {
						for _, tp := range resp.Topics {
							for _, p := range tp.Partitions {
								if len(v) > 0 && len(p.RecordBatches) > 0 && &v[0] == &p.RecordBatches[0] {
									shared++
								}
							}
						}
					}
					if shared != 4 {
						t.Errorf("headerV0=%v: %d batches sent from the response's buffers, want 4", headerV0, shared)
					}
					if got := joinVecs(t, vecs); !bytes.Equal(got, want) {
						t.Fatalf("headerV0=%v: spliced frame differs from the whole encoding (-want +got):\n%s", headerV0, cmp.Diff(want, got))
					}
					if again := appendResponse(nil, 42, resp, headerV0); !bytes.Equal(again, want) {
						t.Fatalf("headerV0=%v: encoding changed the response", headerV0)
					}
				}
			})
		}
	}
}

// TestEncodeFetchSplicedFallback: when the encoding holds a marker's bytes
// before the marker itself (here, a topic name made of it), the marker is
// not where it must be, and the writer encodes the response whole.
func TestEncodeFetchSplicedFallback(t *testing.T) {
	resp := fetchResponseForEncode(t, 11, 2, spliceMinBytes)
	marker := append(spliceMagic[:len(spliceMagic):len(spliceMagic)], 0, 0, 0, 0)
	resp.Topics[0].Topic = string(marker)
	vecs, _ := encodeFetchSpliced(nil, 42, resp, false)
	if vecs != nil {
		t.Fatalf("spliced a response whose marker cannot be located")
	}
	if len(resp.Topics[0].Partitions[0].RecordBatches) != spliceMinBytes {
		t.Fatalf("the response's batch was not restored")
	}
}

// BenchmarkWriteFetchResponse writes a 6 × 1 MiB Fetch response to a
// discarding connection: "whole" encodes it into a fresh buffer as the
// writer did for every response above 1 MiB, "spliced" sends the batches
// uncopied.
func BenchmarkWriteFetchResponse(b *testing.B) {
	resp := fetchResponseForEncode(b, kmsg.NewPtrFetchResponse().MaxVersion(), 6, 1<<20)
	b.Run("whole", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(6 << 20)
		for b.Loop() {
			buf := encodeResponse(nil, 42, resp, false)
			_, _ = discard{}.Write(buf)
		}
	})
	b.Run("spliced", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(6 << 20)
		var buf []byte
		for b.Loop() {
			var vecs net.Buffers
			vecs, buf = encodeFetchSpliced(buf, 42, resp, false)
			_, _ = vecs.WriteTo(discard{})
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
