package metadata

import (
	"fmt"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// RegisterBroker answers a broker's registration. The broker registers
// fenced, with a broker epoch above every epoch handed out before; it is
// unfenced by a later heartbeat once it has caught up. A node id already
// registered by another incarnation whose session is alive is refused
// (DUPLICATE_BROKER_REGISTRATION); otherwise the new registration replaces
// the old one, whose leaderships move away as on fencing.
func (c *Controller) RegisterBroker(now time.Time, req *kmsg.BrokerRegistrationRequest) ([]Record, *kmsg.BrokerRegistrationResponse, error) {
	resp := req.ResponseKind().(*kmsg.BrokerRegistrationResponse)
	n := NodeID(req.BrokerID)
	fail := func(err *kerr.Error) ([]Record, *kmsg.BrokerRegistrationResponse, error) {
		resp.ErrorCode = err.Code
		return nil, resp, nil
	}
	switch {
	case n < 0:
		return fail(kerr.InvalidRequest)
	case c.opts.ClusterID != "" && req.ClusterID != c.opts.ClusterID:
		return fail(kerr.InconsistentClusterID)
	}
	ls := make([]Listener, len(req.Listeners))
	for i, l := range req.Listeners {
		ls[i] = Listener{Name: l.Name, Host: l.Host, Port: l.Port, SecurityProtocol: l.SecurityProtocol}
	}
	if checkListeners(ls) != nil {
		return fail(kerr.InvalidRequest)
	}
	old, had := c.img.brokers[n]
	self := n == c.opts.Self && IncarnationID(req.IncarnationID) == c.opts.SelfIncarnation
	if had && old.Incarnation != IncarnationID(req.IncarnationID) && !old.Fenced && !self && now.Before(c.sessions[n].Add(c.opts.SessionTimeout)) {
		return fail(kerr.DuplicateBrokerRegistration)
	}
	if c.img.maxEpoch == math.MaxInt64 {
		return nil, nil, fmt.Errorf("metadata: controller: broker epochs exhausted")
	}
	var out []Record
	var moves []Record
	if had && !old.Fenced {
		moves = c.moveAway(n)
	}
	rack := ""
	if req.Rack != nil {
		rack = *req.Rack
	}
	epoch := c.img.maxEpoch + 1
	registeredAt := c.committed
	if err := c.emit(&out, append(moves, RegisterBrokerRecord{
		Node: n, Incarnation: req.IncarnationID, Epoch: epoch,
		Listeners: ls, Rack: rack, Fenced: true,
	})...); err != nil {
		return nil, nil, err
	}
	c.heard(n, now)
	c.registeredAt[n] = registeredAt
	resp.BrokerEpoch = int64(epoch)
	return out, resp, nil
}

// Heartbeat answers a broker's heartbeat, which renews its session:
//
//   - WantShutdown (controlled shutdown): the broker's leaderships move to
//     other in-sync replicas, it leaves every ISR it is not the last member
//     of, and it is fenced; the reply (once those records commit) tells it
//     to proceed with its shutdown.
//   - WantFence: the broker is fenced (leaderships moved away).
//   - otherwise a fenced broker whose metadata offset has reached its
//     registration is unfenced, and elected leader of the partitions whose
//     ISR it is in and that have no leader.
//
// A heartbeat from a node that is not registered is refused with
// BROKER_ID_NOT_REGISTERED, one carrying another epoch than the registered
// one with STALE_BROKER_EPOCH; neither changes anything.
func (c *Controller) Heartbeat(now time.Time, req *kmsg.BrokerHeartbeatRequest) ([]Record, *kmsg.BrokerHeartbeatResponse, error) {
	resp := req.ResponseKind().(*kmsg.BrokerHeartbeatResponse)
	b, errc := c.brokerAt(NodeID(req.BrokerID), BrokerEpoch(req.BrokerEpoch))
	if errc != nil {
		resp.ErrorCode, resp.IsFenced = errc.Code, true
		return nil, resp, nil
	}
	c.heard(b.ID, now)
	caughtUp := req.CurrentMetadataOffset >= 0 && uint64(req.CurrentMetadataOffset) >= c.registeredAt[b.ID]
	resp.IsCaughtUp = caughtUp
	var out []Record
	switch {
	case req.WantShutdown || req.WantFence:
		if !b.Fenced {
			if err := c.fence(&out, b); err != nil {
				return nil, nil, err
			}
		}
		resp.IsFenced, resp.ShouldShutdown = true, req.WantShutdown
	case b.Fenced && caughtUp:
		if err := c.unfence(&out, b); err != nil {
			return nil, nil, err
		}
		resp.IsFenced = false
	default:
		resp.IsFenced = b.Fenced
	}
	return out, resp, nil
}

// unfence unfences b and elects leaders for the leaderless partitions:
// those whose ISR holds b, and, where unclean election is enabled, those
// of which b is a replica and whose ISR members are all down.
func (c *Controller) unfence(out *[]Record, b Broker) error {
	if err := c.emit(out, UnfenceBrokerRecord{Node: b.ID, Epoch: b.Epoch}); err != nil {
		return err
	}
	return c.electLeaderless(out)
}

// brokerAt returns broker n if it is registered with epoch e, else the
// error to answer.
func (c *Controller) brokerAt(n NodeID, e BrokerEpoch) (Broker, *kerr.Error) {
	b, ok := c.img.brokers[n]
	switch {
	case !ok:
		return Broker{}, kerr.BrokerIDNotRegistered
	case b.Epoch != e:
		return Broker{}, kerr.StaleBrokerEpoch
	}
	return b, nil
}

// UnregisterBroker removes a broker's registration (an operator
// decommissioning it). An unfenced broker is fenced first, its leaderships
// moved away, in the same entry.
func (c *Controller) UnregisterBroker(req *kmsg.UnregisterBrokerRequest) ([]Record, *kmsg.UnregisterBrokerResponse, error) {
	resp := req.ResponseKind().(*kmsg.UnregisterBrokerResponse)
	b, ok := c.img.brokers[NodeID(req.BrokerID)]
	if !ok {
		resp.ErrorCode = kerr.BrokerIDNotRegistered.Code
		msg := fmt.Sprintf("broker %d is not registered", req.BrokerID)
		resp.ErrorMessage = &msg
		return nil, resp, nil
	}
	var out []Record
	if !b.Fenced {
		if err := c.fence(&out, b); err != nil {
			return nil, nil, err
		}
	}
	if err := c.emit(&out, UnregisterBrokerRecord{Node: b.ID, Epoch: b.Epoch}); err != nil {
		return nil, nil, err
	}
	c.forget(b.ID)
	return out, resp, nil
}

// AllocateProducerIDs hands the requesting broker the next block of
// producer ids (Options.ProducerIDBlockSize of them).
func (c *Controller) AllocateProducerIDs(req *kmsg.AllocateProducerIDsRequest) ([]Record, *kmsg.AllocateProducerIDsResponse, error) {
	resp := req.ResponseKind().(*kmsg.AllocateProducerIDsResponse)
	b, errc := c.brokerAt(NodeID(req.BrokerID), BrokerEpoch(req.BrokerEpoch))
	if errc != nil {
		resp.ErrorCode = errc.Code
		return nil, resp, nil
	}
	first, size := c.img.NextProducerID(), c.opts.ProducerIDBlockSize
	if first > math.MaxInt64-ProducerID(size) {
		resp.ErrorCode = kerr.UnknownServerError.Code
		return nil, resp, nil
	}
	var out []Record
	if err := c.emit(&out, ProducerIDsRecord{Node: b.ID, First: first, Size: size}); err != nil {
		return nil, nil, err
	}
	resp.ProducerIDStart, resp.ProducerIDLen = int64(first), size
	return out, resp, nil
}
