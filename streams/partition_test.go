package streams

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// KeyPartition must agree with franz-go's key partitioner (Kafka's default
// murmur2 partitioner), or the runtime and the driver would route keys
// differently from every other Kafka client.
func TestKeyPartitionMatchesKgo(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	p := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	keys := [][]byte{{}, []byte("a"), []byte("ab"), []byte("abc"), []byte("abcd"), []byte("abcde"), []byte("customer-42")}
	for range 2000 {
		k := make([]byte, rng.IntN(40))
		for i := range k {
			k[i] = byte(rng.IntN(256))
		}
		keys = append(keys, k)
	}
	for _, n := range []int{1, 2, 3, 4, 7, 12, 100} {
		for _, k := range keys {
			want := p.Partition(&kgo.Record{Key: k}, n)
			if got := KeyPartition(k, n); int(got) != want {
				t.Fatalf("KeyPartition(%x, %d) = %d, kgo says %d", k, n, got, want)
			}
		}
	}
}

// Known values of Kafka's murmur2, as the Java client computes them.
func TestMurmur2KnownValues(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want int32
	}{
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
	} {
		if got := int32(murmur2([]byte(tc.key))); got != tc.want {
			t.Errorf("murmur2(%q) = %d, want %d", tc.key, got, tc.want)
		}
	}
}

func BenchmarkKeyPartition(b *testing.B) {
	key := []byte(fmt.Sprintf("customer-%08d", 12345))
	b.ReportAllocs()
	for b.Loop() {
		_ = KeyPartition(key, 12)
	}
}
