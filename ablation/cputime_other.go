//go:build !unix

package ablation

import "time"

// processCPUTime is unknown on this platform.
func processCPUTime() (time.Duration, bool) { return 0, false }
