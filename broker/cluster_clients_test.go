package broker

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClusterKcat: kcat produces to and consumes from a 3-node cluster
// whose topic's partition leaders sit on different brokers, bootstrapping
// from one broker only; every record comes back from the partition it was
// produced to.
func TestClusterKcat(t *testing.T) {
	kcat := requireTool(t, "kcat", "apt-get install kcat")
	c := startTestCluster(t, 3)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const parts = 6
	eventually(t, 15*time.Second, "create kc3 with replication factor 3", func() error {
		_, err := adm.CreateTopic(ctx, parts, 3, nil, "kc3")
		return err
	})
	leaders := map[int32]bool{}
	eventually(t, 10*time.Second, "kc3's leaders on 2 or more brokers", func() error {
		md, err := adm.Metadata(ctx, "kc3")
		if err != nil {
			return err
		}
		clear(leaders)
		for _, p := range md.Topics["kc3"].Partitions {
			if p.Leader >= 0 {
				leaders[p.Leader] = true
			}
		}
		if len(md.Topics["kc3"].Partitions) != parts || len(leaders) < 2 {
			return fmt.Errorf("partitions %v, leaders %v", md.Topics["kc3"].Partitions, leaders)
		}
		return nil
	})
	t.Logf("kc3 leaders on brokers %v", leaders)

	seed := c.brokers[0].Addr()
	want := map[int][]string{}
	for p := range parts {
		var lines []string
		for i := range 5 {
			lines = append(lines, fmt.Sprintf("p%d-r%d", p, i))
		}
		want[p] = lines
		run(t, strings.Join(lines, "\n")+"\n", kcat, "-b", seed, "-t", "kc3", "-P", "-p", fmt.Sprint(p))
	}
	got := map[int][]string{}
	for p := range parts {
		out := run(t, "", kcat, "-b", seed, "-C", "-t", "kc3", "-p", fmt.Sprint(p), "-o", "beginning", "-e", "-q", "-f", "%s\n")
		got[p] = strings.Fields(out)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("kcat consumed per partition (-want +got):\n%s", diff)
	}
}
