// Package broker is Weir's log: a partitioned, durable commit log that
// speaks the Apache Kafka wire protocol, so that existing Kafka clients and
// tools work against it unchanged.
//
// Start one in-process (tests, benchmarks, embedded applications) with Open
// and read the bound address with Addr:
//
//	b, err := broker.Open(broker.Options{Listen: "127.0.0.1:0", DataDir: dir})
//	if err != nil { ... }
//	defer b.Close()
//	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
//
// or run one until a context ends with ListenAndServe (what `weir broker`
// does). Close is graceful: requests in hand are answered, waiting fetches
// return at once, and every partition log is synced and closed.
//
// Storage lives in broker/internal/storage, the protocol server and its
// per-API handlers in broker/internal/protocol, the topic registry in
// broker/internal/topics, and the group coordinator in
// broker/internal/group. This package ties them into a server.
package broker
