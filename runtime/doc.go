// Package runtime runs a streams.Topology as an application against a
// Kafka-compatible log: Weir's embedded broker by default, or any external
// cluster. It is a franz-go application: instances join a consumer group
// named by the application id, tasks are assigned to instances, and each task
// restores its stores from their changelogs before it processes.
package runtime
