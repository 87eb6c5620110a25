package protocol

// DeleteTopics, versions 0-6.
//
// Deletion is synchronous and removes the topic's data: the topic directory
// is renamed away first (so a crash cannot resurrect it) and then removed.
// v6 may name topics by id. Internal topics (names starting "__") may be
// deleted, as in Kafka with the right ACLs; there are no ACLs yet. Once
// topics are deleted, the group coordinator forgets (and tombstones) every
// group's committed offsets for them before the answer goes out, so that a
// topic re-created under the same name does not inherit them.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.DeleteTopics, 0, 6, handleDeleteTopics) }

func handleDeleteTopics(_ context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	var deleted []string
	if r.Version >= 6 {
		for _, t := range req.Topics {
			targets = append(targets, target{t.Topic, t.TopicID})
		}
	} else {
		for _, n := range req.TopicNames {
			targets = append(targets, target{name: &n})
		}
	}
	for _, tg := range targets {
		ot := kmsg.NewDeleteTopicsResponseTopic()
		ot.Topic, ot.TopicID = tg.name, tg.id
		name := ""
		if tg.name != nil {
			name = *tg.name
		} else if t, ok := s.Topics.GetByID(tg.id); ok {
			name = t.Name()
			ot.Topic = &name
		} else {
			ot.ErrorCode = kerr.UnknownTopicID.Code
			resp.Topics = append(resp.Topics, ot)
			continue
		}
		if t, ok := s.Topics.Get(name); ok {
			ot.TopicID = t.ID()
		}
		if err := s.Topics.Delete(name); err != nil {
			ot.ErrorCode = errorCode(err)
			ot.ErrorMessage = errMessage(err)
		} else {
			deleted = append(deleted, name)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	if g, ok := s.Extension(groupExtensionName).(*groupCoordinator); ok && len(deleted) > 0 {
		if err := g.d.DropTopics(deleted); err != nil {
			return nil, err // the server is closing
		}
	}
	return resp, nil
}
