package protocol

// JoinGroup, versions 0-9.
//
// Handled by the group coordinator (broker/internal/group): the classic
// protocol with KIP-394 member ids (v4+ answers a first join
// MEMBER_ID_REQUIRED), static membership (v5+), and the leader told to skip
// the assignment when a static leader rejoins a stable group (v9). The
// answer waits until the rebalance's join phase completes.
//
// Deviation: oversized protocol metadata (over 1 MiB in all, or more than 32
// protocols) is answered INVALID_REQUEST; Kafka has no such cap.

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { register(kmsg.JoinGroup, 0, 9, handleGroupRequest) }
