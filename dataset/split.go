package dataset

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
)

// Entry is what sampling and splitting need to know about one record.
type Entry struct {
	Label       int    // class index, -1 when unlabelled (a group of its own)
	FirstSeenNs int64  // first-packet timestamp
	Source      string // capture path
}

// Entries reads the sampling/splitting keys of every record of d.
func Entries(d *Dataset) []Entry {
	es := make([]Entry, d.Len())
	for i := range es {
		es[i] = Entry{Label: d.Label(i), FirstSeenNs: d.FirstSeenNs(i), Source: d.Source(i)}
	}
	return es
}

// SplitMode selects how records are divided into train/valid/test.
type SplitMode string

// Split modes.
const (
	SplitNone   SplitMode = ""       // no split
	SplitRandom SplitMode = "random" // per class, seeded shuffle, 80/10/10
	SplitTime   SplitMode = "time"   // per class, latest 10 % to test, the rest shuffled into train/valid
	SplitSource SplitMode = "source" // whole captures go to one split, 80/10/10 of the flows
)

// ParseSplitMode checks a --split value.
func ParseSplitMode(s string) (SplitMode, error) {
	switch m := SplitMode(s); m {
	case SplitNone, SplitRandom, SplitTime, SplitSource:
		return m, nil
	}
	return "", fmt.Errorf("unknown split %q (want random, time or source)", s)
}

// SplitNames are the names of the three splits, in order.
func SplitNames() [3]string { return [3]string{"train", "valid", "test"} }

// SplitPath names the file of one split of the dataset at path:
// "x.nmds" -> "x-train.nmds", "x" -> "x-train".
func SplitPath(path, split string) string {
	ext := filepath.Ext(path)
	if strings.Contains(ext, string(filepath.Separator)) || ext == filepath.Base(path) {
		ext = ""
	}
	return strings.TrimSuffix(path, ext) + "-" + split + ext
}

// splitSizes follows the NetMamba+ recipe: train = ⌊0.8n⌋, valid = ⌊0.1n⌋, test = the rest.
func splitSizes(n int) (train, valid int) { return n * 8 / 10, n / 10 }

// groups returns the record indices of each label, labels in ascending order
// (unlabelled, -1, first), indices in dataset order.
func groups(es []Entry) [][]int {
	byLabel := map[int][]int{}
	for i, e := range es {
		byLabel[e.Label] = append(byLabel[e.Label], i)
	}
	labels := make([]int, 0, len(byLabel))
	for l := range byLabel {
		labels = append(labels, l)
	}
	slices.Sort(labels)
	out := make([][]int, len(labels))
	for i, l := range labels {
		out[i] = byLabel[l]
	}
	return out
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x6e65746d616d6261)) }

// byTime orders indices by first-packet time, ties in dataset order.
func byTime(es []Entry, idx []int) {
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case es[a].FirstSeenNs < es[b].FirstSeenNs:
			return -1
		case es[a].FirstSeenNs > es[b].FirstSeenNs:
			return 1
		}
		return 0
	})
}

// Sample applies the per-class bounds: a class (or the unlabelled group)
// with fewer than minPer records is dropped; one with more than maxPer keeps
// maxPer of them, chosen by a seeded shuffle, or the earliest ones when
// earliest is true (the time split's rule). 0 disables a bound. It returns
// the kept indices in dataset order and the dropped counts by reason.
func Sample(es []Entry, minPer, maxPer int, earliest bool, seed uint64) (kept []int, dropped map[string]uint64) {
	dropped = map[string]uint64{}
	rng := newRand(seed)
	for _, g := range groups(es) {
		if minPer > 0 && len(g) < minPer {
			dropped[fmt.Sprintf("class with fewer than %d flows (--min-per-class)", minPer)] += uint64(len(g))
			continue
		}
		if maxPer > 0 && len(g) > maxPer {
			g = slices.Clone(g)
			if earliest {
				byTime(es, g)
			} else {
				rng.Shuffle(len(g), func(i, j int) { g[i], g[j] = g[j], g[i] })
			}
			dropped[fmt.Sprintf("class above %d flows (--max-per-class)", maxPer)] += uint64(len(g) - maxPer)
			g = g[:maxPer]
		}
		kept = append(kept, g...)
	}
	slices.Sort(kept)
	return kept, dropped
}

// Split divides the records into train, valid and test, each returned in
// dataset order.
//
//   - random: per class, a seeded shuffle; the first ⌊0.8n⌋ go to train,
//     the next ⌊0.1n⌋ to valid, the rest to test.
//   - time: per class, ordered by first-packet time; the latest
//     n−⌊0.8n⌋−⌊0.1n⌋ go to test, the earlier ones are shuffled (seeded)
//     into train and valid.
//   - source: captures (distinct sources) are sorted, shuffled (seeded) and
//     taken in turn: a capture goes to train while train holds under 80 % of
//     all flows, then to valid while train+valid hold under 90 %, then to test.
//     No capture spans two splits.
func Split(es []Entry, mode SplitMode, seed uint64) (split [3][]int, err error) {
	rng := newRand(seed)
	switch mode {
	case SplitRandom, SplitTime:
		for _, g := range groups(es) {
			g = slices.Clone(g)
			nt, nv := splitSizes(len(g))
			if mode == SplitTime {
				byTime(es, g)
				tv := g[:nt+nv]
				rng.Shuffle(len(tv), func(i, j int) { tv[i], tv[j] = tv[j], tv[i] })
			} else {
				rng.Shuffle(len(g), func(i, j int) { g[i], g[j] = g[j], g[i] })
			}
			split[0] = append(split[0], g[:nt]...)
			split[1] = append(split[1], g[nt:nt+nv]...)
			split[2] = append(split[2], g[nt+nv:]...)
		}
	case SplitSource:
		bySrc := map[string][]int{}
		for i, e := range es {
			bySrc[e.Source] = append(bySrc[e.Source], i)
		}
		srcs := make([]string, 0, len(bySrc))
		for s := range bySrc {
			srcs = append(srcs, s)
		}
		slices.Sort(srcs)
		rng.Shuffle(len(srcs), func(i, j int) { srcs[i], srcs[j] = srcs[j], srcs[i] })
		total := len(es)
		for _, s := range srcs {
			switch {
			case 10*len(split[0]) < 8*total:
				split[0] = append(split[0], bySrc[s]...)
			case 10*(len(split[0])+len(split[1])) < 9*total:
				split[1] = append(split[1], bySrc[s]...)
			default:
				split[2] = append(split[2], bySrc[s]...)
			}
		}
	default:
		return split, fmt.Errorf("dataset: unknown split mode %q", mode)
	}
	for i := range split {
		slices.Sort(split[i])
	}
	return split, nil
}

// WriteSubset copies the records idx of d, in the given order, to a new
// dataset at path with metadata meta (its class map must be d's).
func WriteSubset(d *Dataset, idx []int, path string, meta Meta) error {
	return WriteRelabelled(d, idx, path, meta, nil)
}

// WriteRelabelled is WriteSubset with new labels: record i is written with
// label labels[i] (an index into meta.Classes, or -1), whatever d stored;
// labels nil keeps d's labels.
func WriteRelabelled(d *Dataset, idx []int, path string, meta Meta, labels []int) error {
	if labels != nil && len(labels) != d.Len() {
		return fmt.Errorf("dataset: %d labels for the %d records of %s", len(labels), d.Len(), d.Path())
	}
	w, err := Create(path, meta)
	if err != nil {
		return err
	}
	var r Record
	for _, i := range idx {
		if err := d.ReadRecord(i, &r); err != nil {
			w.Abort()
			return err
		}
		if labels != nil {
			if labels[i] < -1 || labels[i] >= len(meta.Classes) {
				w.Abort()
				return fmt.Errorf("dataset: record %d: label %d outside the %d classes", i, labels[i], len(meta.Classes))
			}
			r.Label = labels[i]
		}
		if err := w.Append(&r); err != nil {
			w.Abort()
			return err
		}
	}
	return w.Close()
}
