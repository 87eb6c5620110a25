package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// IsTerminal reports whether w is a character device (a terminal), the
// condition for showing a progress indicator on it.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Progress redraws one status line ("\r<verb> N records (R/s)") on a
// terminal while a long produce or consume runs. Its goroutine is started by
// StartProgress and stopped, and waited for, by Stop.
type Progress struct {
	w     io.Writer
	verb  string
	count *atomic.Int64
	now   func() time.Time
	start time.Time

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// StartProgress starts redrawing the count on w at every tick received from
// ticks (callers pass a time.Ticker's channel; tests pass their own). A nil w
// returns a Progress whose Stop does nothing.
func StartProgress(w io.Writer, verb string, count *atomic.Int64, ticks <-chan time.Time, now func() time.Time) *Progress {
	p := &Progress{w: w, verb: verb, count: count, now: now, stop: make(chan struct{}), done: make(chan struct{})}
	if w == nil {
		close(p.done)
		return p
	}
	p.start = now()
	go p.run(ticks)
	return p
}

func (p *Progress) run(ticks <-chan time.Time) {
	defer close(p.done)
	for {
		select {
		case <-p.stop:
			return
		case <-ticks:
			p.draw()
		}
	}
}

func (p *Progress) draw() {
	n := p.count.Load()
	secs := p.now().Sub(p.start).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(n) / secs
	}
	fmt.Fprintf(p.w, "\r%s %d records (%.0f/s)  ", p.verb, n, rate)
}

// Stop ends the redraws, waits for the goroutine, and leaves a final line
// with the total. It is safe to call more than once.
func (p *Progress) Stop() {
	p.once.Do(func() {
		if p.w == nil {
			return
		}
		close(p.stop)
		<-p.done
		p.draw()
		fmt.Fprintln(p.w)
	})
}

// TerminalProgress starts a Progress on w ticking every half second if w is
// a terminal, and an inert one otherwise.
func TerminalProgress(w io.Writer, verb string, count *atomic.Int64) (p *Progress, stop func()) {
	if !IsTerminal(w) {
		p = StartProgress(nil, verb, count, nil, time.Now)
		return p, p.Stop
	}
	t := time.NewTicker(500 * time.Millisecond)
	p = StartProgress(w, verb, count, t.C, time.Now)
	return p, func() { p.Stop(); t.Stop() }
}
