//go:build !linux

package live

import (
	"context"
	"fmt"
	"time"
)

// Capture is a live capture; on this system it cannot be opened.
type Capture struct{}

// Open reports that live capture is not available on this system.
func Open(cfg Config) (*Capture, error) {
	return nil, fmt.Errorf("live: opening %q: %w", cfg.Interface, ErrUnsupported)
}

// Run is not available on this system.
func (c *Capture) Run(ctx context.Context, newHandler func(worker int) Handler) error {
	return ErrUnsupported
}

// Stats is not available on this system.
func (c *Capture) Stats() (Stats, error) { return Stats{}, ErrUnsupported }

// Close does nothing on this system.
func (c *Capture) Close() error { return nil }

// CPUTime is not available on this system.
func (c *Capture) CPUTime() (time.Duration, error) { return 0, ErrUnsupported }

// ThreadCPUTime is not available on this system.
func ThreadCPUTime() (time.Duration, error) { return 0, ErrUnsupported }

// LowerThreadPriority is not available on this system.
func LowerThreadPriority(delta int) error { return ErrUnsupported }
