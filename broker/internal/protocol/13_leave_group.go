package protocol

// LeaveGroup, versions 0-5. Handled by the group coordinator
// (broker/internal/group). v0-2 remove one member by id; v3+ remove a batch,
// each by member id or static instance id, with a result per member.

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { register(kmsg.LeaveGroup, 0, 5, handleGroupRequest) }
