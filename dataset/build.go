package dataset

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/netmamba/netmamba/capture"
	"github.com/netmamba/netmamba/extract"
)

// BuildOptions configure Build (the prep command).
type BuildOptions struct {
	Inputs      []string         // capture files and folder-per-class trees, in order
	Output      string           // dataset path (with a split: base of the three split files, see SplitPath)
	Extract     extract.Options  // flow and representation options
	ClassesFile string           // fixes class names and order; "" = sorted folder/manifest names
	Manifest    string           // CSV with file,label columns; overrides folder labels
	Split       SplitMode        // SplitNone for one file
	Seed        uint64           // sampling and split seed
	MinPerClass int              // 0 = no lower bound
	MaxPerClass int              // 0 = no cap
	Progress    func(p Progress) // called after each capture file; may be nil
}

// Progress reports how far Build has read.
type Progress struct {
	FilesDone, Files      int
	BytesDone, BytesTotal int64
	Packets, Flows        uint64
	Elapsed               time.Duration
}

// BuildResult is what Build wrote and counted.
type BuildResult struct {
	Outputs []string        // dataset files written (one, or train/valid/test)
	Counts  []uint64        // flows in each output
	Meta    Meta            // metadata of the whole build (classes, settings, summary over all outputs)
	Report  *extract.Report // the extractor's report
	Elapsed time.Duration   // wall time
}

// Build reads the inputs, labels flows by folder, manifest and class list,
// and writes a dataset (or its three splits). Dataset order: inputs in
// argument order, files of a tree in sorted path order, flows of a file in
// the extractor's order (first packet). Sampling and splitting keep that order.
func Build(o BuildOptions) (*BuildResult, error) {
	start := time.Now()
	files, folderClasses, skippedFiles, err := CollectInputs(o.Inputs)
	if err != nil {
		return nil, err
	}
	if o.Manifest != "" {
		m, err := ReadManifest(o.Manifest)
		if err != nil {
			return nil, err
		}
		for i := range files {
			if l, ok := m.Lookup(files[i].Path); ok {
				files[i].Label = l
			}
		}
	}
	var classes []string
	if o.ClassesFile != "" {
		if classes, err = ReadClassesFile(o.ClassesFile); err != nil {
			return nil, err
		}
	} else {
		set := map[string]bool{}
		for _, c := range folderClasses {
			set[c] = true
		}
		for _, f := range files {
			if f.Label != "" {
				set[f.Label] = true
			}
		}
		classes = slices.Sorted(maps.Keys(set))
	}
	classIdx := map[string]int{}
	for i, c := range classes {
		classIdx[c] = i
	}
	if _, err := ParseSplitMode(string(o.Split)); err != nil {
		return nil, err
	}
	if o.Extract.Windows > 1 && (o.Split != SplitNone || o.MinPerClass > 0 || o.MaxPerClass > 0) {
		// Splits and sampling pick rows, not flows: they would count a
		// flow's windows as flows, and a split would put windowed rows in
		// valid and test, which must hold one row per flow.
		return nil, fmt.Errorf("prep: --windows %d: cannot be combined with --split or --min/--max-per-class (they pick rows, not flows, and valid/test must not hold windows): prep the training split on its own with --windows", o.Extract.Windows)
	}
	ex, err := extract.New(o.Extract)
	if err != nil {
		return nil, err
	}

	meta := Meta{Classes: classes, Settings: Settings{
		Inputs: o.Inputs, Compat: o.Extract.Compat, Direction: "uni", Filter: o.Extract.Filter,
		Clean: o.Extract.Clean, Debias: o.Extract.Debias.Names(), ClassesFile: o.ClassesFile, Manifest: o.Manifest, SplitMode: string(o.Split),
		Seed: o.Seed, MinPerClass: o.MinPerClass, MaxPerClass: o.MaxPerClass, Origin: "prep",
	}}
	if o.Extract.Windows > 1 {
		meta.Settings.Windows = o.Extract.Windows
	}
	if o.Extract.Bidirectional {
		meta.Settings.Direction = "bi"
	}
	if o.Extract.IdleTimeout > 0 {
		meta.Settings.IdleTimeout = o.Extract.IdleTimeout.String()
	}
	if o.Extract.ActiveTimeout > 0 {
		meta.Settings.ActiveTimeout = o.Extract.ActiveTimeout.String()
	}
	dropped := map[string]uint64{}
	skippedFileReasons := map[string]uint64{}
	for k, v := range skippedFiles {
		skippedFileReasons[k] += v
	}

	post := o.Split != SplitNone || o.MinPerClass > 0 || o.MaxPerClass > 0
	target := o.Output
	if post {
		target = o.Output + ".build"
	}
	w, err := Create(target, meta)
	if err != nil {
		return nil, err
	}
	rep := &extract.Report{}
	var total int64
	for _, f := range files {
		total += f.Size
	}
	prog := Progress{Files: len(files), BytesTotal: total}
	var warnings []string
	var rec Record
	reorder := o.Extract.IdleTimeout > 0 || o.Extract.ActiveTimeout > 0
	var pending []Record // with timeouts: one file's flows, sorted before appending
	for _, in := range files {
		label := -1
		if in.Label != "" {
			i, ok := classIdx[in.Label]
			if !ok {
				label = -2 // flows of a class outside --classes: dropped, counted
			} else {
				label = i
			}
		}
		base := prog.BytesDone
		report := func() {
			prog.Packets = rep.Packets
			prog.Elapsed = time.Since(start)
			if o.Progress != nil {
				o.Progress(prog)
			}
		}
		err := readCapture(in.Path, ex, rep, func(read int64) {
			prog.BytesDone = base + min(read, in.Size)
			report()
		}, func(f *extract.Flow) error {
			if f.Window == 0 { // windowed views are counted in the report and the stored rows
				prog.Flows++
			}
			if label == -2 {
				if f.Window == 0 {
					dropped[fmt.Sprintf("class %q not in the class list", in.Label)]++
				}
				return nil
			}
			rec = Record{Key: f.Key, Stats: f.Stats, View: f.View, Label: label, Source: in.Path, Window: f.Window}
			if reorder {
				pending = append(pending, rec)
				return nil
			}
			return w.Append(&rec)
		})
		if err == nil && reorder {
			// Timeouts make the extractor emit flows in end order: restore
			// first-packet order (stable: a flow's windows stay right after it).
			slices.SortStableFunc(pending, func(a, b Record) int { return cmp.Compare(a.Stats.FirstSeenNs, b.Stats.FirstSeenNs) })
			for i := range pending {
				if err = w.Append(&pending[i]); err != nil {
					break
				}
			}
		}
		pending = pending[:0]
		var ce *capture.Error
		switch {
		case err == nil:
		case errors.As(err, &ce):
			skippedFileReasons["unreadable capture"]++
			warnings = append(warnings, err.Error())
		default:
			w.Abort()
			return nil, fmt.Errorf("prep: %s: %w", in.Path, err)
		}
		prog.BytesDone = base + in.Size
		prog.FilesDone++
		report()
	}
	rep.Finish()
	rep.Warnings = append(rep.Warnings, warnings...)

	sum := &w.Meta().Summary
	sum.Files = uint64(prog.FilesDone)
	sum.Packets = rep.Packets
	sum.FlowsRead = prog.Flows
	sum.SkippedPkts = map[string]uint64{}
	for k, v := range rep.Skipped {
		if k == extract.SkipCleaned { // a flow count: reported with the dropped flows
			dropped[k] += v
		} else {
			sum.SkippedPkts[k] = v
		}
	}
	sum.SkippedFiles = skippedFileReasons
	sum.DroppedFlows = dropped
	res := &BuildResult{Report: rep}
	if !post {
		sum.Seconds = time.Since(start).Seconds()
		if err := w.Close(); err != nil {
			return nil, err
		}
		res.Outputs, res.Counts = []string{o.Output}, []uint64{uint64(w.Len())}
		res.Meta, res.Elapsed = *w.Meta(), time.Since(start) // Close filled the flow counts
		return res, res.checkStored()
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	defer os.Remove(target)
	all, err := Open(target)
	if err != nil {
		return nil, err
	}
	defer all.Close()
	es := Entries(all)
	kept, sdrop := Sample(es, o.MinPerClass, o.MaxPerClass, o.Split == SplitTime, o.Seed)
	for k, v := range sdrop {
		dropped[k] += v
	}
	bm := all.Meta()
	bm.Summary.DroppedFlows = dropped
	bm.Summary.Seconds = time.Since(start).Seconds()
	if o.Split == SplitNone {
		if err := WriteSubset(all, kept, o.Output, bm); err != nil {
			return nil, err
		}
		res.Outputs, res.Counts = []string{o.Output}, []uint64{uint64(len(kept))}
	} else {
		sub := make([]Entry, len(kept))
		for i, k := range kept {
			sub[i] = es[k]
		}
		sp, err := Split(sub, o.Split, o.Seed)
		if err != nil {
			return nil, err
		}
		for s, name := range SplitNames() {
			idx := make([]int, len(sp[s]))
			for i, j := range sp[s] {
				idx[i] = kept[j]
			}
			sm := bm
			sm.Split = name
			p := SplitPath(o.Output, name)
			if err := WriteSubset(all, idx, p, sm); err != nil {
				return nil, err
			}
			res.Outputs = append(res.Outputs, p)
			res.Counts = append(res.Counts, uint64(len(idx)))
		}
	}
	// Whole-build summary: per-class counts over the kept flows.
	bm.Summary.Flows = uint64(len(kept))
	bm.Summary.FlowsPerClass = map[string]uint64{}
	for _, c := range classes {
		bm.Summary.FlowsPerClass[c] = 0
	}
	bm.Summary.Unlabelled = 0
	for _, k := range kept {
		if l := es[k].Label; l >= 0 {
			bm.Summary.FlowsPerClass[classes[l]]++
		} else {
			bm.Summary.Unlabelled++
		}
	}
	res.Meta, res.Elapsed = bm, time.Since(start)
	return res, res.checkStored()
}

// ErrNoFlows is wrapped by Build's error when no flow was stored; Build
// then removes the empty output files.
var ErrNoFlows = errors.New("no flows stored")

// checkStored removes the outputs of a build that stored no flow and
// returns an ErrNoFlows error listing the skip and drop reasons.
func (res *BuildResult) checkStored() error {
	if res.Meta.Summary.Flows > 0 {
		return nil
	}
	for _, p := range res.Outputs {
		_ = os.Remove(p)
	}
	outs := res.Outputs
	res.Outputs, res.Counts = nil, nil
	s := res.Meta.Summary
	var why []string
	add := func(kind string, m map[string]uint64) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if m[k] > 0 {
				why = append(why, fmt.Sprintf("%d %s: %s", m[k], kind, k))
			}
		}
	}
	add("files skipped", s.SkippedFiles)
	add("packets skipped", s.SkippedPkts)
	add("flows dropped", s.DroppedFlows)
	if res.Report != nil {
		for _, w := range res.Report.Warnings[:min(len(res.Report.Warnings), 5)] {
			why = append(why, w)
		}
	}
	if len(why) == 0 {
		why = append(why, "no packets read")
	}
	return fmt.Errorf("prep: %w from %d files (%d packets, %d flows read); %s not written: %s",
		ErrNoFlows, s.Files, s.Packets, s.FlowsRead, strings.Join(outs, ", "), strings.Join(why, "; "))
}

// progressEvery is how many bytes Build reads between progress reports.
const progressEvery = 1 << 20

// countingReader counts the bytes read and reports every progressEvery bytes.
type countingReader struct {
	r        io.Reader
	n, last  int64
	progress func(read int64)
}

// Read reads from the wrapped reader and reports the bytes read so far.
func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n-c.last >= progressEvery {
		c.last = c.n
		c.progress(c.n)
	}
	return n, err
}

// readCapture streams one capture file through ex, reporting the bytes read.
// Errors opening or parsing the file's header are *capture.Error values (or
// *os.PathError for a missing file, wrapped as a capture.Error).
func readCapture(path string, ex *extract.Extractor, rep *extract.Report, progress func(int64), emit func(*extract.Flow) error) error {
	f, err := os.Open(path)
	if err != nil {
		return &capture.Error{File: path, Msg: "open", Err: err}
	}
	defer f.Close()
	r, err := capture.NewReader(&countingReader{r: f, progress: progress}, path)
	if err != nil {
		return err
	}
	return ex.Capture(r, rep, emit)
}
