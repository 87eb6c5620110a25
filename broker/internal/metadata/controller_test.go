package metadata

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The files under testdata/controller drive a Controller with requests and
// clock ticks, with no network: every command prints the records the
// controller returns and the reply it would send; the records are then
// committed (encoded as one entry and applied to a separate committed
// image, which must accept them) unless the command says nocommit.
//
//	new [session=D] [default-rf=N] [default-partitions=N] [block=N] [cluster=ID] [max-partitions=N]
//	    [unclean]                      (the broker default of unclean.leader.election.enable: true)
//	    [self=N self-inc=I]            (Self and SelfIncarnation: the broker of the controller's process)
//	    [rebalance=D]                  (LeaderRebalanceInterval; default off)
//	    [probe-after=D] [probe-interval=D]  (ProbeAfter, ProbeInterval; defaults 1s, 500ms)
//	    [bad-config=KEY]               (ValidateConfig refuses KEY)
//	    [list-config=KEY:DEFAULT]      (ListConfig: KEY alone is a list, with DEFAULT)
//	register node=N [inc=I] [rack=R] [cluster=ID] [listeners=(name:port,...)] [epoch-of=N]
//	heartbeat node=N [epoch=E] [offset=O] [fence] [shutdown]
//	                                  (epoch defaults to the registered one)
//	tick D                            (advance the clock by D, then Tick)
//	create-topics [validate-only] [v=N]
//	  <name> [p=N] [rf=N] [assign=(1,2/2,3)] [configs=(k=v;...)]   (one line per topic)
//	create-partitions [validate-only]
//	  <name> count=N [assign=(1,2/2,3)]
//	delete-topics [names=(a,...)] [ids=(a,...)] (ids: the id of the named topic, or "none")
//	alter-configs [validate-only]
//	  [+] <topic|broker|logger> <name|-> <set|delete|append|subtract> <key> [value]
//	                                  (lines for one resource make one entry; "+" starts another)
//	replace-configs [validate-only]   (AlterConfigs: each line is one resource's whole set)
//	  <topic|broker> <name|-> [k=v ...]
//	allocate-pids node=N [epoch=E]
//	alter-partition node=N [epoch=E] [v=N]
//	  <topic> <partition> [leader-epoch=E] [pepoch=P] isr=(1,2,...)   (epochs default to the current ones;
//	                                  v3: isr=(1:E,2,...) names members' broker epochs)
//	elect-leaders [type=preferred|unclean] [v=N]
//	  all | <topic> <partition>...    (one line per topic; "all": every partition)
//	reassign [v=N] [same-rf]          (AlterPartitionReassignments)
//	  <topic> <partition> <(1,2,3)|cancel>   (one line per partition)
//	list-reassignments                (ListPartitionReassignments)
//	  [<topic> <partition>...]        (none: every partition)
//	unregister node=N
//	fail-proposals                    (drop what is not committed: Reset)
//	show                              (the controller's image)
//	scram / create-acls / delete-acls (controller_security_test.go)
//	deadline                          (when the controller wants a tick)
//	disconnect node=N                 (N's connection to the controller ended)
//	probes [D]                        (advance the clock by D, then list the probes due)
//	probe-deadline                    (when the next probe is due)
//	probe-refused node=N              (the last probe of N was refused)
//	restart-controller                (a new controller on the committed image)
//
// After every command the committed image's invariants are checked, it must
// survive a snapshot and restore unchanged, and, when nothing is pending,
// the controller's image must equal it.
func TestControllerScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/controller", func(t *testing.T, path string) {
		h := &ctlHarness{t: t}
		h.reset(Options{})
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			out := h.run(td)
			checkImageInvariants(t, h.committed)
			checkImageInvariants(t, h.c.Image())
			// The committed image survives a snapshot and restore.
			snap, idx, err := h.committed.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			re := NewImage()
			if err := re.Restore(snap, idx); err != nil {
				t.Fatalf("%s: restoring the committed image's snapshot: %v", td.Pos, err)
			}
			if d := cmp.Diff(dumpImage(h.committed), dumpImage(re)); d != "" {
				t.Fatalf("%s: restored snapshot differs:\n%s", td.Pos, d)
			}
			if h.pending == 0 {
				got, want := dumpImage(h.c.Image()), dumpImage(h.committed)
				got.Applied = want.Applied
				if d := cmp.Diff(want, got); d != "" {
					t.Fatalf("%s: controller image differs from the committed one:\n%s", td.Pos, d)
				}
			}
			return out
		})
	})
}

type ctlHarness struct {
	t         *testing.T
	opts      Options
	c         *Controller
	committed *Image
	now       time.Time
	nextID    byte
	pending   int // entries handed out and not committed
	ids       map[TopicID]string
	probes    map[NodeID]Probe // the last probe handed out per node
}

var ctlEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func (h *ctlHarness) reset(o Options) {
	h.t.Helper()
	h.nextID = 0
	o.NewTopicID = func() TopicID { h.nextID++; return TopicID{15: h.nextID} }
	h.committed, h.now, h.pending, h.ids = NewImage(), ctlEpoch, 0, map[TopicID]string{}
	h.probes = map[NodeID]Probe{}
	c, err := NewController(h.committed, h.now, o)
	if err != nil {
		h.t.Fatal(err)
	}
	h.opts, h.c = o, c
}

func (h *ctlHarness) int(s string) int64 {
	h.t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		h.t.Fatalf("bad number %q", s)
	}
	return n
}

func (h *ctlHarness) dur(s string) time.Duration {
	h.t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

func tdArg(td *datadriven.TestData, key, def string) string {
	if a, ok := td.Arg(key); ok && len(a.Vals) > 0 {
		return a.Vals[0]
	}
	return def
}

// parseAssign parses "1,2/2,3" into per-partition replica lists.
func (h *ctlHarness) parseAssign(s string) [][]int32 {
	var out [][]int32
	for _, p := range strings.Split(s, "/") {
		var rs []int32
		if p != "" {
			for _, r := range strings.Split(p, ",") {
				rs = append(rs, int32(h.int(r)))
			}
		}
		out = append(out, rs)
	}
	return out
}

// lineArgs splits "name k=v k=v" into the name and its key/values.
func lineArgs(line string) (string, map[string]string) {
	fs := strings.Fields(line)
	kv := map[string]string{}
	for _, f := range fs[1:] {
		k, v, _ := strings.Cut(f, "=")
		kv[k] = strings.Trim(v, "()")
	}
	return fs[0], kv
}

// commit prints records and commits them as one entry.
func (h *ctlHarness) commit(td *datadriven.TestData, records []Record, err error, reply string) string {
	h.t.Helper()
	if err != nil {
		return "error: " + err.Error()
	}
	var b strings.Builder
	for _, r := range records {
		if tr, ok := r.(TopicRecord); ok {
			h.ids[tr.ID] = string(tr.Name)
		}
		fmt.Fprintf(&b, "record %s\n", h.fmtRecord(r))
	}
	if len(records) > 0 {
		if td.HasArg("nocommit") {
			h.pending++
			b.WriteString("(not committed)\n")
		} else {
			if err := h.committed.Apply(h.committed.Applied()+1, EncodeEntry(records)); err != nil {
				h.t.Fatalf("%s: committing the controller's records: %v", td.Pos, err)
			}
			h.c.Committed(h.committed.Applied())
		}
	}
	b.WriteString(reply)
	return strings.TrimRight(b.String(), "\n")
}

func (h *ctlHarness) topicName(id TopicID) string {
	if n, ok := h.ids[id]; ok {
		return n
	}
	return id.String()
}

func fmtNodes(ns []NodeID) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(int(n))
	}
	return "[" + strings.Join(s, " ") + "]"
}

func (h *ctlHarness) fmtRecord(r Record) string {
	switch r := r.(type) {
	case RegisterBrokerRecord:
		s := fmt.Sprintf("RegisterBroker node=%d epoch=%d inc=%x fenced=%v", r.Node, r.Epoch, r.Incarnation[15], r.Fenced)
		if r.Rack != "" {
			s += " rack=" + r.Rack
		}
		return s
	case FenceBrokerRecord:
		return fmt.Sprintf("FenceBroker node=%d epoch=%d", r.Node, r.Epoch)
	case UnfenceBrokerRecord:
		return fmt.Sprintf("UnfenceBroker node=%d epoch=%d", r.Node, r.Epoch)
	case UnregisterBrokerRecord:
		return fmt.Sprintf("UnregisterBroker node=%d epoch=%d", r.Node, r.Epoch)
	case TopicRecord:
		return fmt.Sprintf("Topic %s id=%d", r.Name, r.ID[15])
	case PartitionRecord:
		return fmt.Sprintf("Partition %s/%d replicas=%s isr=%s leader=%d", h.topicName(r.Topic), r.Partition, fmtNodes(r.Replicas), fmtNodes(r.ISR), r.Leader)
	case PartitionChangeRecord:
		s := fmt.Sprintf("PartitionChange %s/%d", h.topicName(r.Topic), r.Partition)
		if r.Leader != nil {
			s += fmt.Sprintf(" leader=%d", *r.Leader)
		}
		if r.ISR != nil {
			s += " isr=" + fmtNodes(r.ISR)
		}
		return s
	case ConfigRecord:
		if r.Value == nil {
			return fmt.Sprintf("Config %s %q delete %s", r.Resource.Type, r.Resource.Name, r.Key)
		}
		return fmt.Sprintf("Config %s %q %s=%s", r.Resource.Type, r.Resource.Name, r.Key, *r.Value)
	case ProducerIDsRecord:
		return fmt.Sprintf("ProducerIDs node=%d first=%d size=%d", r.Node, r.First, r.Size)
	case RemoveTopicRecord:
		return fmt.Sprintf("RemoveTopic %s", h.topicName(r.ID))
	case ReassignmentRecord:
		s := fmt.Sprintf("Reassignment %s/%d replicas=%s", h.topicName(r.Topic), r.Partition, fmtNodes(r.Replicas))
		if r.Target != nil {
			s += " target=" + fmtNodes(r.Target) + " original=" + fmtNodes(r.Original)
		}
		return s
	default:
		if s, ok := fmtSecurityRecord(r); ok {
			return s
		}
		return fmt.Sprintf("%#v", r)
	}
}

func errName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	return kerr.ErrorForCode(code).(*kerr.Error).Message
}

func msgOf(s *string) string {
	if s == nil {
		return ""
	}
	return " (" + *s + ")"
}

func (h *ctlHarness) run(td *datadriven.TestData) string {
	h.t.Helper()
	switch td.Cmd {
	case "new":
		var o Options
		o.SessionTimeout = h.dur(tdArg(td, "session", "0s"))
		o.DefaultReplicationFactor = int16(h.int(tdArg(td, "default-rf", "0")))
		o.DefaultPartitions = int32(h.int(tdArg(td, "default-partitions", "0")))
		o.ProducerIDBlockSize = int32(h.int(tdArg(td, "block", "0")))
		o.MaxPartitionsPerRequest = int32(h.int(tdArg(td, "max-partitions", "0")))
		o.ClusterID = tdArg(td, "cluster", "")
		o.Self = NodeID(h.int(tdArg(td, "self", "0")))
		o.SelfIncarnation[15] = byte(h.int(tdArg(td, "self-inc", "0")))
		o.UncleanLeaderElection = td.HasArg("unclean")
		o.LeaderRebalanceInterval = h.dur(tdArg(td, "rebalance", "-1ns"))
		o.ProbeAfter = h.dur(tdArg(td, "probe-after", "0s"))
		o.ProbeInterval = h.dur(tdArg(td, "probe-interval", "0s"))
		if bad := tdArg(td, "bad-config", ""); bad != "" {
			o.ValidateConfig = func(_ ConfigResource, key, _ string) error {
				if key == bad {
					return fmt.Errorf("%s is not allowed here", key)
				}
				return nil
			}
		}
		if lc := tdArg(td, "list-config", ""); lc != "" {
			key, def, _ := strings.Cut(lc, ":")
			o.ListConfig = func(_ ConfigResource, k string) (string, bool) {
				if k == key {
					return def, true
				}
				return "", false
			}
		}
		h.reset(o)
		return "ok"

	case "register":
		req := kmsg.NewPtrBrokerRegistrationRequest()
		req.BrokerID = int32(h.int(tdArg(td, "node", "")))
		req.IncarnationID[15] = byte(h.int(tdArg(td, "inc", "1")))
		req.ClusterID = tdArg(td, "cluster", "")
		if r := tdArg(td, "rack", ""); r != "" {
			req.Rack = &r
		}
		ls := []string{"PLAINTEXT:" + strconv.Itoa(9092+100*int(req.BrokerID))}
		if a, ok := td.Arg("listeners"); ok {
			ls = a.Vals
		}
		for _, l := range ls {
			if l == "" {
				continue
			}
			name, port, _ := strings.Cut(l, ":")
			req.Listeners = append(req.Listeners, kmsg.BrokerRegistrationRequestListener{Name: name, Host: "127.0.0.1", Port: uint16(h.int(port))})
		}
		records, resp, err := h.c.RegisterBroker(h.now, req)
		if err != nil {
			return h.commit(td, nil, err, "")
		}
		return h.commit(td, records, nil, fmt.Sprintf("reply err=%s epoch=%d", errName(resp.ErrorCode), resp.BrokerEpoch))

	case "heartbeat":
		req := kmsg.NewPtrBrokerHeartbeatRequest()
		req.BrokerID = int32(h.int(tdArg(td, "node", "")))
		b, _ := h.c.Image().Broker(NodeID(req.BrokerID))
		req.BrokerEpoch = h.int(tdArg(td, "epoch", strconv.FormatInt(int64(b.Epoch), 10)))
		req.CurrentMetadataOffset = h.int(tdArg(td, "offset", strconv.FormatUint(h.committed.Applied(), 10)))
		req.WantFence, req.WantShutdown = td.HasArg("fence"), td.HasArg("shutdown")
		records, resp, err := h.c.Heartbeat(h.now, req)
		if err != nil {
			return h.commit(td, nil, err, "")
		}
		return h.commit(td, records, nil, fmt.Sprintf("reply err=%s fenced=%v caught-up=%v shutdown=%v", errName(resp.ErrorCode), resp.IsFenced, resp.IsCaughtUp, resp.ShouldShutdown))

	case "tick":
		h.now = h.now.Add(h.dur(td.CmdArgs[0].Key))
		records, err := h.c.Tick(h.now)
		out := h.commit(td, records, err, "")
		if out == "" {
			return "(nothing)"
		}
		return out

	case "create-topics":
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Version = int16(h.int(tdArg(td, "v", "7")))
		req.ValidateOnly = td.HasArg("validate-only")
		for _, line := range strings.Split(strings.TrimSpace(td.Input), "\n") {
			name, kv := lineArgs(line)
			t := kmsg.NewCreateTopicsRequestTopic()
			t.Topic = name
			t.NumPartitions = int32(h.int(cmpOr(kv["p"], "-1")))
			t.ReplicationFactor = int16(h.int(cmpOr(kv["rf"], "-1")))
			if a, ok := kv["assign"]; ok {
				for p, rs := range h.parseAssign(a) {
					t.ReplicaAssignment = append(t.ReplicaAssignment, kmsg.CreateTopicsRequestTopicReplicaAssignment{Partition: int32(p), Replicas: rs})
				}
			}
			if cs, ok := kv["configs"]; ok {
				for _, c := range strings.Split(cs, ";") {
					k, v, _ := strings.Cut(c, "=")
					t.Configs = append(t.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: k, Value: &v})
				}
			}
			req.Topics = append(req.Topics, t)
		}
		records, resp, err := h.c.CreateTopics(req)
		if err != nil {
			return h.commit(td, nil, err, "")
		}
		var b strings.Builder
		for _, t := range resp.Topics {
			fmt.Fprintf(&b, "reply %s err=%s%s", t.Topic, errName(t.ErrorCode), msgOf(t.ErrorMessage))
			if t.ErrorCode == 0 {
				fmt.Fprintf(&b, " id=%d partitions=%d rf=%d", t.TopicID[15], t.NumPartitions, t.ReplicationFactor)
				for _, c := range t.Configs {
					fmt.Fprintf(&b, " %s=%s", c.Name, *c.Value)
				}
			}
			b.WriteString("\n")
		}
		return h.commit(td, records, nil, b.String())

	case "create-partitions":
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.ValidateOnly = td.HasArg("validate-only")
		for _, line := range strings.Split(strings.TrimSpace(td.Input), "\n") {
			name, kv := lineArgs(line)
			t := kmsg.NewCreatePartitionsRequestTopic()
			t.Topic, t.Count = name, int32(h.int(kv["count"]))
			if a, ok := kv["assign"]; ok {
				for _, rs := range h.parseAssign(a) {
					t.Assignment = append(t.Assignment, kmsg.CreatePartitionsRequestTopicAssignment{Replicas: rs})
				}
			}
			req.Topics = append(req.Topics, t)
		}
		records, resp, err := h.c.CreatePartitions(req)
		if err != nil {
			return h.commit(td, nil, err, "")
		}
		var b strings.Builder
		for _, t := range resp.Topics {
			fmt.Fprintf(&b, "reply %s err=%s%s\n", t.Topic, errName(t.ErrorCode), msgOf(t.ErrorMessage))
		}
		return h.commit(td, records, nil, b.String())

	case "delete-topics":
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.Version = 6
		if a, ok := td.Arg("names"); ok {
			for _, n := range a.Vals {
				t := kmsg.NewDeleteTopicsRequestTopic()
				t.Topic = &n
				req.Topics = append(req.Topics, t)
			}
		}
		if a, ok := td.Arg("ids"); ok {
			for _, n := range a.Vals {
				t := kmsg.NewDeleteTopicsRequestTopic()
				if tp, ok := h.c.Image().Topic(TopicName(n)); ok {
					t.TopicID = tp.ID
				} else {
					t.TopicID = TopicID{15: 0xee}
				}
				req.Topics = append(req.Topics, t)
			}
		}
		records, resp, err := h.c.DeleteTopics(req)
		if err != nil {
			return h.commit(td, nil, err, "")
		}
		var b strings.Builder
		for _, t := range resp.Topics {
			name := "-"
			if t.Topic != nil {
				name = *t.Topic
			}
			fmt.Fprintf(&b, "reply %s id=%d err=%s%s\n", name, t.TopicID[15], errName(t.ErrorCode), msgOf(t.ErrorMessage))
		}
		return h.commit(td, records, nil, b.String())

	case "alter-configs":
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		req.ValidateOnly = td.HasArg("validate-only")
		for _, line := range strings.Split(strings.TrimSpace(td.Input), "\n") {
			forceNew := strings.HasPrefix(line, "+ ")
			fs := strings.Fields(strings.TrimPrefix(line, "+ "))
			typ := kmsg.ConfigResourceTypeTopic
			switch fs[0] {
			case "broker":
				typ = kmsg.ConfigResourceTypeBroker
			case "logger":
				typ = kmsg.ConfigResourceTypeBrokerLogger
			}
			name := fs[1]
			if name == "-" {
				name = ""
			}
			var op kmsg.IncrementalAlterConfigOp
			switch fs[2] {
			case "set":
				op = kmsg.IncrementalAlterConfigOpSet
			case "delete":
				op = kmsg.IncrementalAlterConfigOpDelete
			case "append":
				op = kmsg.IncrementalAlterConfigOpAppend
			case "subtract":
				op = kmsg.IncrementalAlterConfigOpSubtract
			}
			cfg := kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: fs[3], Op: op}
			if len(fs) > 4 {
				cfg.Value = &fs[4]
			}
			// Consecutive lines for one resource make one resource entry.
			// A line starting with "+ " starts a new entry for the same
			// resource (to send one resource twice).
			if n := len(req.Resources); n > 0 && req.Resources[n-1].ResourceType == typ && req.Resources[n-1].ResourceName == name && !forceNew {
				req.Resources[n-1].Configs = append(req.Resources[n-1].Configs, cfg)
				continue
			}
			req.Resources = append(req.Resources, kmsg.IncrementalAlterConfigsRequestResource{ResourceType: typ, ResourceName: name, Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{cfg}})
		}
		records, resp, err := h.c.IncrementalAlterConfigs(req)
		if err != nil {
			return h.commit(td, nil, err, "")
		}
		var b strings.Builder
		for _, r := range resp.Resources {
			fmt.Fprintf(&b, "reply %s %q err=%s%s\n", ConfigType(r.ResourceType), r.ResourceName, errName(r.ErrorCode), msgOf(r.ErrorMessage))
		}
		return h.commit(td, records, nil, b.String())

	case "replace-configs":
		req := kmsg.NewPtrAlterConfigsRequest()
		req.ValidateOnly = td.HasArg("validate-only")
		for _, line := range strings.Split(strings.TrimSpace(td.Input), "\n") {
			fs := strings.Fields(line)
			res := kmsg.NewAlterConfigsRequestResource()
			res.ResourceType = kmsg.ConfigResourceTypeTopic
			if fs[0] == "broker" {
				res.ResourceType = kmsg.ConfigResourceTypeBroker
			}
			if res.ResourceName = fs[1]; res.ResourceName == "-" {
				res.ResourceName = ""
			}
			for _, kv := range fs[2:] {
				k, v, hasValue := strings.Cut(kv, "=")
				cfg := kmsg.AlterConfigsRequestResourceConfig{Name: k}
				if hasValue {
					cfg.Value = &v
				}
				res.Configs = append(res.Configs, cfg)
			}
			req.Resources = append(req.Resources, res)
		}
		records, resp, err := h.c.AlterConfigs(req)
		if err != nil {
			return h.commit(td, nil, err, "")
		}
		var b strings.Builder
		for _, r := range resp.Resources {
			fmt.Fprintf(&b, "reply %s %q err=%s%s\n", ConfigType(r.ResourceType), r.ResourceName, errName(r.ErrorCode), msgOf(r.ErrorMessage))
		}
		return h.commit(td, records, nil, b.String())

	case "allocate-pids":
		req := kmsg.NewPtrAllocateProducerIDsRequest()
		req.BrokerID = int32(h.int(tdArg(td, "node", "")))
		b, _ := h.c.Image().Broker(NodeID(req.BrokerID))
		req.BrokerEpoch = h.int(tdArg(td, "epoch", strconv.FormatInt(int64(b.Epoch), 10)))
		records, resp, err := h.c.AllocateProducerIDs(req)
		if err != nil {
			return h.commit(td, nil, err, "")
		}
		return h.commit(td, records, nil, fmt.Sprintf("reply err=%s start=%d len=%d", errName(resp.ErrorCode), resp.ProducerIDStart, resp.ProducerIDLen))

	case "unregister":
		req := kmsg.NewPtrUnregisterBrokerRequest()
		req.BrokerID = int32(h.int(tdArg(td, "node", "")))
		records, resp, err := h.c.UnregisterBroker(req)
		if err != nil {
			return h.commit(td, nil, err, "")
		}
		return h.commit(td, records, nil, fmt.Sprintf("reply err=%s%s", errName(resp.ErrorCode), msgOf(resp.ErrorMessage)))

	case "fail-proposals":
		h.c.Reset(h.committed, h.now)
		h.pending = 0
		return "ok"

	case "restart-controller":
		c, err := NewController(h.committed, h.now, h.opts)
		if err != nil {
			h.t.Fatal(err)
		}
		h.c, h.pending = c, 0
		h.probes = map[NodeID]Probe{}
		return "ok"

	case "disconnect":
		h.c.Disconnected(NodeID(h.int(tdArg(td, "node", ""))))
		return "ok"

	case "probes":
		if len(td.CmdArgs) > 0 {
			h.now = h.now.Add(h.dur(td.CmdArgs[0].Key))
		}
		var b strings.Builder
		for _, p := range h.c.Probes(h.now) {
			h.probes[p.Node] = p
			fmt.Fprintf(&b, "probe node=%d epoch=%d addr=%s\n", p.Node, p.Epoch, p.Addr)
		}
		if b.Len() == 0 {
			return "(none)"
		}
		return strings.TrimRight(b.String(), "\n")

	case "probe-deadline":
		d := h.c.ProbeDeadline()
		if d.IsZero() {
			return "none"
		}
		return "in " + d.Sub(h.now).String()

	case "probe-refused":
		n := NodeID(h.int(tdArg(td, "node", "")))
		p, ok := h.probes[n]
		if !ok {
			h.t.Fatalf("%s: node %d was never probed", td.Pos, n)
		}
		records, err := h.c.ProbeRefused(p)
		out := h.commit(td, records, err, "")
		if out == "" {
			return "(nothing)"
		}
		return out

	case "deadline":
		d := h.c.Deadline()
		if d.IsZero() {
			return "none"
		}
		return "in " + d.Sub(h.now).String()

	case "alter-partition":
		return h.alterPartition(td)

	case "elect-leaders":
		req := kmsg.NewPtrElectLeadersRequest()
		req.Version = int16(h.int(tdArg(td, "v", "2")))
		if tdArg(td, "type", "preferred") == "unclean" {
			req.ElectionType = 1
		}
		if in := strings.TrimSpace(td.Input); in != "all" {
			req.Topics = []kmsg.ElectLeadersRequestTopic{}
			for _, line := range strings.Split(in, "\n") {
				fs := strings.Fields(line)
				rt := kmsg.NewElectLeadersRequestTopic()
				rt.Topic = fs[0]
				for _, p := range fs[1:] {
					rt.Partitions = append(rt.Partitions, int32(h.int(p)))
				}
				req.Topics = append(req.Topics, rt)
			}
		}
		records, resp, err := h.c.ElectLeaders(req)
		if err != nil {
			return h.commit(td, nil, err, "")
		}
		var b strings.Builder
		if resp.ErrorCode != 0 {
			fmt.Fprintf(&b, "reply err=%s\n", errName(resp.ErrorCode))
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				fmt.Fprintf(&b, "reply %s/%d err=%s%s\n", t.Topic, p.Partition, errName(p.ErrorCode), msgOf(p.ErrorMessage))
			}
		}
		if b.Len() == 0 {
			b.WriteString("reply (no partitions)\n")
		}
		return h.commit(td, records, nil, b.String())

	case "reassign":
		req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
		req.Version = int16(h.int(tdArg(td, "v", "0")))
		req.AllowReplicationFactorChange = !td.HasArg("same-rf")
		for _, line := range strings.Split(strings.TrimSpace(td.Input), "\n") {
			fs := strings.Fields(line)
			rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
			rp.Partition = int32(h.int(fs[1]))
			if fs[2] != "cancel" {
				rp.Replicas = []int32{}
				for _, r := range strings.Split(strings.Trim(fs[2], "()"), ",") {
					if r != "" {
						rp.Replicas = append(rp.Replicas, int32(h.int(r)))
					}
				}
			}
			if n := len(req.Topics); n > 0 && req.Topics[n-1].Topic == fs[0] {
				req.Topics[n-1].Partitions = append(req.Topics[n-1].Partitions, rp)
				continue
			}
			rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
			rt.Topic, rt.Partitions = fs[0], []kmsg.AlterPartitionAssignmentsRequestTopicPartition{rp}
			req.Topics = append(req.Topics, rt)
		}
		records, resp, err := h.c.AlterPartitionReassignments(req)
		if err != nil {
			return h.commit(td, nil, err, "")
		}
		var b strings.Builder
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				fmt.Fprintf(&b, "reply %s/%d err=%s%s\n", t.Topic, p.Partition, errName(p.ErrorCode), msgOf(p.ErrorMessage))
			}
		}
		return h.commit(td, records, nil, b.String())

	case "list-reassignments":
		req := kmsg.NewPtrListPartitionReassignmentsRequest()
		if in := strings.TrimSpace(td.Input); in != "" {
			for _, line := range strings.Split(in, "\n") {
				fs := strings.Fields(line)
				rt := kmsg.NewListPartitionReassignmentsRequestTopic()
				rt.Topic = fs[0]
				for _, p := range fs[1:] {
					rt.Partitions = append(rt.Partitions, int32(h.int(p)))
				}
				req.Topics = append(req.Topics, rt)
			}
		}
		resp := h.c.ListPartitionReassignments(req)
		var b strings.Builder
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				fmt.Fprintf(&b, "%s/%d replicas=%v adding=%v removing=%v\n", t.Topic, p.Partition, p.Replicas, p.AddingReplicas, p.RemovingReplicas)
			}
		}
		if b.Len() == 0 {
			return "(none)"
		}
		return strings.TrimRight(b.String(), "\n")

	case "show":
		return h.show(h.c.Image())

	default:
		if out, ok := h.runSecurity(td); ok {
			return out
		}
		h.t.Fatalf("%s: unknown command %q", td.Pos, td.Cmd)
		return ""
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (h *ctlHarness) show(im *Image) string {
	var b strings.Builder
	for _, br := range im.Brokers() {
		state := "unfenced"
		if br.Fenced {
			state = "fenced"
		}
		fmt.Fprintf(&b, "broker %d epoch=%d %s leads=%d", br.ID, br.Epoch, state, im.Leaderships(br.ID))
		if br.Rack != "" {
			fmt.Fprintf(&b, " rack=%s", br.Rack)
		}
		b.WriteString("\n")
	}
	for _, t := range im.Topics() {
		fmt.Fprintf(&b, "topic %s id=%d\n", t.Name, t.ID[15])
		for _, p := range im.Partitions(t.ID) {
			fmt.Fprintf(&b, "  %d replicas=%s isr=%s leader=%d leader-epoch=%d partition-epoch=%d",
				p.Partition, fmtNodes(p.Replicas), fmtNodes(p.ISR), p.Leader, p.LeaderEpoch, p.PartitionEpoch)
			if p.Target != nil {
				fmt.Fprintf(&b, " target=%s original=%s", fmtNodes(p.Target), fmtNodes(p.Original))
			}
			b.WriteString("\n")
		}
	}
	for _, res := range im.ConfigResources() {
		kv := im.Config(res)
		for _, k := range slices.Sorted(maps.Keys(kv)) {
			fmt.Fprintf(&b, "config %s %q %s=%s\n", res.Type, res.Name, k, kv[k])
		}
	}
	if last, ok := im.LastProducerIDs(); ok {
		fmt.Fprintf(&b, "producer-ids last=%d+%d to node %d next=%d\n", last.First, last.Size, last.Node, im.NextProducerID())
	}
	b.WriteString(showSecurity(im))
	if b.Len() == 0 {
		return "(empty)"
	}
	return strings.TrimRight(b.String(), "\n")
}
