//go:build !unix

package kernels

import "time"

// attnCPUTime is unavailable here; benchmarks then skip the CPU metric.
func attnCPUTime() time.Duration { return 0 }
