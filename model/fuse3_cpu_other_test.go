//go:build !unix

package model

import "time"

// f3CPUTime is unavailable here (the flows/cpu-s metric is then meaningless).
func f3CPUTime() time.Duration { return 0 }
