package broker

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
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

// slowWriter sends one valid request a few bytes at a time, pacing each
// step, and reads its answer; it reports whether it was answered.
func slowWriter(addr string, frame []byte, step int, pace time.Duration) (bool, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return false, err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	for i := 0; i < len(frame); i += step {
		if _, err := nc.Write(frame[i:min(i+step, len(frame))]); err != nil {
			return false, nil
		}
		time.Sleep(pace) // the writer's pace, not synchronization
	}
	var size [4]byte
	_, err = io.ReadFull(nc, size[:])
	return err == nil, nil
}

// stalledWriter sends one valid request (unless first is set), then
// announces a frame of announced bytes, sends part of it and stops, and
// waits for the broker to close the connection.
func stalledWriter(addr string, valid []byte, announced, part int, first bool) error {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	if !first {
		if _, err := nc.Write(valid); err != nil {
			return nil
		}
		var size [4]byte
		if _, err := io.ReadFull(nc, size[:]); err != nil {
			return nil
		}
		if _, err := io.CopyN(io.Discard, nc, int64(binary.BigEndian.Uint32(size[:]))); err != nil {
			return nil
		}
	}
	head := binary.BigEndian.AppendUint32(nil, uint32(announced))
	head = binary.BigEndian.AppendUint16(head, uint16(kmsg.Produce.Int16()))
	if _, err := nc.Write(append(head, make([]byte, part)...)); err != nil {
		return nil
	}
	_, _ = io.Copy(io.Discard, nc) // until the broker closes it
	return nil
}

// idleConn connects, sends nothing and waits for the broker to close the
// connection (or for stop).
func idleConn(addr string, stop <-chan struct{}) error {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	go func() {
		select {
		case <-stop:
		case <-time.After(20 * time.Second):
		}
		_ = nc.SetReadDeadline(time.Now())
	}()
	_, _ = io.Copy(io.Discard, nc)
	return nil
}

// resetPeakRSS makes the process's peak resident set size (VmHWM) its
// current one (Linux: 5 written to /proc/self/clear_refs), so that the
// peak rssBytes reports next is that of what ran since.
func resetPeakRSS() error {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// rssBytes returns the process's resident set size now and at its peak
// (VmRSS, VmHWM), or zeros where /proc is missing.
func rssBytes() (now, peak int64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			now = v << 10
		case "VmHWM:":
			peak = v << 10
		}
	}
	return now, peak
}

// closedByReason gathers weir_connections_closed_total by reason.
func closedByReason(t *testing.T, reg *prometheus.Registry) map[string]int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, mf := range mfs {
		if mf.GetName() != "weir_connections_closed_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" {
					out[l.GetValue()] += int(m.GetCounter().GetValue())
				}
			}
		}
	}
	return out
}

// percentile returns the p-th percentile (0 < p <= 1) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(math.Ceil(p*float64(len(s))))-1)]
}

// TestSoakMutatedFrames sends thousands of mutated frames over many
// connections, beside slow writers (valid requests a few bytes at a
// time), stalled writers (a large produce announced, partly sent, then
// nothing; some as their first frame) and a flood of idle connections,
// while a well-behaved client produces and consumes: the client loses
// nothing and its produce latency stays bounded, the slow writers are
// answered, the stalled and idle connections are closed by the broker's
// timeouts, the broker stays up, and its connections, request memory,
// heap and RSS return to bounds afterwards. The well-behaved produce p99
// and the RSS are logged.
//
// WEIR_SOAK_FRAMES raises the mutated frame count; WEIR_SOAK_DURATION
// (e.g. 5m) keeps the well-behaved client producing, and the attackers
// running, for that long.
func TestSoakMutatedFrames(t *testing.T) {
	frames := 3000
	if testing.Short() {
		frames = 500
	}
	if v, err := strconv.Atoi(os.Getenv("WEIR_SOAK_FRAMES")); err == nil {
		frames = v
	}
	var duration time.Duration
	if v := os.Getenv("WEIR_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("WEIR_SOAK_DURATION: %v", err)
		}
		duration = d
	}
	seed := time.Now().UnixNano()
	t.Logf("seed %d, %d mutated frames, duration %v", seed, frames, duration)

	const timeouts = time.Second // frame read timeout and idle timeout
	b := startBroker(t, Options{CleanInterval: -1, FrameReadTimeout: timeouts, ConnectionsMaxIdle: timeouts})
	reg := prometheus.NewRegistry()
	if err := b.srv.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), duration+90*time.Second)
	defer cancel()
	adm := kadm.NewClient(newClient(t, b))
	const topic = "well-behaved-9f2c"
	if _, err := adm.CreateTopic(ctx, 4, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	// NB: the peak is the test process's, since it started: every test
	// that ran before this one in the package (under -race, with its
	// shadow memory) counts, unless it is reset here.
	peakReset := resetPeakRSS()
	rssBefore, _ := rssBytes()

	// Mutated-frame attackers.
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

	// Slow, stalled and idle connections, until the well-behaved client
	// is done (and each kind has been seen through at least once).
	stop := make(chan struct{})
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
		}
		return false
	}
	valid := seeds[1] // ApiVersions v3
	var slowAnswered, stallRounds, idleRounds sync.Map
	for i := range 2 {
		wg.Go(func() {
			for !stopped() {
				ok, err := slowWriter(b.Addr(), valid, 3, 10*time.Millisecond)
				if err != nil {
					t.Errorf("slow writer %d: %v", i, err)
					return
				}
				if ok {
					slowAnswered.Store(i, true)
				}
			}
		})
	}
	for i := range 4 {
		wg.Go(func() {
			for round := 0; !stopped(); round++ {
				// Half announce 64 MiB and send 512 KiB after a valid
				// request; half announce 1 MiB as their first frame.
				var err error
				if i%2 == 0 {
					err = stalledWriter(b.Addr(), valid, 64<<20, 512<<10, false)
				} else {
					err = stalledWriter(b.Addr(), valid, 1<<20, 100, true)
				}
				if err != nil {
					t.Errorf("stalled writer %d: %v", i, err)
					return
				}
				stallRounds.Store(i, round+1)
			}
		})
	}
	const idlers = 64
	for i := range idlers {
		wg.Go(func() {
			for round := 0; !stopped(); round++ {
				if err := idleConn(b.Addr(), stop); err != nil {
					t.Errorf("idle connection %d: %v", i, err)
					return
				}
				idleRounds.Store(i, round+1)
			}
		})
	}

	// The well-behaved client, at the same time.
	p, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cons, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	// Rounds of 2000 records, each produced 20 at a time and then consumed
	// and compared, so that a long run holds no more than a round.
	var lat []time.Duration
	produced, consumed := 0, 0
	start := time.Now()
	for round := 0; round == 0 || time.Since(start) < duration; round++ {
		want := make([]*kgo.Record, 0, 2000)
		for i := range 2000 {
			want = append(want, &kgo.Record{Key: []byte(strconv.Itoa(i % 97)), Value: []byte(fmt.Sprintf("r%06d-v%05d", round, i))})
		}
		for i := 0; i < len(want); i += 20 {
			t0 := time.Now()
			if err := p.ProduceSync(ctx, want[i:i+20]...).FirstErr(); err != nil {
				t.Fatalf("well-behaved produce: %v", err)
			}
			lat = append(lat, time.Since(t0))
		}
		produced += len(want)
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
		consumed += len(got)
		if diff := cmp.Diff(recordSet(want), recordSet(got)); diff != "" {
			t.Fatalf("well-behaved client's records of round %d (-produced +consumed):\n%s", round, diff)
		}
	}
	// The broker's timeouts must have closed stalled and idle
	// connections at least once each before the attackers stop.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c := closedByReason(t, reg)
		if c["frame_timeout"] > 0 && c["idle"] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the broker's timeouts closed nothing within 30s: %v", c)
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
	_, peak := rssBytes()
	close(stop)
	wg.Wait()
	if consumed != produced {
		t.Fatalf("consumed %d records, produced %d", consumed, produced)
	}
	for i := range 2 {
		if _, ok := slowAnswered.Load(i); !ok {
			t.Errorf("slow writer %d was never answered", i)
		}
	}
	p99 := percentile(lat, 0.99)
	t.Logf("well-behaved produce of 20 records: p50 %v, p99 %v, max %v over %d produces (%d records consumed back)",
		percentile(lat, 0.5), p99, percentile(lat, 1), len(lat), consumed)
	t.Logf("connections closed by the broker: %v", closedByReason(t, reg))
	t.Logf("RSS %d MiB before the attack, peak %d MiB during it", rssBefore>>20, peak>>20)
	const latencyBound = 2 * time.Second
	if p99 > latencyBound {
		t.Errorf("well-behaved produce p99 %v beside the attackers, bound %v", p99, latencyBound)
	}
	// The attack may raise the RSS by as much as the heap may grow across
	// it (below).
	const rssBound = 256 << 20
	switch {
	case peakReset != nil:
		t.Logf("the peak RSS is the process's, not the attack's (%v): not bounded", peakReset)
	case peak-rssBefore > rssBound:
		t.Errorf("peak RSS %d bytes during the attack, %d above the RSS before it, bound %d", peak, peak-rssBefore, rssBound)
	}

	// Once every client has hung up, the broker holds no connection (and so
	// none of their goroutines or buffers).
	p.Close()
	cons.Close()
	adm.Close()
	deadline = time.Now().Add(20 * time.Second)
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
