package streams

import (
	"fmt"
	"strings"
)

// Describe renders the built topology as text: each sub-topology with its
// nodes, their topics, stores and edges, then the internal topics and the
// co-partitioning requirements.
func (t *Topology) Describe() string {
	var sb strings.Builder
	sb.WriteString("Topology\n")
	for _, st := range t.subs {
		kind := "Sub-topology"
		if st.Global {
			kind = "Global sub-topology"
		}
		fmt.Fprintf(&sb, "  %s %d\n", kind, st.ID)
		for _, name := range st.Nodes {
			n := t.byName[name]
			fmt.Fprintf(&sb, "    %s: %s", n.Kind, n.Name)
			switch n.Kind {
			case SourceNode:
				fmt.Fprintf(&sb, " (topics: %s)", strings.Join(t.topicLabels(n), ", "))
			case SinkNode:
				if len(n.Topics) == 0 {
					sb.WriteString(" (topic: chosen per record)")
				} else {
					fmt.Fprintf(&sb, " (topic: %s)", strings.Join(t.topicLabels(n), ", "))
				}
			case ProcessorNode:
				if len(n.Stores) > 0 {
					fmt.Fprintf(&sb, " (stores: %s)", strings.Join(n.Stores, ", "))
				}
			}
			fmt.Fprintf(&sb, " <%s, %s>\n", typeName(n.KeyType), typeName(n.ValueType))
			if len(n.Children) > 0 {
				fmt.Fprintf(&sb, "      --> %s\n", strings.Join(n.Children, ", "))
			}
			if len(n.Parents) > 0 {
				fmt.Fprintf(&sb, "      <-- %s\n", strings.Join(n.Parents, ", "))
			}
		}
	}
	if len(t.stores) > 0 {
		sb.WriteString("  Stores\n")
		for _, s := range t.stores {
			extra := ""
			if s.Global {
				extra += ", global"
			}
			if s.SourceTopic != "" {
				extra += ", changelog: source topic " + s.SourceTopic
			} else if s.Unlogged {
				extra += ", unlogged"
			} else {
				extra += ", changelog: <application>-" + s.Name + "-changelog"
			}
			fmt.Fprintf(&sb, "    %s (%s%s)\n", s.Name, s.Kind, extra)
		}
	}
	if its := t.InternalTopics(); len(its) > 0 {
		sb.WriteString("  Internal topics\n")
		for _, it := range its {
			parts := "as upstream"
			if it.Partitions > 0 {
				parts = fmt.Sprint(it.Partitions)
			}
			fmt.Fprintf(&sb, "    %s (repartition, partitions: %s)\n", it.Name, parts)
		}
	}
	if len(t.copart) > 0 {
		sb.WriteString("  Co-partitioned\n")
		for _, g := range t.copart {
			fmt.Fprintf(&sb, "    %s\n", strings.Join(g, ", "))
		}
	}
	return sb.String()
}

// String returns Describe's text: the one description of a topology, which
// the runtime also serves at /topology.
func (t *Topology) String() string { return t.Describe() }

func (t *Topology) topicLabels(n *Node) []string {
	out := make([]string, len(n.Topics))
	for i, tp := range n.Topics {
		out[i] = tp
		if n.Internal {
			out[i] = "<application>-" + tp
		}
	}
	return out
}

// DescribeDOT renders the topology as a Graphviz digraph: one cluster per
// sub-topology, topics as ellipses, stores as cylinders.
func (t *Topology) DescribeDOT() string {
	var sb strings.Builder
	sb.WriteString("digraph topology {\n  rankdir=LR;\n  node [shape=box];\n")
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	topics := map[string]bool{}
	for _, st := range t.subs {
		fmt.Fprintf(&sb, "  subgraph cluster_%d {\n    label=%s;\n", st.ID, q(fmt.Sprintf("sub-topology %d", st.ID)))
		for _, name := range st.Nodes {
			fmt.Fprintf(&sb, "    %s;\n", q(name))
		}
		sb.WriteString("  }\n")
		for _, name := range st.Nodes {
			n := t.byName[name]
			for _, c := range n.Children {
				fmt.Fprintf(&sb, "  %s -> %s;\n", q(name), q(c))
			}
			for _, tp := range n.Topics {
				topics[tp] = true
				if n.Kind == SourceNode {
					fmt.Fprintf(&sb, "  %s -> %s;\n", q("topic:"+tp), q(name))
				} else {
					fmt.Fprintf(&sb, "  %s -> %s;\n", q(name), q("topic:"+tp))
				}
			}
			for _, s := range n.Stores {
				fmt.Fprintf(&sb, "  %s -> %s [dir=both, style=dashed];\n", q(name), q("store:"+s))
			}
		}
	}
	for _, tp := range sortedKeys(topics) {
		fmt.Fprintf(&sb, "  %s [shape=ellipse, label=%s];\n", q("topic:"+tp), q(tp))
	}
	for _, s := range t.stores {
		fmt.Fprintf(&sb, "  %s [shape=cylinder, label=%s];\n", q("store:"+s.Name), q(s.Name))
	}
	sb.WriteString("}\n")
	return sb.String()
}

// DescribeMermaid renders the topology as a Mermaid flowchart.
func (t *Topology) DescribeMermaid() string {
	var sb strings.Builder
	sb.WriteString("flowchart LR\n")
	ids := map[string]string{}
	id := func(kind, name string) string {
		k := kind + ":" + name
		if v, ok := ids[k]; ok {
			return v
		}
		v := fmt.Sprintf("%s%d", kind, len(ids))
		ids[k] = v
		return v
	}
	label := func(s string) string { return strings.ReplaceAll(s, `"`, "'") }
	for _, st := range t.subs {
		fmt.Fprintf(&sb, "  subgraph sub%d[\"sub-topology %d\"]\n", st.ID, st.ID)
		for _, name := range st.Nodes {
			fmt.Fprintf(&sb, "    %s[\"%s\"]\n", id("n", name), label(name))
		}
		sb.WriteString("  end\n")
	}
	for _, st := range t.subs {
		for _, name := range st.Nodes {
			n := t.byName[name]
			for _, c := range n.Children {
				fmt.Fprintf(&sb, "  %s --> %s\n", id("n", name), id("n", c))
			}
			for _, tp := range n.Topics {
				tid := id("t", tp)
				fmt.Fprintf(&sb, "  %s([\"%s\"])\n", tid, label(tp))
				if n.Kind == SourceNode {
					fmt.Fprintf(&sb, "  %s --> %s\n", tid, id("n", name))
				} else {
					fmt.Fprintf(&sb, "  %s --> %s\n", id("n", name), tid)
				}
			}
			for _, s := range n.Stores {
				sid := id("s", s)
				fmt.Fprintf(&sb, "  %s[(\"%s\")]\n", sid, label(s))
				fmt.Fprintf(&sb, "  %s -.- %s\n", id("n", name), sid)
			}
		}
	}
	return sb.String()
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
