package protocol

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// groupPeers are the clusters a group benchmark runs against in the same
// run: Weir and franz-go's in-memory kfake, the reference for ratios.
//
// NB: kfake enforces Kafka's 6s minimum session timeout, so members get a
// 6s session on both (it matters only to abandoned members, absent here).
var benchMemberOpts = []kgo.Opt{kgo.SessionTimeout(6 * time.Second)}

func groupPeers(b *testing.B, topic string, partitions int32) map[string]string {
	b.Helper()
	wb := startGroupBroker(b, testGroupOptions())
	wb.createTopic(topic, partitions)
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(fake.Close)
	return map[string]string{"weir": wb.Addr, "kfake": strings.Join(fake.ListenAddrs(), ",")}
}

// slowFsyncPeer is a Weir broker whose __consumer_offsets logs take
// slowFsync for every wait for durability, as a loaded disk's fsync does,
// and write at once.
func slowFsyncPeer(b *testing.B, topic string, partitions int32) string {
	b.Helper()
	wb := &groupBroker{t: b, dir: b.TempDir(), logs: &keptLogs{fsync: slowFsync}, gopts: testGroupOptions()}
	wb.start()
	b.Cleanup(wb.stop)
	wb.createTopic(topic, partitions)
	return wb.Addr
}

const slowFsync = 50 * time.Millisecond

// BenchmarkGroupAbsorbMember times how long a stable 3-member
// cooperative-sticky group over 6 partitions takes to absorb a 4th member:
// from the new client's start until the four members own all partitions,
// each exactly once. Members heartbeat every 150ms, which bounds how fast
// they hear of the rebalance on any broker. weir-fsync50ms is Weir with a
// 50ms fsync on __consumer_offsets.
func BenchmarkGroupAbsorbMember(b *testing.B) {
	const topic, parts = "orders", 6
	for _, name := range []string{"weir", "kfake", "weir-fsync50ms"} {
		b.Run(name, func(b *testing.B) {
			var addr string
			if name == "weir-fsync50ms" {
				addr = slowFsyncPeer(b, topic, parts)
			} else {
				addr = groupPeers(b, topic, parts)[name]
			}
			c := newConsumption()
			var ms []*member
			for i := 0; i < 3; i++ {
				ms = append(ms, startMemberAt(b, addr, "m"+strconv.Itoa(i), "bench", topic, c, benchMemberOpts...))
			}
			waitFor(b, "three stable members", 30*time.Second, func() bool { return partitionsSplit(parts, ms...) })
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m4 := startMemberAt(b, addr, "m4", "bench", topic, c, benchMemberOpts...)
				waitFor(b, "the 4th member absorbed", 30*time.Second, func() bool { return partitionsSplit(parts, append(ms, m4)...) })
				b.StopTimer()
				m4.leave(b)
				waitFor(b, "back to three", 30*time.Second, func() bool { return partitionsSplit(parts, ms...) })
				b.StartTimer()
			}
			b.StopTimer()
			for _, m := range ms {
				m.leave(b)
			}
		})
	}
}

// BenchmarkGroupConsume measures a 3-member group consuming 100-byte
// records from 6 partitions, on Weir and kfake. ns/op includes joining the
// group; records/s counts from the first record polled to the last.
func BenchmarkGroupConsume(b *testing.B) {
	const topic, parts, n = "orders", 6, 60000
	for _, name := range []string{"weir", "kfake"} {
		b.Run(name, func(b *testing.B) {
			addr := groupPeers(b, topic, parts)[name]
			prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic))
			if err != nil {
				b.Fatal(err)
			}
			defer prod.Close()
			val := make([]byte, 100)
			for i := 0; i < n; i++ {
				prod.Produce(context.Background(), &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: val}, func(_ *kgo.Record, err error) {
					if err != nil {
						b.Error(err)
					}
				})
			}
			if err := prod.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
			var consuming time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c := newConsumption()
				var ms []*member
				group := "bench-" + strconv.Itoa(i)
				for j := 0; j < 3; j++ {
					ms = append(ms, startMemberAt(b, addr, "m"+strconv.Itoa(j), group, topic, c, benchMemberOpts...))
				}
				waitFor(b, "every record consumed", 120*time.Second, func() bool {
					c.mu.Lock()
					defer c.mu.Unlock()
					return c.total >= n
				})
				b.StopTimer()
				c.mu.Lock()
				consuming += c.last.Sub(c.first)
				c.mu.Unlock()
				for _, m := range ms {
					m.leave(b)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(n*b.N)/consuming.Seconds(), "records/s")
		})
	}
}
