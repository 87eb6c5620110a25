package ownership

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// The files under testdata/tracker drive a Tracker:
//
//	step
//	P: leader|follower epoch=E [ready]     (one line per partition, in order)
//	loaded P                                (the load Step asked for succeeded)
//	failed P                                (it failed)
//
// step prints what to unload and load; every command then prints the
// partitions served and their epochs.
func TestTrackerScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/tracker", func(t *testing.T, path string) {
		tr := NewTracker()
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			var out strings.Builder
			part := func() int32 {
				if len(td.CmdArgs) != 1 {
					t.Fatalf("%s: %s wants one partition", td.Pos, td.Cmd)
				}
				n, err := strconv.Atoi(td.CmdArgs[0].Key)
				if err != nil {
					t.Fatalf("%s: %v", td.Pos, err)
				}
				return int32(n)
			}
			switch td.Cmd {
			case "step":
				obs := parseObservations(t, td)
				unload, load := tr.Step(obs)
				fmt.Fprintf(&out, "unload %v load %v\n", unload, load)
			case "loaded":
				tr.Loaded(part())
			case "failed":
				tr.Failed(part())
			default:
				t.Fatalf("%s: unknown command %q", td.Pos, td.Cmd)
			}
			parts, epochs := tr.Serving()
			out.WriteString("serving")
			for i, p := range parts {
				fmt.Fprintf(&out, " %d@%d", p, epochs[i])
			}
			out.WriteString("\n")
			return out.String()
		})
	})
}

func parseObservations(t *testing.T, td *datadriven.TestData) []Observation {
	var obs []Observation
	for _, line := range strings.Split(strings.TrimSpace(td.Input), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		idx, rest, ok := strings.Cut(line, ":")
		p, err := strconv.Atoi(strings.TrimSpace(idx))
		if !ok || err != nil || p != len(obs) {
			t.Fatalf("%s: line %q: want \"%d: leader|follower epoch=E [ready]\"", td.Pos, line, len(obs))
		}
		var o Observation
		for _, f := range strings.Fields(rest) {
			switch {
			case f == "leader":
				o.Leader = true
			case f == "follower":
			case f == "ready":
				o.Ready = true
			case strings.HasPrefix(f, "epoch="):
				e, err := strconv.Atoi(strings.TrimPrefix(f, "epoch="))
				if err != nil {
					t.Fatalf("%s: line %q: %v", td.Pos, line, err)
				}
				o.Epoch = int32(e)
			default:
				t.Fatalf("%s: line %q: unknown field %q", td.Pos, line, f)
			}
		}
		obs = append(obs, o)
	}
	return obs
}
