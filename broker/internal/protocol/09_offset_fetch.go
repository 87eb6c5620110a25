package protocol

// OffsetFetch, versions 0-8 (v8: several groups in one request). Handled by
// the group coordinator (broker/internal/group). Partitions without a
// commit answer offset -1; a null topic list returns every committed
// partition of the group. RequireStable (v7+) needs no waiting: there are
// no transactional commits.

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { register(kmsg.OffsetFetch, 0, 8, handleGroupRequest) }
