package metadata

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// imageDump is everything an image answers, through its exported queries.
type imageDump struct {
	Applied  uint64
	Brokers  []Broker
	Leaders  map[NodeID]int
	MaxEpoch BrokerEpoch
	Topics   []topicDump
	Configs  map[ConfigResource]map[string]string
	NextPID  ProducerID
	LastIDs  ProducerIDsRecord
	HasIDs   bool
	// Security is the SCRAM credentials and ACLs, as snapshot records.
	Security []Record
}

type topicDump struct {
	Topic Topic
	Parts []Partition
}

func dumpImage(im *Image) imageDump {
	d := imageDump{
		Applied: im.Applied(), Brokers: im.Brokers(), MaxEpoch: im.MaxBrokerEpoch(),
		Leaders: map[NodeID]int{}, Configs: map[ConfigResource]map[string]string{},
		NextPID: im.NextProducerID(), Security: im.sec.records(),
	}
	d.LastIDs, d.HasIDs = im.LastProducerIDs()
	for _, t := range im.Topics() {
		byID, ok := im.TopicByID(t.ID)
		if !ok || byID != t {
			panic("topic by id disagrees with topic by name")
		}
		d.Topics = append(d.Topics, topicDump{Topic: t, Parts: im.Partitions(t.ID)})
		for _, p := range im.Partitions(t.ID) {
			if p.Leader != NoLeader {
				d.Leaders[p.Leader]++
			}
		}
	}
	for _, res := range im.ConfigResources() {
		d.Configs[res] = im.Config(res)
	}
	return d
}

// checkImageInvariants checks what the image promises between entries.
func checkImageInvariants(t *testing.T, im *Image) {
	t.Helper()
	d := dumpImage(im)
	for n, c := range d.Leaders {
		if got := im.Leaderships(n); got != c {
			t.Fatalf("broker %d leads %d partitions, image counts %d", n, c, got)
		}
		b, ok := im.Broker(n)
		if !ok || b.Fenced {
			t.Fatalf("broker %d (registered %v, %+v) leads %d partitions", n, ok, b, c)
		}
	}
	for _, td := range d.Topics {
		if td.Topic.Partitions < 1 || int(td.Topic.Partitions) != len(td.Parts) {
			t.Fatalf("topic %+v has %d partitions", td.Topic, len(td.Parts))
		}
		for i, p := range td.Parts {
			if p.Partition != int32(i) || len(p.ISR) == 0 {
				t.Fatalf("topic %s: bad partition %+v", td.Topic.Name, p)
			}
			for _, n := range p.ISR {
				if !slices.Contains(p.Replicas, n) {
					t.Fatalf("topic %s: ISR not within replicas: %+v", td.Topic.Name, p)
				}
			}
			if p.Leader != NoLeader && !slices.Contains(p.ISR, p.Leader) {
				t.Fatalf("topic %s: leader not in ISR: %+v", td.Topic.Name, p)
			}
		}
	}
	for _, b := range d.Brokers {
		if b.Epoch > d.MaxEpoch {
			t.Fatalf("broker %d epoch %d above the max %d", b.ID, b.Epoch, d.MaxEpoch)
		}
	}
}

func strp(s string) *string  { return &s }
func nodep(n NodeID) *NodeID { return &n }

var (
	topicA = TopicID{0xa}
	topicB = TopicID{0xb}
)

func listeners(port uint16) []Listener {
	return []Listener{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: port}}
}

// validEntries builds a small cluster: three brokers, two topics, configs
// and producer ids.
func validEntries() [][]byte {
	return [][]byte{
		EncodeEntry([]Record{
			RegisterBrokerRecord{Node: 1, Epoch: 1, Listeners: listeners(9092), Rack: "r1"},
			RegisterBrokerRecord{Node: 2, Epoch: 2, Listeners: listeners(9192), Rack: "r2"},
			RegisterBrokerRecord{Node: 3, Epoch: 3, Listeners: listeners(9292), Rack: "r1", Fenced: true},
		}),
		EncodeEntry([]Record{
			TopicRecord{ID: topicA, Name: "a"},
			ConfigRecord{Resource: ConfigResource{ConfigTopic, "a"}, Key: "retention.ms", Value: strp("1000")},
			PartitionRecord{Topic: topicA, Partition: 0, Replicas: []NodeID{1, 2, 3}, ISR: []NodeID{1, 2, 3}, Leader: 1},
			PartitionRecord{Topic: topicA, Partition: 1, Replicas: []NodeID{2, 3, 1}, ISR: []NodeID{2, 3}, Leader: 2},
		}),
		EncodeEntry([]Record{
			TopicRecord{ID: topicB, Name: "b"},
			PartitionRecord{Topic: topicB, Partition: 0, Replicas: []NodeID{3}, ISR: []NodeID{3}, Leader: NoLeader},
			ConfigRecord{Resource: ConfigResource{ConfigBroker, ""}, Key: "log.retention.ms", Value: strp("5")},
			ProducerIDsRecord{Node: 1, First: 0, Size: 1000},
		}),
	}
}

func TestImageRefusesWholeEntry(t *testing.T) {
	im := NewImage()
	for i, e := range validEntries() {
		if err := im.Apply(uint64(i+1), e); err != nil {
			t.Fatal(err)
		}
	}
	checkImageInvariants(t, im)
	for _, c := range []struct {
		name    string
		records []Record
		msg     string
	}{
		{"partition of unknown topic", []Record{
			ConfigRecord{Resource: ConfigResource{ConfigBroker, "1"}, Key: "k", Value: strp("v")},
			PartitionRecord{Topic: TopicID{9}, Partition: 0, Replicas: []NodeID{1}, ISR: []NodeID{1}, Leader: 1},
		}, "record 1 (Partition): partition 0 of unknown topic"},
		{"fence without moving leaderships", []Record{
			FenceBrokerRecord{Node: 1, Epoch: 1},
		}, "broker 1 is fenced but still leads 1 partitions"},
		{"stale broker epoch", []Record{
			FenceBrokerRecord{Node: 2, Epoch: 1},
		}, "epoch 1 is not its registered epoch 2"},
		{"leader outside ISR", []Record{
			PartitionChangeRecord{Topic: topicA, Partition: 1, Leader: nodep(1)},
		}, "leader 1 is not in the ISR [2 3]"},
		{"fenced leader", []Record{
			PartitionChangeRecord{Topic: topicA, Partition: 1, Leader: nodep(3)},
		}, "leader 3 is fenced"},
		{"topic without partitions", []Record{
			TopicRecord{ID: TopicID{7}, Name: "c"},
		}, `topic "c"`},
		{"removal then a change of it", []Record{
			RemoveTopicRecord{ID: topicA},
			PartitionChangeRecord{Topic: topicA, Partition: 0, ISR: []NodeID{1}},
		}, "unknown topic"},
		{"producer ids going back", []Record{
			ProducerIDsRecord{Node: 2, First: 999, Size: 10},
		}, "overlaps"},
		{"unregister unfenced", []Record{
			UnregisterBrokerRecord{Node: 2, Epoch: 2},
		}, "unregistered while unfenced"},
		{"config of unknown topic", []Record{
			ConfigRecord{Resource: ConfigResource{ConfigTopic, "zz"}, Key: "k"},
		}, `unknown topic "zz"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			work := im.Clone()
			before := dumpImage(work)
			err := work.Apply(10, EncodeEntry(c.records))
			if err == nil || !IsInvalid(err) || !strings.Contains(err.Error(), c.msg) || !strings.HasPrefix(err.Error(), "metadata: entry 10: ") {
				t.Fatalf("got %v, want an invalid-record error containing %q", err, c.msg)
			}
			if work.Applied() != 10 {
				t.Fatalf("applied %d after a refused entry, want 10", work.Applied())
			}
			after := dumpImage(work)
			after.Applied = before.Applied
			if d := cmp.Diff(before, after); d != "" {
				t.Fatalf("refused entry changed the image:\n%s", d)
			}
		})
	}
	// Malformed data changes nothing, not even the applied offset.
	if err := im.Apply(10, []byte{entryMagic, 5}); !IsMalformed(err) || im.Applied() != 3 {
		t.Fatalf("malformed entry: %v, applied %d", err, im.Applied())
	}
	if err := im.Apply(3, EncodeEntry(nil)); err == nil || IsInvalid(err) {
		t.Fatalf("entry at the applied offset: %v", err)
	}
}

func TestImageFenceMovesAndRemove(t *testing.T) {
	im := NewImage()
	for i, e := range validEntries() {
		if err := im.Apply(uint64(i+1), e); err != nil {
			t.Fatal(err)
		}
	}
	// Fencing 1 with its leadership moved to 2 in the same entry.
	err := im.Apply(4, EncodeEntry([]Record{
		FenceBrokerRecord{Node: 1, Epoch: 1},
		PartitionChangeRecord{Topic: topicA, Partition: 0, Leader: nodep(2), ISR: []NodeID{2, 3}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := im.Partition(topicA, 0)
	want := Partition{Topic: topicA, Partition: 0, Replicas: []NodeID{1, 2, 3}, ISR: []NodeID{2, 3}, Leader: 2, LeaderEpoch: 1, PartitionEpoch: 1}
	if d := cmp.Diff(want, p); d != "" {
		t.Fatalf("partition after the move (-want +got):\n%s", d)
	}
	if im.Leaderships(2) != 2 || im.Leaderships(1) != 0 {
		t.Fatalf("leaderships 1:%d 2:%d", im.Leaderships(1), im.Leaderships(2))
	}
	// An ISR-only change bumps the partition epoch, not the leader epoch.
	if err := im.Apply(5, EncodeEntry([]Record{PartitionChangeRecord{Topic: topicA, Partition: 0, ISR: []NodeID{2}}})); err != nil {
		t.Fatal(err)
	}
	if p, _ := im.Partition(topicA, 0); p.LeaderEpoch != 1 || p.PartitionEpoch != 2 {
		t.Fatalf("epochs after an ISR change: %+v", p)
	}
	if err := im.Apply(6, EncodeEntry([]Record{RemoveTopicRecord{ID: topicA}})); err != nil {
		t.Fatal(err)
	}
	if _, ok := im.Topic("a"); ok || im.Leaderships(2) != 0 || len(im.Config(ConfigResource{ConfigTopic, "a"})) != 0 {
		t.Fatalf("topic a not fully removed: %+v", dumpImage(im))
	}
	checkImageInvariants(t, im)
	// Unregistered and its epoch stays the floor after a snapshot.
	if err := im.Apply(7, EncodeEntry([]Record{FenceBrokerRecord{Node: 2, Epoch: 2}, UnregisterBrokerRecord{Node: 2, Epoch: 2}, UnregisterBrokerRecord{Node: 3, Epoch: 3}})); err != nil {
		t.Fatal(err)
	}
	snap, idx, _ := im.Snapshot()
	re := NewImage()
	if err := re.Restore(snap, idx); err != nil {
		t.Fatal(err)
	}
	if re.MaxBrokerEpoch() != 3 || re.Applied() != 7 {
		t.Fatalf("restored max epoch %d applied %d", re.MaxBrokerEpoch(), re.Applied())
	}
	if d := cmp.Diff(dumpImage(im), dumpImage(re)); d != "" {
		t.Fatal(d)
	}
	if err := re.Restore(snap[:len(snap)-1], 9); !IsMalformed(err) || re.Applied() != 7 {
		t.Fatalf("truncated snapshot: %v", err)
	}
}

func TestCloneIsIndependent(t *testing.T) {
	im := NewImage()
	for i, e := range validEntries() {
		if err := im.Apply(uint64(i+1), e); err != nil {
			t.Fatal(err)
		}
	}
	before := dumpImage(im)
	c := im.Clone()
	if err := c.Apply(4, EncodeEntry([]Record{
		PartitionChangeRecord{Topic: topicA, Partition: 0, ISR: []NodeID{1}},
		ConfigRecord{Resource: ConfigResource{ConfigTopic, "a"}, Key: "retention.ms", Value: strp("2")},
		RemoveTopicRecord{ID: topicB},
		UnfenceBrokerRecord{Node: 3, Epoch: 3},
	})); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(before, dumpImage(im)); d != "" {
		t.Fatalf("changing a clone changed the original:\n%s", d)
	}
	if maps.Equal(c.Config(ConfigResource{ConfigTopic, "a"}), im.Config(ConfigResource{ConfigTopic, "a"})) {
		t.Fatal("clone did not change")
	}
}
