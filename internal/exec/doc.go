// Package exec is Weir's task engine: it runs one sub-topology of a built
// streams.Topology for one partition number (a task). The runtime and the
// test driver (streams/streamstest) both drive tasks through this package,
// so an application's tests run the same code as production.
//
// A task knows nothing of Kafka clients. Its owner (the runtime's worker or
// the driver) drives it like this:
//
//	t, err := exec.NewTask(topo, streams.TaskID{Subtopology: 0, Partition: 3},
//		stores, sink, exec.Options{ApplicationID: "orders-app", Clock: clock})
//	if err := t.Init(); err != nil { ... } // processors' Init; stores open here
//	for each fetched batch of an input partition of the task:
//		t.Add(streams.TopicPartition{Topic: "orders", Partition: 3}, records)
//	for {
//		ok, err := t.Process() // one record, picked in timestamp order
//		if err != nil { ... }  // a *streams.ProcessingError with the record
//		if !ok { break }       // nothing buffered
//	}
//	t.Punctuate(clock.Now())   // fire due wall-clock punctuators
//	if t.CommitNeeded() {
//		t.Commit(ctx)          // flush stores (and their caches and changelogs)
//		// then: flush the producer, commit t.Offsets() for the group
//	}
//	t.Close()
//
// Input records are raw (serialized) and carry their topic, partition and
// offset; internal (repartition) topics arrive under their real, prefixed
// names ("<application>-<name>"). Each input partition has a FIFO queue;
// Process takes the head record with the smallest timestamp among all
// queues, so records of co-partitioned topics interleave by event time.
// Stream time is the largest timestamp processed; stream-time punctuators
// fire from Process as it advances, wall-clock punctuators from Punctuate.
//
// Output records go to the RecordSink the owner passes, with the real topic
// name and Partition set to streams.AnyPartition (the sink partitions by
// the key's murmur2 hash, streams.KeyPartition) unless a node chose one.
//
// Stores come from a StoreProvider: the runtime opens Pebble or in-memory
// stores with changelogs, the driver in-memory stores. A task asks for a
// store when a node first looks it up (usually in Init); the provider returns
// it ready for use (restored from its changelog). The task flushes the stores
// it was given on Commit; the provider owns them and closes them.
//
// Errors from Process are *streams.ProcessingError values carrying a copy
// of the input record; the cause is a *streams.SerdeError when a source
// could not deserialize the record (an owner may then apply its
// deserialization handler: fail, skip and count, dead-letter) or a
// *streams.NodeError naming the node whose processor failed. The record
// counts as consumed either way (Offsets moves past it).
//
// A global sub-topology runs as one task with Partition -1 fed every
// partition of its topics; its stores are shared with every task that reads
// them (StoreSpec.Global), so the provider returns the one instance.
//
// A Task is not safe for concurrent use: one goroutine owns it.
package exec
