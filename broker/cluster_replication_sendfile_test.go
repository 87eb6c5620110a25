package broker

import (
	"bytes"
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClusterReplicationSendsFromFiles: the followers of a partition
// filled with about 4 MiB of 16 KiB records in large batches fetch it from
// the leader mostly by sendfile (no consumer reads it, so every fetched
// byte is a follower's), and every replica's log holds the same batches.
func TestClusterReplicationSendsFromFiles(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("sendfile is used on Linux only")
	}
	c := startReplicatedCluster(t, 3, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("sf"),
		kgo.ProducerLinger(10*time.Millisecond), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	createTopicEventually(t, ctx, kadm.NewClient(cl), "sf", 1, nil, 15*time.Second)
	const n = 256
	for i := range n {
		v := bytes.Repeat([]byte{byte(i)}, 16<<10)
		cl.Produce(ctx, &kgo.Record{Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce %d: %v", i, err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	waitReplicated(t, c, "sf", 0, n, 15*time.Second)
	checkReplicasAgree(t, c, "sf", 0)
	leader, _, _, err := partitionLeader(ctx, cl, 1, "sf", 0)
	if err != nil {
		t.Fatal(err)
	}
	size := len(logBytes(t, partitionLog(c.brokers[leader-1], "sf", 0), n))
	m := scrape(t, c.brokers[leader-1])
	fetched, sent := m["weir_fetched_bytes_total"][""], m["weir_fetched_sendfile_bytes_total"][""]
	t.Logf("leader %d: log of %d bytes, fetched %.0f bytes, %.0f of them by sendfile", leader, size, fetched, sent)
	if fetched < float64(2*size) {
		t.Fatalf("the followers fetched %.0f bytes of a %d-byte log: want it twice", fetched, size)
	}
	if sent < fetched/2 || sent > fetched {
		t.Fatalf("sent %.0f of %.0f fetched bytes from files: want most", sent, fetched)
	}
}
