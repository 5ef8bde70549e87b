//go:build !linux

package live

import (
	"context"
	"fmt"
)

// Send is not available on this system.
func Send(ctx context.Context, cfg SendConfig, frames [][]byte) (SendStats, error) {
	return SendStats{}, fmt.Errorf("live: send on %q: %w", cfg.Interface, ErrUnsupported)
}
