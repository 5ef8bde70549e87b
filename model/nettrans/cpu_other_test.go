//go:build !unix

package nettrans

import "time"

// cpuTime is unavailable here (the flows/cpu-s metric is then meaningless).
func cpuTime() time.Duration { return 0 }
