package protocol

// ListGroups, versions 0-4 (v4 filters by state). Handled by the group
// coordinator (broker/internal/group). Groups that only commit offsets are
// listed with an empty protocol type, as in Kafka.

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { register(kmsg.ListGroups, 0, 4, handleGroupRequest) }
