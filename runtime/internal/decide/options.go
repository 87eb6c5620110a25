package decide

import (
	"errors"
	"fmt"
	"time"
)

// Options configure a Machine. The zero value of each field means its
// default; EnsureDefaults fills them in. The runtime passes its own
// options' values.
type Options struct {
	// CommitInterval is how often tasks commit. Default 1s.
	CommitInterval time.Duration
	// MaxTaskIdle bounds how long a task with several input partitions
	// waits for one that may hold earlier records before it processes
	// without it. Negative: never wait. Default 10s.
	MaxTaskIdle time.Duration
	// MaxBufferedProduce is the producer's capacity in records:
	// processing holds off from half of it buffered and goes on below a
	// quarter. Default 100000.
	MaxBufferedProduce int
	// MaxBufferedPerPartition bounds the records a task buffers per input
	// partition: fetching of the partition pauses at it and resumes below
	// half of it. Default 1000.
	MaxBufferedPerPartition int
}

// EnsureDefaults fills zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.CommitInterval == 0 {
		o.CommitInterval = time.Second
	}
	if o.MaxTaskIdle == 0 {
		o.MaxTaskIdle = 10 * time.Second
	}
	if o.MaxBufferedProduce == 0 {
		o.MaxBufferedProduce = 100_000
	}
	if o.MaxBufferedPerPartition == 0 {
		o.MaxBufferedPerPartition = 1000
	}
}

// Validate reports every problem with the options at once.
func (o *Options) Validate() error {
	var errs []error
	if o.CommitInterval < 0 {
		errs = append(errs, fmt.Errorf("decide: commit interval %v < 0", o.CommitInterval))
	}
	if o.MaxBufferedProduce < 0 {
		errs = append(errs, fmt.Errorf("decide: max buffered produce %d < 0", o.MaxBufferedProduce))
	}
	if o.MaxBufferedPerPartition < 0 {
		errs = append(errs, fmt.Errorf("decide: max buffered per partition %d < 0", o.MaxBufferedPerPartition))
	}
	return errors.Join(errs...)
}
