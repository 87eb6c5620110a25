package protocol

// OffsetDelete, version 0. Handled by the group coordinator
// (broker/internal/group): deletes committed offsets of partitions whose
// topic no member of the group subscribes to (GROUP_SUBSCRIBED_TO_TOPIC
// otherwise; a subscription that cannot be decoded counts as subscribed to
// everything).

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { register(kmsg.OffsetDelete, 0, 0, handleGroupRequest) }
