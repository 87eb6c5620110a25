package protocol

// Heartbeat, versions 0-4. Handled by the group coordinator
// (broker/internal/group): keeps a member's session alive and tells it of a
// rebalance (REBALANCE_IN_PROGRESS), a stale generation
// (ILLEGAL_GENERATION), or that it is gone (UNKNOWN_MEMBER_ID,
// FENCED_INSTANCE_ID).

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { register(kmsg.Heartbeat, 0, 4, handleGroupRequest) }
