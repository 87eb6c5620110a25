package runtime

import "github.com/weir-dev/weir/streams"

// Abandon stops the instance as kill -9 would (no commit, no leave) and
// returns, per input partition, the offset after the last record it
// processed. The state directory is released, as the kernel releases a
// killed process's lock. An embedded broker, if any, keeps running.
func (a *Application) Abandon() map[streams.TopicPartition]streams.Offset {
	processed := a.a.Abandon()
	_ = a.lock.Release()
	return processed
}

// MaxBufferedProduce sets how many records the instance's producer
// buffers (default 100000), so that a test can fill it.
func MaxBufferedProduce(n int) Option {
	return optFunc(func(c *config) { c.app.MaxBufferedProduce = n })
}

// EndTxnFault makes the instance call f before each transaction's end
// (ended false) and after it committed (ended true), with the number of
// input partitions whose offsets it commits: an error before skips the
// end, an error after replaces its result (see app.Options).
func EndTxnFault(f func(commit, ended bool, partitions int) error) Option {
	return optFunc(func(c *config) { c.app.EndTxnFault = f })
}
