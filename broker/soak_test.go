package broker

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// attackFrames are valid request frames (size prefix included) that the
// soak test mutates. None of them names the well-behaved client's topic.
func attackFrames() [][]byte {
	enc := func(req kmsg.Request, v int16) []byte {
		req.SetVersion(v)
		var f []byte
		f = binary.BigEndian.AppendUint32(f, 0)
		f = binary.BigEndian.AppendUint16(f, uint16(req.Key()))
		f = binary.BigEndian.AppendUint16(f, uint16(v))
		f = binary.BigEndian.AppendUint32(f, 1)
		f = binary.BigEndian.AppendUint16(f, 4)
		f = append(f, "soak"...)
		if req.IsFlexible() {
			f = append(f, 0)
		}
		f = req.AppendTo(f)
		binary.BigEndian.PutUint32(f, uint32(len(f)-4))
		return f
	}
	var out [][]byte
	out = append(out, enc(kmsg.NewPtrApiVersionsRequest(), 0), enc(kmsg.NewPtrApiVersionsRequest(), 3))
	md := kmsg.NewPtrMetadataRequest()
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("junk")}}
	out = append(out, enc(md, 4), enc(md, 12))
	prod := kmsg.NewPtrProduceRequest()
	prod.Acks = -1
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "junk"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = rawBatch("junk value", "another")
	rt.Partitions = append(rt.Partitions, rp)
	prod.Topics = append(prod.Topics, rt)
	out = append(out, enc(prod, 7), enc(prod, 9))
	fetch := kmsg.NewPtrFetchRequest()
	fetch.MaxWaitMillis = 20
	fetch.MaxBytes = 1 << 20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "junk"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	out = append(out, enc(fetch, 11), enc(fetch, 12))
	lo := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "junk"
	lt.Partitions = append(lt.Partitions, kmsg.NewListOffsetsRequestTopicPartition())
	lo.Topics = append(lo.Topics, lt)
	out = append(out, enc(lo, 1), enc(lo, 7))
	dc := kmsg.NewPtrDescribeConfigsRequest()
	dr := kmsg.NewDescribeConfigsRequestResource()
	dr.ResourceType, dr.ResourceName = kmsg.ConfigResourceTypeTopic, "junk"
	dc.Resources = append(dc.Resources, dr)
	out = append(out, enc(dc, 4), enc(kmsg.NewPtrInitProducerIDRequest(), 4))
	return out
}

// mutate returns a damaged copy of frame.
func mutate(rng *rand.Rand, frame []byte) []byte {
	f := append([]byte(nil), frame...)
	switch rng.IntN(7) {
	case 0: // flip a few bytes after the size prefix
		for range 1 + rng.IntN(8) {
			i := 4 + rng.IntN(len(f)-4)
			f[i] ^= byte(1 + rng.IntN(255))
		}
	case 1: // truncate the body but keep the announced size
		f = f[:4+rng.IntN(len(f)-4)]
	case 2: // lie about the size
		binary.BigEndian.PutUint32(f, rng.Uint32())
	case 3: // garbage after a valid frame
		for range rng.IntN(64) {
			f = append(f, byte(rng.IntN(256)))
		}
	case 4: // pure noise
		f = make([]byte, 1+rng.IntN(256))
		for i := range f {
			f[i] = byte(rng.IntN(256))
		}
	case 5: // unknown key or version
		binary.BigEndian.PutUint16(f[4:], uint16(rng.IntN(1<<16)))
		binary.BigEndian.PutUint16(f[6:], uint16(rng.IntN(1<<16)))
	case 6: // a valid frame: the connection stays useful
	}
	return f
}

// attack opens a connection, sends a few mutated frames, drains whatever
// comes back for a moment and closes.
func attack(rng *rand.Rand, addr string, frames [][]byte, n int) error {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(2 * time.Second))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(io.Discard, nc)
	}()
	for range n {
		if _, err := nc.Write(mutate(rng, frames[rng.IntN(len(frames))])); err != nil {
			break
		}
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	<-done
	return nil
}

// TestSoakMutatedFrames sends thousands of mutated frames over many
// connections while a well-behaved client produces and consumes: the
// client loses nothing, the broker stays up, and its goroutines and heap
// return to bounds afterwards. WEIR_SOAK_FRAMES raises the frame count.
func TestSoakMutatedFrames(t *testing.T) {
	frames := 3000
	if testing.Short() {
		frames = 500
	}
	if v, err := strconv.Atoi(os.Getenv("WEIR_SOAK_FRAMES")); err == nil {
		frames = v
	}
	seed := time.Now().UnixNano()
	t.Logf("seed %d, %d mutated frames", seed, frames)

	b := startBroker(t, Options{CleanInterval: -1})
	ctx := testCtx(t)
	adm := kadm.NewClient(newClient(t, b))
	const topic = "well-behaved-9f2c"
	if _, err := adm.CreateTopic(ctx, 4, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	// Attackers.
	const conns = 16
	var wg sync.WaitGroup
	seeds := attackFrames()
	for i := range conns {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(seed), uint64(i)))
			for sent := 0; sent < frames/conns; {
				n := 1 + rng.IntN(8)
				if err := attack(rng, b.Addr(), seeds, n); err != nil {
					t.Errorf("attacker %d: %v", i, err)
					return
				}
				sent += n
			}
		})
	}

	// The well-behaved client, at the same time.
	p, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var want []*kgo.Record
	for i := range 2000 {
		want = append(want, &kgo.Record{Key: []byte(strconv.Itoa(i % 97)), Value: []byte(fmt.Sprintf("v%05d", i))})
	}
	for i := 0; i < len(want); i += 100 {
		if err := p.ProduceSync(ctx, want[i:i+100]...).FirstErr(); err != nil {
			t.Fatalf("well-behaved produce: %v", err)
		}
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []*kgo.Record
	for len(got) < len(want) && ctx.Err() == nil {
		fs := cons.PollFetches(ctx)
		fs.EachError(func(topic string, p int32, err error) {
			if ctx.Err() == nil {
				t.Fatalf("well-behaved fetch %s/%d: %v", topic, p, err)
			}
		})
		got = append(got, fs.Records()...)
	}
	wg.Wait()
	if diff := cmp.Diff(recordSet(want), recordSet(got)); diff != "" {
		t.Fatalf("well-behaved client's records (-produced +consumed):\n%s", diff)
	}
	if len(got) != len(want) {
		t.Fatalf("consumed %d records, produced %d", len(got), len(want))
	}

	// Once every client has hung up, the broker holds no connection (and so
	// none of their goroutines or buffers).
	p.Close()
	cons.Close()
	adm.Close()
	deadline := time.Now().Add(20 * time.Second)
	for b.srv.OpenConns() > 0 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d connections still open after every client left\n%s", b.srv.OpenConns(),
				buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline, not synchronization
	}
	if n := b.srv.InflightBytes(); n != 0 {
		t.Fatalf("%d request bytes still accounted as in flight with no connection open", n)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	const bound = 256 << 20
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > bound {
		t.Fatalf("heap in use grew by %d bytes across the attack (bound %d)", grew, bound)
	}
}
