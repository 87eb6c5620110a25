package replica

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// The files under testdata/leader drive a Leader:
//
//	new self=N replicas=(1,2,3) isr=(1,2,3) epoch=E pepoch=P leo=O hw=O lag=D
//	fetch replica=N offset=O [leo=O]   (leo: the leader's end at the fetch; default unchanged)
//	append leo=O durable=O             (the leader's own log)
//	advance D                          (the clock)
//	propose                            (ProposeISR now)
//	committed isr=(..) pepoch=P        (ISRCommitted)
//	refused                            (ISRRefused)
//	lagging                            (Lagging now)
//
// Every command prints the state after it.
func TestLeaderScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/leader", func(t *testing.T, path string) {
		var l *Leader
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			arg := func(k, def string) string {
				if a, ok := td.Arg(k); ok && len(a.Vals) > 0 {
					return a.Vals[0]
				}
				return def
			}
			num := func(k, def string) int64 {
				n, err := strconv.ParseInt(arg(k, def), 10, 64)
				if err != nil {
					t.Fatalf("%s: %s=%q: %v", td.Pos, k, arg(k, def), err)
				}
				return n
			}
			nodes := func(k string) []NodeID {
				a, ok := td.Arg(k)
				if !ok {
					t.Fatalf("%s: %s missing", td.Pos, k)
				}
				var out []NodeID
				for _, v := range a.Vals {
					for _, s := range strings.Split(v, ",") {
						n, err := strconv.Atoi(strings.TrimSpace(s))
						if err != nil {
							t.Fatalf("%s: %s: %v", td.Pos, k, err)
						}
						out = append(out, NodeID(n))
					}
				}
				return out
			}
			var out string
			switch td.Cmd {
			case "new":
				lag, err := time.ParseDuration(arg("lag", "10s"))
				if err != nil {
					t.Fatal(err)
				}
				l = NewLeader(NodeID(num("self", "1")), lag, now, LeaderState{
					Epoch: int32(num("epoch", "0")), PartitionEpoch: int32(num("pepoch", "0")),
					Replicas: nodes("replicas"), ISR: nodes("isr"), LEO: Offset(num("leo", "0")), HW: Offset(num("hw", "0")),
				})
			case "fetch":
				leo := Offset(num("leo", strconv.FormatInt(int64(l.leo), 10)))
				if !l.Fetched(now, NodeID(num("replica", "")), Offset(num("offset", "")), leo) {
					out = "not a replica\n"
				}
			case "append":
				l.Appended(Offset(num("leo", "")), Offset(num("durable", "")))
			case "advance":
				d, err := time.ParseDuration(td.CmdArgs[0].Key)
				if err != nil {
					t.Fatal(err)
				}
				now = now.Add(d)
			case "propose":
				isr, pe, ok := l.ProposeISR(now)
				if ok {
					out = fmt.Sprintf("propose isr=%v pepoch=%d\n", isr, pe)
				} else {
					out = "no change\n"
				}
			case "committed":
				l.ISRCommitted(now, nodes("isr"), int32(num("pepoch", "")))
			case "refused":
				l.ISRRefused()
			case "lagging":
				out = fmt.Sprintf("lagging %t\n", l.Lagging(now))
			default:
				t.Fatalf("%s: unknown command %q", td.Pos, td.Cmd)
			}
			return out + l.String()
		})
	})
}
