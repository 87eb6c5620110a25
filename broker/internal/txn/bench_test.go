package txn

import (
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkTransaction measures one whole transaction through the
// coordinator: AddPartitionsToTxn of 4 partitions, AddOffsetsToTxn, EndTxn
// (commit) and the markers' acknowledgement, each with its Ready, spread
// over 1000 transactional ids.
func BenchmarkTransaction(b *testing.B) {
	b.ReportAllocs()
	c, err := New(Options{ProducerIDs: &counterIDs{}})
	if err != nil {
		b.Fatal(err)
	}
	now := epoch0
	for p := int32(0); p < 50; p++ {
		c.BeginLoad(p)
		c.FinishLoad(now, p, 1)
	}
	const ids = 1000
	pids := make([]int64, ids)
	for i := range pids {
		init := kmsg.NewPtrInitProducerIDRequest()
		init.Version = 4
		id := "tx-" + strconv.Itoa(i)
		init.TransactionalID, init.TransactionTimeoutMillis = &id, 60000
		c.Step(now, Request{Msg: init})
		pids[i] = c.Ready().Responses[0].Msg.(*kmsg.InitProducerIDResponse).ProducerID
	}
	topics := []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "orders", Partitions: []int32{0, 1, 2, 3}}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := i % ids
		id := "tx-" + strconv.Itoa(n)
		now = now.Add(time.Millisecond)
		add := kmsg.NewPtrAddPartitionsToTxnRequest()
		add.Version, add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Topics = 3, id, pids[n], 0, topics
		c.Step(now, Request{Token: 1, Msg: add})
		c.Ready()
		off := kmsg.NewPtrAddOffsetsToTxnRequest()
		off.Version, off.TransactionalID, off.ProducerID, off.ProducerEpoch, off.Group = 3, id, pids[n], 0, "app"
		c.Step(now, Request{Token: 2, Msg: off})
		c.Ready()
		end := kmsg.NewPtrEndTxnRequest()
		end.Version, end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = 4, id, pids[n], 0, true
		c.Step(now, Request{Token: 3, Msg: end})
		rd := c.Ready()
		if len(rd.Markers) != 1 {
			b.Fatalf("markers %+v", rd.Markers)
		}
		m := rd.Markers[0]
		c.MarkersWritten(now, m.TransactionalID, m.ProducerID, m.Epoch, m.Partitions)
		if rd = c.Ready(); len(rd.Records) != 1 {
			b.Fatalf("completion records %d", len(rd.Records))
		}
	}
}
