package protocol

import (
	"testing"
	"time"
)

// Repeated failures from one address are answered ever more slowly, up to
// a bound; another address, or the same after a quiet minute, starts over.
func TestSASLFailureDelay(t *testing.T) {
	st := newSecurityState()
	t0 := time.Unix(1000, 0)
	var got []time.Duration
	for i := range 9 {
		got = append(got, st.failed("10.0.0.1", t0.Add(time.Duration(i)*time.Second)))
	}
	want := []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second, 5 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays %v, want %v", got, want)
		}
	}
	if d := st.failed("10.0.0.2", t0.Add(9*time.Second)); d != 0 {
		t.Fatalf("first failure of another address delayed %v", d)
	}
	if d := st.failed("10.0.0.1", t0.Add(8*time.Second+failureWindow+time.Second)); d != 0 {
		t.Fatalf("failure after a quiet window delayed %v", d)
	}
}
