package metadata

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
)

// applying is one entry being applied: the undo log that takes the image
// back if a later record of the entry is refused, and what the entry
// touched, for the invariants checked at its end.
type applying struct {
	im      *Image
	undo    []func()
	brokers map[NodeID]struct{}
	topics  map[TopicID]struct{}
}

// applyRecords applies records as one entry: all of them, or (on error)
// none.
func (im *Image) applyRecords(records []Record) error {
	a := &applying{im: im, brokers: map[NodeID]struct{}{}, topics: map[TopicID]struct{}{}}
	err := a.all(records)
	if err != nil {
		for i := len(a.undo) - 1; i >= 0; i-- {
			a.undo[i]()
		}
	}
	return err
}

func (a *applying) all(records []Record) error {
	for i, r := range records {
		if err := a.one(r); err != nil {
			return fmt.Errorf("record %d (%s): %w", i, r.Type(), err)
		}
	}
	// Invariants that hold between entries but not necessarily between the
	// records of one (a fence and the leader moves it causes come in any
	// order).
	for _, n := range slices.Sorted(maps.Keys(a.brokers)) {
		b, ok := a.im.brokers[n]
		if c := a.im.leaders[n]; c > 0 && (!ok || b.Fenced) {
			state := "unregistered"
			if ok {
				state = "fenced"
			}
			return invalidf("broker %d is %s but still leads %d partitions", n, state, c)
		}
	}
	for id := range a.topics {
		if t, ok := a.im.topics[id]; ok && len(t.parts) == 0 {
			return invalidf("topic %q (%s) has no partitions", t.name, id)
		}
	}
	return nil
}

// The set* helpers change the image and log how to undo it.

func (a *applying) setBroker(n NodeID, b Broker, present bool) {
	im := a.im
	old, had := im.brokers[n]
	a.undo = append(a.undo, func() {
		if had {
			im.brokers[n] = old
		} else {
			delete(im.brokers, n)
		}
	})
	if present {
		im.brokers[n] = b
	} else {
		delete(im.brokers, n)
	}
	a.brokers[n] = struct{}{}
}

func (a *applying) addLeader(n NodeID, delta int) {
	if n == NoLeader {
		return
	}
	im := a.im
	old := im.leaders[n]
	a.undo = append(a.undo, func() { setCount(im.leaders, n, old) })
	setCount(im.leaders, n, old+delta)
}

func setCount(m map[NodeID]int, n NodeID, c int) {
	if c == 0 {
		delete(m, n)
	} else {
		m[n] = c
	}
}

func (a *applying) setMaxEpoch(e BrokerEpoch) {
	im := a.im
	old := im.maxEpoch
	a.undo = append(a.undo, func() { im.maxEpoch = old })
	im.maxEpoch = e
}

func (a *applying) setConfig(res ConfigResource, key string, value *string) {
	im := a.im
	kv := im.configs[res]
	old, had := kv[key]
	a.undo = append(a.undo, func() {
		kv := im.configs[res]
		if had {
			if kv == nil {
				kv = map[string]string{}
				im.configs[res] = kv
			}
			kv[key] = old
		} else if kv != nil {
			delete(kv, key)
			if len(kv) == 0 {
				delete(im.configs, res)
			}
		}
	})
	if value != nil {
		if kv == nil {
			kv = map[string]string{}
			im.configs[res] = kv
		}
		kv[key] = *value
	} else if kv != nil {
		delete(kv, key)
		if len(kv) == 0 {
			delete(im.configs, res)
		}
	}
}

func (a *applying) one(r Record) error {
	im := a.im
	switch r := r.(type) {
	case RegisterBrokerRecord:
		if r.Node < 0 {
			return invalidf("node id %d is negative", r.Node)
		}
		if r.Epoch <= 0 {
			return invalidf("broker %d: epoch %d is not positive", r.Node, r.Epoch)
		}
		if old, ok := im.brokers[r.Node]; ok && r.Epoch <= old.Epoch {
			return invalidf("broker %d: epoch %d is not above its registered epoch %d", r.Node, r.Epoch, old.Epoch)
		}
		if err := checkListeners(r.Listeners); err != nil {
			return fmt.Errorf("broker %d: %w", r.Node, err)
		}
		a.setBroker(r.Node, Broker{
			ID: r.Node, Incarnation: r.Incarnation, Epoch: r.Epoch,
			Listeners: slices.Clone(r.Listeners), Rack: r.Rack, Fenced: r.Fenced,
		}, true)
		if r.Epoch > im.maxEpoch {
			a.setMaxEpoch(r.Epoch)
		}
	case FenceBrokerRecord:
		b, err := im.brokerAt(r.Node, r.Epoch)
		if err != nil {
			return err
		}
		b.Fenced = true
		a.setBroker(r.Node, b, true)
	case UnfenceBrokerRecord:
		b, err := im.brokerAt(r.Node, r.Epoch)
		if err != nil {
			return err
		}
		b.Fenced = false
		a.setBroker(r.Node, b, true)
	case UnregisterBrokerRecord:
		b, err := im.brokerAt(r.Node, r.Epoch)
		if err != nil {
			return err
		}
		if !b.Fenced {
			return invalidf("broker %d is unregistered while unfenced", r.Node)
		}
		a.setBroker(r.Node, Broker{}, false)
	case BrokerEpochFloorRecord:
		if r.Epoch < 0 {
			return invalidf("broker epoch floor %d is negative", r.Epoch)
		}
		if r.Epoch > im.maxEpoch {
			a.setMaxEpoch(r.Epoch)
		}
	case TopicRecord:
		return a.topic(r)
	case PartitionRecord:
		return a.partition(r)
	case PartitionChangeRecord:
		return a.partitionChange(r)
	case ReassignmentRecord:
		return a.reassignment(r)
	case RemoveTopicRecord:
		return a.removeTopic(r)
	case ConfigRecord:
		if err := im.checkConfigResource(r.Resource); err != nil {
			return err
		}
		if r.Key == "" {
			return invalidf("%s %q: empty config key", r.Resource.Type, r.Resource.Name)
		}
		a.setConfig(r.Resource, r.Key, r.Value)
	case ProducerIDsRecord:
		if r.Node < 0 {
			return invalidf("producer ids for node %d", r.Node)
		}
		if r.Size <= 0 {
			return invalidf("producer-id block of size %d", r.Size)
		}
		if next := im.NextProducerID(); r.First < next {
			return invalidf("producer-id block at %d overlaps ids already handed out (next free %d)", r.First, next)
		}
		if r.First > math.MaxInt64-ProducerID(r.Size) {
			return invalidf("producer-id block at %d of size %d overflows", r.First, r.Size)
		}
		old, had := im.lastIDs, im.hasIDs
		a.undo = append(a.undo, func() { im.lastIDs, im.hasIDs = old, had })
		im.lastIDs, im.hasIDs = r, true
	default:
		return a.security(r)
	}
	return nil
}

// brokerAt returns broker n if it is registered with epoch e.
func (im *Image) brokerAt(n NodeID, e BrokerEpoch) (Broker, error) {
	b, ok := im.brokers[n]
	if !ok {
		return Broker{}, invalidf("broker %d is not registered", n)
	}
	if b.Epoch != e {
		return Broker{}, invalidf("broker %d: epoch %d is not its registered epoch %d", n, e, b.Epoch)
	}
	return b, nil
}

func checkListeners(ls []Listener) error {
	if len(ls) == 0 {
		return invalidf("no listeners")
	}
	seen := map[string]bool{}
	for _, l := range ls {
		if l.Name == "" || l.Host == "" {
			return invalidf("listener %q at %q: empty name or host", l.Name, l.Host)
		}
		if seen[l.Name] {
			return invalidf("listener %q listed twice", l.Name)
		}
		seen[l.Name] = true
	}
	return nil
}

func (im *Image) checkConfigResource(res ConfigResource) error {
	switch res.Type {
	case ConfigTopic:
		if _, ok := im.names[TopicName(res.Name)]; !ok {
			return invalidf("config of unknown topic %q", res.Name)
		}
	case ConfigBroker:
		if res.Name != "" {
			if n, err := strconv.ParseInt(res.Name, 10, 32); err != nil || n < 0 || strconv.FormatInt(n, 10) != res.Name {
				return invalidf("broker config resource %q is neither empty nor a node id", res.Name)
			}
		}
	default:
		return invalidf("config of resource type %d", int8(res.Type))
	}
	return nil
}

func (a *applying) topic(r TopicRecord) error {
	im := a.im
	if r.ID.IsZero() {
		return invalidf("topic %q has the zero id", r.Name)
	}
	if why := checkTopicName(r.Name); why != "" {
		return invalidf("%s", why)
	}
	if _, ok := im.topics[r.ID]; ok {
		return invalidf("topic id %s is taken", r.ID)
	}
	if _, ok := im.names[r.Name]; ok {
		return invalidf("topic %q exists", r.Name)
	}
	im.topics[r.ID] = &topicState{name: r.Name}
	im.names[r.Name] = r.ID
	a.undo = append(a.undo, func() {
		delete(im.topics, r.ID)
		delete(im.names, r.Name)
	})
	a.topics[r.ID] = struct{}{}
	return nil
}

func (a *applying) partition(r PartitionRecord) error {
	im := a.im
	t, ok := im.topics[r.Topic]
	if !ok {
		return invalidf("partition %d of unknown topic %s", r.Partition, r.Topic)
	}
	if int(r.Partition) != len(t.parts) {
		return invalidf("topic %q: partition %d created out of order (it has %d)", t.name, r.Partition, len(t.parts))
	}
	if len(r.Replicas) == 0 {
		return invalidf("topic %q partition %d: no replicas", t.name, r.Partition)
	}
	if err := checkNodes(r.Replicas, "replicas"); err != nil {
		return fmt.Errorf("topic %q partition %d: %w", t.name, r.Partition, err)
	}
	if err := im.checkLeaderISR(r.Replicas, r.ISR, r.Leader); err != nil {
		return fmt.Errorf("topic %q partition %d: %w", t.name, r.Partition, err)
	}
	if r.LeaderEpoch < 0 || r.PartitionEpoch < 0 {
		return invalidf("topic %q partition %d: negative epoch", t.name, r.Partition)
	}
	r.Replicas, r.ISR = slices.Clone(r.Replicas), slices.Clone(r.ISR)
	t.parts = append(t.parts, r)
	a.undo = append(a.undo, func() { t.parts = t.parts[:len(t.parts)-1] })
	a.addLeader(r.Leader, 1)
	a.topics[r.Topic] = struct{}{}
	if r.Leader != NoLeader {
		a.brokers[r.Leader] = struct{}{} // it must be registered and unfenced
	}
	return nil
}

// checkNodes checks that ns holds distinct, non-negative node ids.
func checkNodes(ns []NodeID, what string) error {
	for i, n := range ns {
		if n < 0 {
			return invalidf("%s %v: negative node id", what, ns)
		}
		if slices.Contains(ns[:i], n) {
			return invalidf("%s %v: node %d listed twice", what, ns, n)
		}
	}
	return nil
}

// checkLeaderISR checks an ISR and leader against replicas.
func (im *Image) checkLeaderISR(replicas, isr []NodeID, leader NodeID) error {
	if len(isr) == 0 {
		return invalidf("empty ISR")
	}
	if err := checkNodes(isr, "ISR"); err != nil {
		return err
	}
	for _, n := range isr {
		if !slices.Contains(replicas, n) {
			return invalidf("ISR %v: node %d is not a replica %v", isr, n, replicas)
		}
	}
	if leader == NoLeader {
		return nil
	}
	if !slices.Contains(isr, leader) {
		return invalidf("leader %d is not in the ISR %v", leader, isr)
	}
	return nil
}

// checkNewLeader checks that n may take a leadership now.
func (im *Image) checkNewLeader(n NodeID) error {
	if n == NoLeader {
		return nil
	}
	b, ok := im.brokers[n]
	if !ok {
		return invalidf("leader %d is not a registered broker", n)
	}
	if b.Fenced {
		return invalidf("leader %d is fenced", n)
	}
	return nil
}

func (a *applying) partitionChange(r PartitionChangeRecord) error {
	im := a.im
	t, ok := im.topics[r.Topic]
	if !ok {
		return invalidf("change of partition %d of unknown topic %s", r.Partition, r.Topic)
	}
	if r.Partition < 0 || int(r.Partition) >= len(t.parts) {
		return invalidf("topic %q has no partition %d", t.name, r.Partition)
	}
	if r.Leader == nil && r.ISR == nil {
		return invalidf("topic %q partition %d: a change that changes nothing", t.name, r.Partition)
	}
	old := t.parts[r.Partition]
	p := old
	if r.ISR != nil {
		p.ISR = slices.Clone(r.ISR)
	}
	if r.Leader != nil {
		p.Leader = *r.Leader
	}
	if err := im.checkLeaderISR(p.Replicas, p.ISR, p.Leader); err != nil {
		return fmt.Errorf("topic %q partition %d: %w", t.name, r.Partition, err)
	}
	if p.Leader != old.Leader {
		if err := im.checkNewLeader(p.Leader); err != nil {
			return fmt.Errorf("topic %q partition %d: %w", t.name, r.Partition, err)
		}
		if p.LeaderEpoch == math.MaxInt32 {
			return invalidf("topic %q partition %d: leader epoch overflows", t.name, r.Partition)
		}
		p.LeaderEpoch++
	}
	if p.PartitionEpoch == math.MaxInt32 {
		return invalidf("topic %q partition %d: partition epoch overflows", t.name, r.Partition)
	}
	p.PartitionEpoch++
	t.parts[r.Partition] = p
	a.undo = append(a.undo, func() { t.parts[r.Partition] = old })
	if p.Leader != old.Leader {
		a.addLeader(old.Leader, -1)
		a.addLeader(p.Leader, 1)
	}
	return nil
}

func (a *applying) reassignment(r ReassignmentRecord) error {
	im := a.im
	t, ok := im.topics[r.Topic]
	if !ok {
		return invalidf("reassignment of partition %d of unknown topic %s", r.Partition, r.Topic)
	}
	if r.Partition < 0 || int(r.Partition) >= len(t.parts) {
		return invalidf("topic %q has no partition %d", t.name, r.Partition)
	}
	if len(r.Replicas) == 0 {
		return invalidf("topic %q partition %d: no replicas", t.name, r.Partition)
	}
	if err := checkNodes(r.Replicas, "replicas"); err != nil {
		return fmt.Errorf("topic %q partition %d: %w", t.name, r.Partition, err)
	}
	if r.Target != nil {
		if err := checkNodes(r.Target, "target"); err != nil {
			return fmt.Errorf("topic %q partition %d: %w", t.name, r.Partition, err)
		}
		if err := checkNodes(r.Original, "original"); err != nil {
			return fmt.Errorf("topic %q partition %d: %w", t.name, r.Partition, err)
		}
		for _, n := range append(slices.Clone(r.Target), r.Original...) {
			if !slices.Contains(r.Replicas, n) {
				return invalidf("topic %q partition %d: target %v or original %v is not within the replicas %v", t.name, r.Partition, r.Target, r.Original, r.Replicas)
			}
		}
	} else if r.Original != nil {
		return invalidf("topic %q partition %d: an original assignment without a target", t.name, r.Partition)
	}
	old := t.parts[r.Partition]
	p := old
	p.Replicas = slices.Clone(r.Replicas)
	if err := im.checkLeaderISR(p.Replicas, p.ISR, p.Leader); err != nil {
		return fmt.Errorf("topic %q partition %d: %w", t.name, r.Partition, err)
	}
	if p.PartitionEpoch == math.MaxInt32 {
		return invalidf("topic %q partition %d: partition epoch overflows", t.name, r.Partition)
	}
	p.PartitionEpoch++
	oldTargets := t.targets
	targets := maps.Clone(t.targets)
	if r.Target != nil {
		if targets == nil {
			targets = map[int32]reassignment{}
		}
		targets[r.Partition] = reassignment{slices.Clone(r.Target), slices.Clone(r.Original)}
	} else {
		delete(targets, r.Partition)
		if len(targets) == 0 {
			targets = nil
		}
	}
	t.parts[r.Partition], t.targets = p, targets
	a.undo = append(a.undo, func() { t.parts[r.Partition], t.targets = old, oldTargets })
	return nil
}

func (a *applying) removeTopic(r RemoveTopicRecord) error {
	im := a.im
	t, ok := im.topics[r.ID]
	if !ok {
		return invalidf("removal of unknown topic %s", r.ID)
	}
	for _, p := range t.parts {
		a.addLeader(p.Leader, -1)
	}
	delete(im.topics, r.ID)
	delete(im.names, t.name)
	res := ConfigResource{Type: ConfigTopic, Name: string(t.name)}
	kv, hadKV := im.configs[res]
	delete(im.configs, res)
	a.undo = append(a.undo, func() {
		im.topics[r.ID] = t
		im.names[t.name] = r.ID
		if hadKV {
			im.configs[res] = kv
		}
	})
	delete(a.topics, r.ID)
	return nil
}

// checkTopicName applies Kafka's rules for topic names: it returns why name
// is not allowed, or "".
func checkTopicName(name TopicName) string {
	switch {
	case name == "":
		return "empty topic name"
	case name == "." || name == "..":
		return fmt.Sprintf("topic name %q is not allowed", name)
	case len(name) > maxTopicNameLen:
		return fmt.Sprintf("topic name of %d characters is longer than %d", len(name), maxTopicNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Sprintf("topic name %q holds %q; only ASCII letters, digits, '.', '_' and '-' are allowed", name, c)
		}
	}
	return ""
}

// maxTopicNameLen is Kafka's limit on topic names.
const maxTopicNameLen = 249
