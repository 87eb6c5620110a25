package metadata

import (
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzController decodes arbitrary bytes as the requests the controller
// answers, as the wire (or a forwarding broker) would deliver them, and
// hands them to a controller over a small cluster: it must never panic or
// fail, every request must get a reply, and the records it returns must
// commit to the committed image.
func FuzzController(f *testing.F) {
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Version = 7
	ct.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "x", NumPartitions: 3, ReplicationFactor: 2}}
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Version = 3
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "a", Count: 4}}
	hb := kmsg.NewPtrBrokerHeartbeatRequest()
	hb.BrokerID, hb.BrokerEpoch, hb.WantShutdown = 1, 1, true
	ia := kmsg.NewPtrIncrementalAlterConfigsRequest()
	v := "1"
	ia.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: 2, ResourceName: "a", Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "k", Value: &v}}}}
	for _, r := range []kmsg.Request{ct, cp, hb, ia} {
		f.Add(r.Key(), r.GetVersion(), r.AppendTo(nil))
	}
	f.Fuzz(func(t *testing.T, key, version int16, body []byte) {
		req := kmsg.RequestForKey(key)
		if req == nil || version < 0 || version > req.MaxVersion() {
			return
		}
		req.SetVersion(version)
		if err := req.ReadFrom(body); err != nil {
			return
		}
		im := NewImage()
		for i, e := range validEntries() {
			if err := im.Apply(uint64(i+1), e); err != nil {
				t.Fatal(err)
			}
		}
		c, err := NewController(im, ctlEpoch, Options{MaxPartitionsPerRequest: 1000})
		if err != nil {
			t.Fatal(err)
		}
		var records []Record
		var reply kmsg.Response
		switch r := req.(type) {
		case *kmsg.BrokerRegistrationRequest:
			records, reply, err = c.RegisterBroker(ctlEpoch, r)
		case *kmsg.BrokerHeartbeatRequest:
			records, reply, err = c.Heartbeat(ctlEpoch, r)
		case *kmsg.UnregisterBrokerRequest:
			records, reply, err = c.UnregisterBroker(r)
		case *kmsg.AllocateProducerIDsRequest:
			records, reply, err = c.AllocateProducerIDs(r)
		case *kmsg.CreateTopicsRequest:
			records, reply, err = c.CreateTopics(r)
		case *kmsg.CreatePartitionsRequest:
			records, reply, err = c.CreatePartitions(r)
		case *kmsg.DeleteTopicsRequest:
			records, reply, err = c.DeleteTopics(r)
		case *kmsg.IncrementalAlterConfigsRequest:
			records, reply, err = c.IncrementalAlterConfigs(r)
		case *kmsg.AlterConfigsRequest:
			records, reply, err = c.AlterConfigs(r)
		default:
			return
		}
		if err != nil {
			t.Fatalf("controller error: %v", err)
		}
		if reply == nil || reflect.ValueOf(reply).IsNil() {
			t.Fatal("no reply")
		}
		if err := im.Apply(im.Applied()+1, EncodeEntry(records)); err != nil {
			t.Fatalf("the controller's records do not commit: %v", err)
		}
		checkImageInvariants(t, im)
	})
}
