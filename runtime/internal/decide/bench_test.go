package decide

import (
	"testing"
	"time"

	"github.com/weir-dev/weir/streams"
)

// BenchmarkMayProcess is the readiness check the loop makes before each
// record of a task with two inputs, both with records buffered.
func BenchmarkMayProcess(b *testing.B) {
	m, _ := New(Options{})
	a, c := streams.TopicPartition{Topic: "a"}, streams.TopicPartition{Topic: "c"}
	id := streams.TaskID{}
	m.Step(epoch, TaskStarted{Task: id, Inputs: []streams.TopicPartition{a, c}})
	m.Step(epoch, Polled{})
	m.Step(epoch, Fetched{Partition: a, OK: true, End: 100, Records: 100, First: 0, Last: 99})
	m.Step(epoch, Fetched{Partition: c, OK: true, End: 100, Records: 100, First: 0, Last: 99})
	next := map[streams.TopicPartition]streams.Offset{a: 50, c: 50}
	t := m.Task(id)
	b.ReportAllocs()
	for b.Loop() {
		if ready, _ := t.MayProcess(epoch, 100, next); !ready {
			b.Fatal("not ready")
		}
	}
}

// BenchmarkStepFetched is what the loop steps per partition of a poll.
func BenchmarkStepFetched(b *testing.B) {
	m, _ := New(Options{})
	a := streams.TopicPartition{Topic: "a"}
	m.Step(epoch, TaskStarted{Task: streams.TaskID{}, Inputs: []streams.TopicPartition{a}})
	now := epoch.Add(time.Second)
	b.ReportAllocs()
	o := streams.Offset(0)
	for b.Loop() {
		m.Step(now, Fetched{Partition: a, OK: true, End: int64(o) + 10, Records: 10, First: o, Last: o + 9})
		o += 10
	}
}
