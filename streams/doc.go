// Package streams is Weir's core stream-processing model: records, headers,
// serdes, the Processor API and the Topology that the dsl package compiles to
// and the runtime executes.
//
// A Topology is a graph of source, processor and sink nodes, grouped into
// sub-topologies that share no state. The runtime runs one task per
// sub-topology and input partition; the streamstest package runs the same
// task code in-process, with no broker.
package streams
