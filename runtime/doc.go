// Package runtime runs a streams.Topology as an application against a
// Kafka-compatible log: Weir's embedded broker by default, or any external
// cluster. It is a franz-go application: instances join a consumer group
// named by the application id, tasks are assigned to instances, and each task
// restores its stores from their changelogs before it processes.
//
// An instance answers interactive queries of its stores: typed views in Go
// (QueryKeyValue, QueryWindow, QuerySession), where a key's task runs
// (KeyLocation, from the query addresses the instances advertise in the
// group), and with the QueryAddr option an HTTP/JSON endpoint that forwards
// a key held by another instance to it (see query.go).
package runtime
