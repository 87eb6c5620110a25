package protocol

// DeleteGroups, versions 0-2. Handled by the group coordinator
// (broker/internal/group): a group without members is deleted with all its
// committed offsets (tombstones in __consumer_offsets); one with members gets
// NON_EMPTY_GROUP, an unknown one GROUP_ID_NOT_FOUND.

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { register(kmsg.DeleteGroups, 0, 2, handleGroupRequest) }
