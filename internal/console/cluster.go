package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/weir-dev/weir/internal/cli"
)

// Cluster is /api/cluster's answer.
type Cluster struct {
	ClusterID string `json:"cluster_id"`
	// Controller is the node clients send controller requests to, -1 if
	// none is known.
	Controller int32 `json:"controller"`
	// Nodes are the brokers and controller voters, by node id.
	Nodes []ClusterNode `json:"nodes"`
	// Partitions counts the cluster's partitions; UnderReplicated and
	// Offline list the unhealthy ones.
	Partitions      int            `json:"partitions"`
	Topics          int            `json:"topics"`
	UnderReplicated []PartitionRef `json:"under_replicated"`
	Offline         []PartitionRef `json:"offline"`
	Disk            Disk           `json:"disk"`
}

// ClusterNode is a broker or voter: what `weir cluster describe` shows of
// it, with its rack.
type ClusterNode struct {
	cli.ClusterNode
	Rack string `json:"rack,omitempty"`
	// Leaders is how many partitions it leads.
	Leaders int `json:"leaders"`
}

// PartitionRef names an unhealthy partition with its replica sets.
type PartitionRef struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Leader    int32   `json:"leader"`
	Replicas  []int32 `json:"replicas"`
	ISR       []int32 `json:"isr"`
	Error     string  `json:"error,omitempty"`
}

// Disk is the cluster's disk use as DescribeLogDirs answers it.
type Disk struct {
	// Available is false when the brokers do not answer DescribeLogDirs;
	// Reason then says why.
	Available bool      `json:"available"`
	Reason    string    `json:"reason,omitempty"`
	Dirs      []DiskDir `json:"dirs,omitempty"`
}

// DiskDir is one log directory of one broker.
type DiskDir struct {
	Broker int32  `json:"broker"`
	Dir    string `json:"dir"`
	// Bytes is the size of the partitions' logs in it.
	Bytes int64 `json:"bytes"`
	// TotalBytes and UsableBytes are the volume's, -1 when unreported.
	TotalBytes  int64  `json:"total_bytes"`
	UsableBytes int64  `json:"usable_bytes"`
	Error       string `json:"error,omitempty"`
}

func (s *Server) cluster(ctx context.Context, _ *http.Request) (any, error) {
	var buf bytes.Buffer
	if err := cli.DescribeCluster(ctx, s.cl, &buf, cli.Output{JSON: true}); err != nil {
		return nil, err
	}
	var d cli.ClusterDescription
	if err := json.Unmarshal(buf.Bytes(), &d); err != nil {
		return nil, fmt.Errorf("console: decode cluster description: %w", err)
	}
	md, err := s.adm.Metadata(ctx)
	if err != nil {
		return nil, fmt.Errorf("console: metadata: %w", err)
	}
	c := Cluster{ClusterID: d.ClusterID, Controller: d.Controller, Topics: len(md.Topics),
		UnderReplicated: []PartitionRef{}, Offline: []PartitionRef{}}
	leaders := map[int32]int{}
	for _, t := range md.Topics.Sorted() {
		for _, p := range t.Partitions.Sorted() {
			c.Partitions++
			ref := PartitionRef{Topic: t.Topic, Partition: p.Partition, Leader: p.Leader, Replicas: orEmpty(p.Replicas), ISR: orEmpty(p.ISR)}
			if p.Err != nil {
				ref.Error = cli.KafkaError(p.Err, "").Error()
			}
			switch {
			case p.Leader < 0 || p.Err != nil:
				c.Offline = append(c.Offline, ref)
			case len(p.ISR) < len(p.Replicas):
				c.UnderReplicated = append(c.UnderReplicated, ref)
			}
			if p.Leader >= 0 {
				leaders[p.Leader]++
			}
		}
	}
	racks := map[int32]string{}
	for _, b := range md.Brokers {
		if b.Rack != nil {
			racks[b.NodeID] = *b.Rack
		}
	}
	for _, n := range d.Nodes {
		c.Nodes = append(c.Nodes, ClusterNode{ClusterNode: n, Rack: racks[n.ID], Leaders: leaders[n.ID]})
	}
	c.Disk = s.disk(ctx)
	return c, nil
}

// disk asks every broker for its log directories. A cluster that does not
// answer DescribeLogDirs (an older broker, or an authorizer denying it)
// makes the disk use unavailable, saying so, rather than failing the page.
func (s *Server) disk(ctx context.Context) Disk {
	dirs, err := s.adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		return Disk{Reason: "the brokers do not answer DescribeLogDirs: " + err.Error()}
	}
	var out Disk
	out.Available = true
	for _, byDir := range dirs {
		for _, d := range byDir {
			dd := DiskDir{Broker: d.Broker, Dir: d.Dir, Bytes: d.Size(), TotalBytes: d.TotalBytes, UsableBytes: d.UsableBytes}
			if d.Err != nil {
				dd.Error = cli.KafkaError(d.Err, "").Error()
			}
			out.Dirs = append(out.Dirs, dd)
		}
	}
	slices.SortFunc(out.Dirs, func(a, b DiskDir) int {
		if a.Broker != b.Broker {
			return int(a.Broker - b.Broker)
		}
		return compareStrings(a.Dir, b.Dir)
	})
	return out
}

// partitionSizes returns the bytes of each partition of topic by
// DescribeLogDirs (the largest of its replicas), or nil when the brokers
// do not answer it.
func (s *Server) partitionSizes(ctx context.Context, topic string) map[int32]int64 {
	set := kadm.TopicsSet{}
	set.Add(topic)
	dirs, err := s.adm.DescribeAllLogDirs(ctx, set)
	if err != nil {
		return nil
	}
	out := map[int32]int64{}
	for _, byDir := range dirs {
		for _, d := range byDir {
			for _, p := range d.Topics[topic] {
				out[p.Partition] = max(out[p.Partition], p.Size)
			}
		}
	}
	return out
}

func orEmpty(v []int32) []int32 {
	if v == nil {
		return []int32{}
	}
	return v
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// itoa is strconv.Itoa for an int32.
func itoa(v int32) string { return strconv.Itoa(int(v)) }
