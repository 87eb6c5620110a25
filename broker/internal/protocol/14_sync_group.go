package protocol

// SyncGroup, versions 0-5. Handled by the group coordinator
// (broker/internal/group): the leader's assignment is stored and handed to
// every member as opaque bytes; the answer waits for the leader's SyncGroup.

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { register(kmsg.SyncGroup, 0, 5, handleGroupRequest) }
