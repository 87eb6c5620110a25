// Package link hands package streams' task-graph constructor to package
// internal/taskgraph.
//
// The nodes of a task graph are generic (a processor instance is typed by
// its record types), so they can only be instantiated inside package
// streams, where AddProcessor knows the types. The task engine needs to
// build and drive those graphs, but the way it does so is not part of
// streams' public API. internal/taskgraph cannot be imported by streams
// (it imports streams), so streams registers its constructor here, in a
// package that imports nothing, and internal/taskgraph takes it from here
// and gives it its type. No other package should use this one.
package link

// NewTaskGraph is set by package streams when it is initialized. Its
// dynamic type is the function type of internal/taskgraph.New; that
// package checks it when it is initialized.
var NewTaskGraph any
