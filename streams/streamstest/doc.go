// Package streamstest runs a streams.Topology in-process, synchronously and
// deterministically, over in-memory topics, the way net/http/httptest runs a
// handler without a network. It is what an application's go test imports.
//
// The driver runs the same task code as the runtime (internal/exec): one
// task per sub-topology and partition, records picked in timestamp order,
// stream time, punctuators, repartition topics. Topics may have any number
// of partitions (DefaultPartitions, Partitions); keys are partitioned with
// Kafka's murmur2 partitioner, so repartitioning and co-partitioning are
// exercised as in production. Piping a record processes it, and everything
// it causes downstream, before the call returns; the tasks commit (flush
// their stores) after each piped record unless CommitEvery says otherwise.
// Stores are in memory, with changelogs written to driver topics;
// Driver.Restart simulates a crash and restart (stores restored from their
// changelogs, uncommitted input read again).
//
// A complete test:
//
//	func TestOrdersPerMinute(t *testing.T) {
//		b := dsl.NewBuilder()
//		dsl.Stream(b, "orders", serde.String(), serde.Msgpack[Order]()).
//			GroupByKey().
//			WindowedBy(dsl.TumblingWindows(time.Minute).Grace(10 * time.Second)).
//			Count(dsl.Named("count")).
//			Suppress(dsl.UntilWindowCloses()).
//			ToStream().
//			To("order-counts")
//		topo, err := b.Build()
//		if err != nil {
//			t.Fatal(err)
//		}
//
//		d := streamstest.New(t, topo) // closed by t.Cleanup
//		in := streamstest.CreateInputTopic(d, "orders", serde.String(), serde.Msgpack[Order]())
//		out := streamstest.CreateOutputTopic(d, "order-counts",
//			dsl.WindowedSerde(serde.String(), time.Minute), serde.Int64())
//
//		in.PipeAt("alice", Order{ID: "o1"}, time.UnixMilli(0))
//		in.PipeAt("alice", Order{ID: "o2"}, time.UnixMilli(30_000))
//		in.PipeAt("bob", Order{ID: "o3"}, time.UnixMilli(75_000)) // closes [0s, 60s)
//
//		got := out.ReadKeyValues()
//		want := []dsl.KeyValue[dsl.Windowed[string], int64]{{
//			Key:   dsl.Windowed[string]{Key: "alice", Window: dsl.Window{Start: time.UnixMilli(0), End: time.UnixMilli(60_000)}},
//			Value: 2,
//		}}
//		if diff := cmp.Diff(want, got); diff != "" {
//			t.Errorf("final counts (-want +got):\n%s", diff)
//		}
//		if n := d.Metrics().Dropped[streams.Drop{Node: "count", Reason: streams.DropLate}]; n != 0 {
//			t.Errorf("%d late records", n)
//		}
//	}
//
// Input topics pipe typed records into topics the topology reads (any other
// topic is refused, naming the ones it reads): Pipe (auto-advancing timestamps, see
// AutoAdvance), PipeAt, PipeRecord (key, value, timestamp, headers),
// PipeList, PipeRaw (serialized bytes, nil values as tombstones); the Try
// forms return the error instead of failing the test. An error from user
// code is a *streams.ProcessingError carrying the input record, wrapping a
// *streams.NodeError naming the node.
//
// Output topics read typed records in the order they were written:
// ReadRecord, ReadRecords, ReadKeyValue(s), ReadKeyValuesToMap (latest value
// per key), IsEmpty and QueueSize. Stores are read by name with
// GetKeyValueStore, GetWindowStore and GetSessionStore, or with the typed
// query views the runtime's Application answers too (QueryKeyValue,
// QueryWindow, QuerySession: the same state views, so a query path is
// tested here without a broker). AdvanceWallClock
// fires wall-clock punctuators; Metrics reports processed, punctuated and
// dropped records (by node and streams.DropReason). Reading a topic the
// topology neither reads nor writes is refused too, unless a sink chooses
// its topic per record.
package streamstest
