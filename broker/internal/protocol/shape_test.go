package protocol

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceBody encodes a produce request body with topics x parts entries.
func produceBody(version int16, topics, parts int) []byte {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(version)
	req.Acks = -1
	for i := range topics {
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "t" + string(rune('a'+i%26))
		for j := range parts {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition = int32(j)
			if j%2 == 0 {
				rp.Records = []byte{1, 2, 3}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	return req.AppendTo(nil)
}

// entries counts what checkProduceShape bounds in a decoded request.
func entries(req *kmsg.ProduceRequest) int {
	n := len(req.Topics)
	for _, t := range req.Topics {
		n += len(t.Partitions)
	}
	return n
}

func TestProduceShape(t *testing.T) {
	for v := int16(0); v <= 10; v++ {
		if err := checkProduceShape(produceBody(v, 3, 5), v); err != nil {
			t.Fatalf("v%d: valid request refused: %v", v, err)
		}
		if err := checkProduceShape(produceBody(v, 1, maxProducePartitions), v); !IsFrameError(err) {
			t.Fatalf("v%d: %d entries accepted", v, maxProducePartitions+1)
		}
	}
}

// FuzzProduceShape checks the pre-decode walk against kmsg: it never
// refuses a request that kmsg decodes into at most maxProducePartitions
// entries, and never passes one that kmsg decodes into more.
func FuzzProduceShape(f *testing.F) {
	for v := int16(0); v <= 10; v++ {
		f.Add(int16(v), produceBody(v, 2, 3))
	}
	f.Fuzz(func(t *testing.T, v int16, body []byte) {
		if v < 0 || v > 10 {
			return
		}
		err := checkProduceShape(body, v)
		if err != nil && !IsFrameError(err) {
			t.Fatalf("error %v is not a frame error", err)
		}
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(v)
		if req.ReadFrom(body) != nil {
			return
		}
		if n := entries(req); (n > maxProducePartitions) != (err != nil) {
			t.Fatalf("v%d: %d entries, shape check said %v", v, n, err)
		}
	})
}
