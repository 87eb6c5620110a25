package protocol

// DescribeGroups, versions 0-5. Handled by the group coordinator
// (broker/internal/group). An unknown group is described as Dead with no
// error (as Kafka before v6); member metadata and assignments are included
// only while the group is Stable. Authorized operations (v3+), when asked,
// come from the authorizer (authorized_ops.go).

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { register(kmsg.DescribeGroups, 0, 5, handleGroupRequest) }
