// Package dataset stores labelled or unlabelled flows in netmamba's binary
// dataset format, splits and samples them, and exports them to the formats
// the official trainers read.
package dataset

import (
	"github.com/netmamba/netmamba/flow"
	"github.com/netmamba/netmamba/repr"
)

// Record is one flow of a dataset.
type Record struct {
	Key    flow.Key
	Stats  flow.Stats
	View   repr.View
	Label  int    // class index into the dataset's class map; -1 when unlabelled
	Source string // the capture's path as reached from the prep INPUT argument
	// Window is 0 for a flow's own view and i for its sliding-window view
	// starting at packet i (prep --windows; extract.Options.Windows).
	// Windowed rows follow their flow's row and share its Key, Stats,
	// Label and Source.
	Window int
}
