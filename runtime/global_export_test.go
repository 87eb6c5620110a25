package runtime

import "github.com/weir-dev/weir/streams"

// GlobalOffsets returns, per partition of the global topics, the next
// offset the instance's global stores will read: every record below it is
// applied.
func (a *Application) GlobalOffsets() map[streams.TopicPartition]streams.Offset {
	return a.a.GlobalOffsets()
}
