package broker

// Size returns the bytes of whole batches in the log's segments: the
// partition size DescribeLogDirs reports.
func (s *storageLog) Size() int64 { return s.l.Size() }
