//go:build race

package metadata

// raceEnabled: the random tests here run on one goroutine, so the race
// detector finds nothing in them and only slows them about tenfold; they
// take fewer steps under it.
const raceEnabled = true
