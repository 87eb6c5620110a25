// Package dsl is Weir's typed, fluent builder for stream-processing
// topologies: Stream, GroupByKey, WindowedBy, Count, To, joins and tables.
// Operations that keep the key and value types are methods; operations that
// change them are package functions (Map, MapValues, Aggregate, Join), since
// Go methods cannot take type parameters. Builder.Build compiles the program
// into a validated streams.Topology.
//
//	b := dsl.NewBuilder()
//	orders := dsl.Stream(b, "orders", serde.String(), serde.Msgpack[Order]())
//	orders.GroupByKey().
//		WindowedBy(dsl.TumblingWindows(time.Minute).Grace(10 * time.Second)).
//		Count().
//		ToStream().
//		To("order-counts-per-minute")
//	topo, err := b.Build()
//
// Streams (KStream) offer Filter, FilterNot, Map, MapValues, FlatMap,
// FlatMapValues, SelectKey, Peek, Foreach, Split, Merge, Repartition,
// Process (the Processor API, with stores from AddStore), To, ToFunc and
// ToTable. Grouping (GroupByKey, GroupBy) leads to Count, Reduce and
// Aggregate, unwindowed or over tumbling and hopping (WindowedBy), sliding
// (WindowedBySliding) and session (WindowedBySession) windows, each with a
// grace period; Cogroup aggregates several grouped streams together.
// Windowed aggregations return a WindowedKTable (rows keyed by Windowed[K];
// see its documentation for why it is a type of its own) with Suppress.
// Tables (Table, ToTable, aggregations) are materialized and queryable by
// store name, with Filter, TableMapValues, ToStream, ChangeStream, To and
// re-grouping (GroupTable with AggregateTable's adder and subtractor).
// Joins: stream-stream (Join, LeftJoin, OuterJoin with JoinWindows),
// stream-table (JoinTable, LeftJoinTable), table-table (JoinTables,
// LeftJoinTables, OuterJoinTables) and stream-global-table (JoinGlobal,
// LeftJoinGlobal), following the Kafka Streams join semantics.
//
// A key change (Map, SelectKey, FlatMap, Process) makes the next grouping,
// join or ToTable repartition through an internal topic; joins record their
// input topics as a co-partitioning requirement. Serdes left nil come from
// the builder's defaults (DefaultSerde) at Build; a serde still missing is
// a Build error naming the node.
package dsl
