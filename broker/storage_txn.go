package broker

import (
	"context"

	"github.com/weir-dev/weir/broker/internal/topics"
)

// storageLog implements topics.TxnLog.
var _ topics.TxnLog = (*storageLog)(nil)

func (s *storageLog) LastStableOffset() topics.Offset { return s.l.LastStableOffset() }

func (s *storageLog) AbortedTransactions(from, to topics.Offset) []topics.AbortedTxn {
	as := s.l.AbortedTransactions(from, to)
	out := make([]topics.AbortedTxn, len(as))
	for i, a := range as {
		out[i] = topics.AbortedTxn{ProducerID: a.ProducerID, FirstOffset: a.FirstOffset}
	}
	return out
}

func (s *storageLog) AppendMarker(ctx context.Context, m topics.Marker) error {
	_, err := s.l.AppendMarker(ctx, m)
	if err != nil {
		s.health.appendFailed(s.l.Dir(), err)
	}
	return kafkaErr(err)
}

func (s *storageLog) AppendTrusted(ctx context.Context, batches []byte) error {
	err := s.l.AppendTrusted(ctx, batches)
	if err != nil {
		s.health.appendFailed(s.l.Dir(), err)
	}
	return kafkaErr(err)
}

func (s *storageLog) Producers() []topics.ProducerState {
	ps := s.l.Producers()
	out := make([]topics.ProducerState, len(ps))
	for i, p := range ps {
		out[i] = topics.ProducerState{
			ProducerID: p.ProducerID, Epoch: p.Epoch, LastSequence: p.LastSequence,
			LastOffset: p.LastOffset, TxnStartOffset: p.TxnStartOffset,
		}
	}
	return out
}

func (s *storageLog) OpenTxn(pid int64) (int16, bool) { return s.l.OpenTxn(pid) }

func (s *storageLog) AppendNoWaitInTxn(batches []byte, epoch topics.Epoch, pid int64, pepoch int16) (topics.AppendResult, error) {
	if err := s.checkProduced(batches); err != nil {
		return topics.AppendResult{}, err
	}
	return s.appended(s.l.AppendNoWaitInTxn(batches, epoch, pid, pepoch))
}

var _ topics.LeaderTxnLog = (*storageLog)(nil)

func (s *storageLog) WriteMarker(m topics.Marker, leaderEpoch topics.Epoch) (topics.AppendResult, error) {
	res, err := s.l.WriteMarker(m, leaderEpoch)
	if err != nil {
		s.health.appendFailed(s.l.Dir(), err)
		return topics.AppendResult{}, kafkaErr(err)
	}
	return topics.AppendResult{BaseOffset: res.BaseOffset, LastOffset: res.LastOffset, LogStartOffset: res.LogStartOffset}, nil
}

func (s *storageLog) WriteTrusted(batches []byte, leaderEpoch topics.Epoch) (topics.AppendResult, error) {
	res, err := s.l.WriteTrusted(batches, leaderEpoch)
	if err != nil {
		s.health.appendFailed(s.l.Dir(), err)
		return topics.AppendResult{}, kafkaErr(err)
	}
	return topics.AppendResult{BaseOffset: res.BaseOffset, LastOffset: res.LastOffset, LogStartOffset: res.LogStartOffset}, nil
}
