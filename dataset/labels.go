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
	Path  string // path as reached from the INPUT argument (filepath.Join(arg, rel))
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

// CollectInputs expands the prep INPUT arguments, in argument order. A file
// is read as given (unlabelled). A directory is walked in sorted path order;
// a capture in a first-level subdirectory (or deeper) is labelled with that
// subdirectory's name, a capture directly in the directory is unlabelled.
// Hidden files and directories (".name") and files that are not captures by
// name (IsCaptureName) are skipped and counted. folderClasses are the
// sorted names of every first-level subdirectory of the directory arguments.
func CollectInputs(args []string) (files []Input, folderClasses []string, skipped int, err error) {
	seen := map[string]bool{}
	for _, arg := range args {
		st, err := os.Stat(arg)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("input %s: %w", arg, err)
		}
		if !st.IsDir() {
			files = append(files, Input{Path: arg, Size: st.Size()})
			continue
		}
		err = filepath.WalkDir(arg, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if p == arg {
				return nil
			}
			if strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				skipped++
				return nil
			}
			rel, err := filepath.Rel(arg, p)
			if err != nil {
				return err
			}
			parts := strings.Split(rel, string(filepath.Separator))
			if d.IsDir() {
				if len(parts) == 1 && !seen[parts[0]] {
					seen[parts[0]] = true
					folderClasses = append(folderClasses, parts[0])
				}
				return nil
			}
			if !d.Type().IsRegular() || !IsCaptureName(d.Name()) {
				skipped++
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			in := Input{Path: p, Size: info.Size()}
			if len(parts) > 1 {
				in.Label = parts[0]
			}
			files = append(files, in)
			return nil
		})
		if err != nil {
			return nil, nil, 0, fmt.Errorf("input %s: %w", arg, err)
		}
	}
	slices.Sort(folderClasses)
	return files, folderClasses, skipped, nil
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
