package replica

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/metadata"
)

// ThrottleRateConfig is the broker config (dynamic, through
// IncrementalAlterConfigs on the cluster-wide broker resource or on one
// broker's) that caps, in bytes per second, what a follower fetches for
// the replicas a reassignment is adding, until they join the ISR. It is
// Kafka's follower.replication.throttled.rate, with a simpler scope: the
// throttled replicas are always exactly the catching-up reassignment
// targets (Kafka lists them in *.replication.throttled.replicas topic
// configs), and ISR members' replication is never throttled. Unset or 0:
// no throttle.
const ThrottleRateConfig = "follower.replication.throttled.rate"

// Throttle is a token bucket of bytes, refilled at a rate per second up
// to one second's worth. A fetch asks Available before it goes and Takes
// what it got after: a fetch returns at least one whole batch, so the
// bucket may go into debt, which later refills pay back before anything
// more is allowed. It is a pure state machine: the time is an argument.
// A Throttle is not safe for concurrent use.
type Throttle struct {
	rate   float64 // bytes per second; 0: unlimited
	tokens float64 // at most rate; negative: debt
	last   time.Time
}

// SetRate changes the rate (bytes per second; 0 or less: unlimited). A new
// or changed rate starts with a full second's worth.
func (t *Throttle) SetRate(now time.Time, rate int64) {
	r := float64(max(rate, 0))
	if r == t.rate {
		return
	}
	t.rate, t.tokens, t.last = r, r, now
}

func (t *Throttle) refill(now time.Time) {
	if el := now.Sub(t.last); el > 0 {
		t.tokens = math.Min(t.rate, t.tokens+t.rate*el.Seconds())
		t.last = now
	}
}

// Available returns how many bytes may be fetched now: math.MaxInt64 when
// unlimited, 0 while the bucket is empty or in debt.
func (t *Throttle) Available(now time.Time) int64 {
	if t.rate == 0 {
		return math.MaxInt64
	}
	t.refill(now)
	return max(int64(t.tokens), 0)
}

// Take records n bytes fetched at now.
func (t *Throttle) Take(now time.Time, n int) {
	if t.rate == 0 {
		return
	}
	t.refill(now)
	t.tokens -= float64(n)
}

// Delay returns how long until at least one byte is available again; 0 if
// one is now.
func (t *Throttle) Delay(now time.Time) time.Duration {
	if t.rate == 0 {
		return 0
	}
	t.refill(now)
	if t.tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - t.tokens) / t.rate * float64(time.Second)))
}

// setThrottle takes the throttle rate from img: this broker's own broker
// config, else the cluster-wide one. Caller holds m.mu.
func (m *Manager) setThrottle(img *metadata.Image, now time.Time) {
	rate := int64(0)
	for _, name := range []string{strconv.Itoa(int(m.opts.Self)), ""} {
		if v, ok := img.Config(metadata.ConfigResource{Type: metadata.ConfigBroker, Name: name})[ThrottleRateConfig]; ok {
			rate, _ = strconv.ParseInt(v, 10, 64) // checked when set (CheckThrottleRate)
			break
		}
	}
	m.thrMu.Lock()
	m.throttle.SetRate(now, rate)
	m.thrMu.Unlock()
}

// CheckThrottleRate checks a value of ThrottleRateConfig: bytes per second,
// a non-negative integer.
func CheckThrottleRate(v string) error {
	if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 {
		return fmt.Errorf("replica: %s=%q: want bytes per second, a whole number >= 0 (0: no throttle)", ThrottleRateConfig, v)
	}
	return nil
}

// throttleParts drops the throttled partitions from a fetch while the
// bucket is empty, and returns the byte cap of each throttled partition
// left (its share of what the bucket allows) and how long to wait when
// nothing at all is left to fetch.
func (m *Manager) throttleParts(parts []fetchPart) ([]fetchPart, int32, time.Duration) {
	n := 0
	for _, fp := range parts {
		if fp.throttled {
			n++
		}
	}
	if n == 0 {
		return parts, 0, 0
	}
	now := m.opts.Now()
	m.thrMu.Lock()
	avail, delay := m.throttle.Available(now), m.throttle.Delay(now)
	m.thrMu.Unlock()
	if avail > 0 {
		return parts, int32(min(max(avail/int64(n), 1), partitionMaxBytes)), 0
	}
	kept := parts[:0:0]
	for _, fp := range parts {
		if !fp.throttled {
			kept = append(kept, fp)
		}
	}
	return kept, 0, delay
}

// throttleTake charges the bucket with the bytes a fetch returned for its
// throttled partitions.
func (m *Manager) throttleTake(parts []fetchPart, resp *kmsg.FetchResponse) {
	got := 0
	for _, fp := range parts {
		if !fp.throttled {
			continue
		}
		for i := range resp.Topics {
			if resp.Topics[i].Topic != fp.ps.name {
				continue
			}
			for j := range resp.Topics[i].Partitions {
				if rp := &resp.Topics[i].Partitions[j]; rp.Partition == fp.ps.key.p {
					got += len(rp.RecordBatches)
				}
			}
		}
	}
	if got == 0 {
		return
	}
	m.thrMu.Lock()
	m.throttle.Take(m.opts.Now(), got)
	m.thrMu.Unlock()
}
