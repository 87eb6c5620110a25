package app

import (
	"fmt"
	"strings"

	"github.com/weir-dev/weir/streams"
)

// Describe returns a plain-text description of a built topology: each
// sub-topology with its source topics, nodes and stores.
func Describe(t *streams.Topology) string {
	nodes := map[string]streams.Node{}
	for _, n := range t.Nodes() {
		nodes[n.Name] = n
	}
	var b strings.Builder
	for _, st := range t.Subtopologies() {
		fmt.Fprintf(&b, "Sub-topology %d", st.ID)
		if st.Global {
			b.WriteString(" (global)")
		}
		fmt.Fprintf(&b, ": reads %s\n", strings.Join(st.SourceTopics, ", "))
		for _, name := range st.Nodes {
			n := nodes[name]
			fmt.Fprintf(&b, "  %s: %s", n.Kind, n.Name)
			if len(n.Topics) > 0 {
				fmt.Fprintf(&b, " (topics: %s)", strings.Join(n.Topics, ", "))
			}
			if len(n.Stores) > 0 {
				fmt.Fprintf(&b, " (stores: %s)", strings.Join(n.Stores, ", "))
			}
			if len(n.Children) > 0 {
				fmt.Fprintf(&b, " --> %s", strings.Join(n.Children, ", "))
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}
