package runtime_test

import (
	"testing"
	"time"

	"github.com/weir-dev/weir/broker"
)

// TestBrokerRestart stops the Weir broker under a running application and
// starts it again on the same address and data: the application rides
// through (franz-go reconnects and retries) and the counts stay exact.
func TestBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	open := func(listen string) *broker.Broker {
		t.Helper()
		b, err := broker.Open(broker.Options{
			Listen: listen, DataDir: dir, Fsync: broker.FsyncNever,
			GroupInitialRebalanceDelay: -1, Logger: quietLogger(),
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := open("127.0.0.1:0")
	c := &cluster{addrs: []string{b.Addr()}, session: 6 * time.Second}
	createTopics(t, c, 6)
	p := newProducer(t, c)
	base := time.UnixMilli(1_700_000_000_000).Truncate(time.Minute)
	seq := 0
	p.send(t, 300, 20, base, &seq)
	in := startInstance(t, c, t.TempDir())
	waitCounts(t, c, p.expected())

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = open(c.addrs[0])
	t.Cleanup(func() { _ = b.Close() })

	p.send(t, 300, 20, base, &seq)
	waitCounts(t, c, p.expected())
	in.checkRunning(t)
	in.stop(t)
}
