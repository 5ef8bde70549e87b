package dataset

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Input is one capture file to read, with the class its location gives it.
type Input struct {
	Path  string // path as reached from the INPUT argument: the argument as spelt, "/", the relative path
	Label string // class name from the folder or the manifest; "" when unlabelled
	Size  int64  // file size in bytes
}

// IsCaptureName reports whether a file in a tree is read as a capture:
// .pcap, .pcapng, .cap, optionally followed by .gz (case-insensitive).
func IsCaptureName(name string) bool {
	n := strings.ToLower(name)
	n = strings.TrimSuffix(n, ".gz")
	return strings.HasSuffix(n, ".pcap") || strings.HasSuffix(n, ".pcapng") || strings.HasSuffix(n, ".cap")
}

// Reasons CollectInputs gives for files of a tree it does not read (keys of
// its skipped map, and of Summary.SkippedFiles).
const (
	SkipHidden     = "hidden (name starts with '.')"
	SkipNotCapture = "not a capture by name (.pcap, .pcapng, .cap[.gz])"
	SkipNotRegular = "not a regular file (device, socket, pipe or broken symlink)"
	SkipLoop       = "directory already walked (symlink loop or duplicate link)"
)

// JoinInput joins an INPUT argument and a slash-separated path relative to
// it, keeping the argument exactly as the user spelt it ("./x", "../x",
// absolute): no cleaning, and a trailing separator is not doubled.
func JoinInput(arg, rel string) string {
	if strings.HasSuffix(arg, "/") || strings.HasSuffix(arg, string(filepath.Separator)) {
		return arg + rel
	}
	return arg + "/" + rel
}

// CollectInputs expands the prep INPUT arguments, in argument order. A file
// is read as given (unlabelled). A directory is walked in sorted name order,
// following symbolic links (to files and directories; a directory whose
// real path was already walked from this argument is skipped, which stops
// link loops); a capture in a first-level subdirectory (or deeper) is
// labelled with that subdirectory's name, a capture directly in the
// directory is unlabelled. Paths keep the argument's spelling (JoinInput).
// Hidden files and directories (".name"), files that are not captures by
// name (IsCaptureName) and non-regular files are skipped and counted by
// reason (the Skip* constants). folderClasses are the sorted names of every
// first-level subdirectory of the directory arguments.
func CollectInputs(args []string) (files []Input, folderClasses []string, skipped map[string]uint64, err error) {
	seen := map[string]bool{}
	skipped = map[string]uint64{}
	for _, arg := range args {
		st, err := os.Stat(arg)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("input: %w", err) // *fs.PathError: names the file
		}
		if !st.IsDir() {
			files = append(files, Input{Path: arg, Size: st.Size()})
			continue
		}
		w := treeWalker{arg: arg, visited: map[string]bool{}, skipped: skipped}
		if err := w.walk(arg, ""); err != nil {
			return nil, nil, nil, fmt.Errorf("input: %w", err) // *fs.PathError: names the file
		}
		files = append(files, w.files...)
		for _, c := range w.classes {
			if !seen[c] {
				seen[c] = true
				folderClasses = append(folderClasses, c)
			}
		}
	}
	slices.Sort(folderClasses)
	return files, folderClasses, skipped, nil
}

// treeWalker walks one directory argument of CollectInputs.
type treeWalker struct {
	arg     string
	visited map[string]bool // real paths of the directories walked
	skipped map[string]uint64
	files   []Input
	classes []string // first-level subdirectory names
}

// walk reads directory dir (the argument's spelling joined with rel, the
// slash-separated path below the argument; "" for the argument itself).
func (w *treeWalker) walk(dir, rel string) error {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	if real, err = filepath.Abs(real); err != nil {
		return err
	}
	if w.visited[real] {
		w.skipped[SkipLoop]++
		return nil
	}
	w.visited[real] = true
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, d := range ents {
		name := d.Name()
		if strings.HasPrefix(name, ".") {
			if !d.IsDir() {
				w.skipped[SkipHidden]++
			}
			continue
		}
		childRel := name
		if rel != "" {
			childRel = rel + "/" + name
		}
		p := JoinInput(w.arg, childRel)
		st, err := os.Stat(p) // follows symlinks
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && d.Type()&fs.ModeSymlink != 0 {
				w.skipped[SkipNotRegular]++ // dangling symlink
				continue
			}
			return err
		}
		if st.IsDir() {
			if rel == "" {
				w.classes = append(w.classes, name)
			}
			if err := w.walk(p, childRel); err != nil {
				return err
			}
			continue
		}
		switch {
		case !st.Mode().IsRegular():
			w.skipped[SkipNotRegular]++
		case !IsCaptureName(name):
			w.skipped[SkipNotCapture]++
		default:
			in := Input{Path: p, Size: st.Size()}
			if rel != "" {
				in.Label, _, _ = strings.Cut(childRel, "/")
			}
			w.files = append(w.files, in)
		}
	}
	return nil
}

// Manifest maps capture files to class names.
type Manifest map[string]string // cleaned absolute path -> class name

// ReadManifest reads a CSV with a header naming a "file" column and a
// "label" (or "class") column; file paths are relative to the manifest's
// directory unless absolute.
func ReadManifest(path string) (Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	defer f.Close()
	cr := csv.NewReader(bufio.NewReader(f))
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("manifest %s: header: %w", path, err)
	}
	fileCol, labelCol := slices.Index(head, "file"), slices.Index(head, "label")
	if labelCol < 0 {
		labelCol = slices.Index(head, "class")
	}
	if fileCol < 0 || labelCol < 0 {
		return nil, fmt.Errorf("manifest %s: header %v needs a \"file\" and a \"label\" (or \"class\") column", path, head)
	}
	base, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	m := Manifest{}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", path, err)
		}
		if len(rec) <= max(fileCol, labelCol) {
			return nil, fmt.Errorf("manifest %s: line %d: %d fields, want at least %d", path, line, len(rec), max(fileCol, labelCol)+1)
		}
		p := rec[fileCol]
		if !filepath.IsAbs(p) {
			p = filepath.Join(base, p)
		}
		m[filepath.Clean(p)] = rec[labelCol]
	}
	return m, nil
}

// Lookup returns the manifest's class for a capture path.
func (m Manifest) Lookup(path string) (string, bool) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", false
	}
	l, ok := m[filepath.Clean(abs)]
	return l, ok
}

// ReadClassesFile reads class names, one per line, in index order; blank
// lines and lines starting with '#' are ignored. Duplicates are an error.
func ReadClassesFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("classes: %w", err)
	}
	var out []string
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if slices.Contains(out, line) {
			return nil, fmt.Errorf("classes %s: line %d: duplicate class %q", path, i+1, line)
		}
		out = append(out, line)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("classes %s: no class names", path)
	}
	return out, nil
}
