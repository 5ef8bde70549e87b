//go:build !unix

package train

import "time"

// nettransCPUTime is unavailable here: CPU ms/flow reads as 0.
func nettransCPUTime() time.Duration { return 0 }
