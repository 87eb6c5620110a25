package protocol

// DescribeLogDirs, versions 0-4.
//
// A broker has one log directory, its data directory: the answer lists it
// with the size of every partition this broker holds a log for (the bytes
// of whole batches in its segment files), either all of them (Topics
// null) or those asked for; a topic or partition asked for that this
// broker does not hold is left out, as Kafka does. Deviation: a topic
// asked for with no partitions is described whole (Kafka describes none
// of it), which is what a client asking by topic name means. OffsetLag is 0 and
// IsFuture false: there are no future replicas (no directory moves).
// v4's TotalBytes and UsableBytes are the filesystem's (statfs), -1 where
// they cannot be had. Needs DESCRIBE on the cluster; without it v3+
// answers CLUSTER_AUTHORIZATION_FAILED at the top and older versions an
// empty list (authz_rules.go).

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/topics"
)

func init() { register(kmsg.DescribeLogDirs, 0, 4, handleDescribeLogDirs) }

// sizer is a partition log that knows its size (the storage package's).
type sizer interface{ Size() int64 }

func handleDescribeLogDirs(_ context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DescribeLogDirsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = s.Topics.Dir()
	dir.TotalBytes, dir.UsableBytes = diskSpace(dir.Dir)

	add := func(t *topics.Topic, parts []int32) {
		rt := kmsg.NewDescribeLogDirsResponseDirTopic()
		rt.Topic = t.Name()
		for _, i := range parts {
			p, ok := t.Partition(i)
			if !ok || p.Log() == nil {
				continue
			}
			sz, ok := p.Log().(sizer)
			if !ok {
				continue
			}
			rp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			rp.Partition = i
			rp.Size = sz.Size()
			rt.Partitions = append(rt.Partitions, rp)
		}
		if len(rt.Partitions) > 0 {
			dir.Topics = append(dir.Topics, rt)
		}
	}
	all := func(t *topics.Topic) []int32 {
		ps := make([]int32, t.NumPartitions())
		for i := range ps {
			ps[i] = int32(i)
		}
		return ps
	}
	if req.Topics == nil {
		ts := s.Topics.List()
		sort.Slice(ts, func(i, j int) bool { return ts[i].Name() < ts[j].Name() })
		for _, t := range ts {
			add(t, all(t))
		}
	} else {
		for _, rt := range req.Topics {
			if t, ok := s.Topics.Get(rt.Topic); ok {
				parts := rt.Partitions
				if len(parts) == 0 {
					parts = all(t)
				}
				add(t, parts)
			}
		}
	}
	resp.Dirs = []kmsg.DescribeLogDirsResponseDir{dir}
	return resp, nil
}
