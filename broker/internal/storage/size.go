package storage

// Size returns the bytes of whole batches in the log's segment files (the
// size DescribeLogDirs reports): what a reader of the segments finds, not
// counting indexes or any torn tail past the last whole batch.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var n int64
	for _, s := range l.segs {
		n += s.size
	}
	return n
}
