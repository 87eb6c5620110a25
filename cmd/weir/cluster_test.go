package main

import (
	"strings"
	"testing"
)

// TestClusterElectLeadersFlags: --partition alone names no topic and is
// refused before anything is sent (the elections themselves are tested
// against an in-process cluster: broker.TestClusterElectLeaders).
func TestClusterElectLeadersFlags(t *testing.T) {
	_, err := runWeir(t, "", "cluster", "elect-leaders", "--partition", "2", "--brokers", "127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "--partition 2 needs --topic") {
		t.Fatalf("elect-leaders --partition without --topic: %v", err)
	}
	help := mustRun(t, "", "cluster", "elect-leaders", "--help")
	for _, w := range []string{"--topic", "--partition", "--unclean", "--leader-rebalance-interval"} {
		if !strings.Contains(help, w) {
			t.Errorf("elect-leaders --help does not mention %s:\n%s", w, help)
		}
	}
}

// TestReassignFlags: reassign and drain refuse bad arguments before
// anything is sent (the moves themselves: broker.TestClusterReassignUnderLoad).
func TestReassignFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"topic", "reassign", "t", "--replicas", "1,2"}, "--partition and --replicas are required"},
		{[]string{"topic", "reassign", "t", "--partition", "0"}, "--partition and --replicas are required"},
		{[]string{"topic", "reassign", "t", "--partition", "0", "--replicas", "1,x"}, `"x" is not a broker id`},
		{[]string{"cluster", "drain", "five"}, `drain "five": not a broker id`},
		{[]string{"topic", "reassign"}, "give TOPIC --partition P --replicas 1,2,3, or --plan FILE"},
		{[]string{"topic", "reassign", "t", "--plan", "p.json"}, "--plan p.json takes no TOPIC, --partition or --replicas"},
		{[]string{"topic", "reassign", "--plan", "/nonexistent/p.json"}, "no such file"},
		{[]string{"topic", "reassign", "t", "--partition", "0", "--replicas", "1", "--throttle", "-5"}, "--throttle -5"},
		{[]string{"topic", "reassign", "t", "--partition", "0", "--replicas", "1", "--throttle", "5", "--verify"}, "--verify does not take --throttle"},
	} {
		_, err := runWeir(t, "", append(c.args, "--brokers", "127.0.0.1:1")...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("weir %v: %v, want an error saying %s", c.args, err, c.want)
		}
	}
}
