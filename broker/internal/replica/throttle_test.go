package replica

import (
	"fmt"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// The files under testdata/throttle drive a Throttle with its own clock:
//
//	rate N       (SetRate: bytes per second; 0: unlimited)
//	advance D    (the clock)
//	take N       (Take: N bytes fetched)
//
// Every command prints what the bucket allows after it: the bytes
// available now and the delay until one is.
func TestThrottleScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/throttle", func(t *testing.T, path string) {
		var th Throttle
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			num := func() int64 {
				n, err := strconv.ParseInt(td.CmdArgs[0].Key, 10, 64)
				if err != nil {
					t.Fatalf("%s: %v", td.Pos, err)
				}
				return n
			}
			switch td.Cmd {
			case "rate":
				th.SetRate(now, num())
			case "advance":
				d, err := time.ParseDuration(td.CmdArgs[0].Key)
				if err != nil {
					t.Fatal(err)
				}
				now = now.Add(d)
			case "take":
				th.Take(now, int(num()))
			default:
				t.Fatalf("%s: unknown command %q", td.Pos, td.Cmd)
			}
			avail := th.Available(now)
			if avail == math.MaxInt64 {
				return "unlimited"
			}
			return fmt.Sprintf("available=%d delay=%v", avail, th.Delay(now))
		})
	})
}
