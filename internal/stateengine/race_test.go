//go:build race

package stateengine_test

const raceEnabled = true
