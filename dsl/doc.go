// Package dsl is Weir's typed, fluent builder for stream-processing
// topologies: Stream, GroupByKey, WindowedBy, Count, To, joins and tables.
// Operations that keep the key and value types are methods; operations that
// change them are package functions (Map, MapValues, Aggregate, Join), since
// Go methods cannot take type parameters. Builder.Build compiles the program
// into a streams.Topology.
package dsl
