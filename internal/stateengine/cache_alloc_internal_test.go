package stateengine

import "testing"

// TestAllocSize checks allocSize against the size classes it rounds to: the
// smallest class that holds n, whole pages past 32 KiB.
func TestAllocSize(t *testing.T) {
	for n := 1; n <= 40000; n++ {
		want := int64((n + 8191) &^ 8191)
		for _, c := range sizeClasses {
			if int(c) >= n {
				want = int64(c)
				break
			}
		}
		if got := allocSize(n); got != want {
			t.Fatalf("allocSize(%d) = %d, want %d", n, got, want)
		}
	}
	if allocSize(0) != 0 {
		t.Fatal("allocSize(0) != 0")
	}
}
