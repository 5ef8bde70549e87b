package dataset

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/netmamba/netmamba/repr"
)

// ImageSide is the side of the square grayscale image of a byte view (40×40 = 1600).
const ImageSide = 40

// ClassName returns the name of label in classes, "" when unlabelled.
func ClassName(classes []string, label int) string {
	if label < 0 || label >= len(classes) {
		return ""
	}
	return classes[label]
}

// ExportU8 writes the byte views of d as raw uint8 rows (N × 1600,
// row-major, dataset order) to out and, if index is not nil, a CSV index
// with the header "row,file,label": row number, capture path as given to
// prep, class name (empty when unlabelled).
func ExportU8(d *Dataset, out, index io.Writer) error {
	bw := bufio.NewWriterSize(out, 1<<20)
	var cw *csv.Writer
	if index != nil {
		cw = csv.NewWriter(index)
		if err := cw.Write([]string{"row", "file", "label"}); err != nil {
			return err
		}
	}
	classes := d.Classes()
	for i := 0; i < d.Len(); i++ {
		if _, err := bw.Write(d.ViewBytes(i)); err != nil {
			return fmt.Errorf("export u8: row %d: %w", i, err)
		}
		if cw != nil {
			if err := cw.Write([]string{strconv.Itoa(i), d.Source(i), ClassName(classes, d.Label(i))}); err != nil {
				return fmt.Errorf("export u8: index row %d: %w", i, err)
			}
		}
	}
	if cw != nil {
		cw.Flush()
		if err := cw.Error(); err != nil {
			return fmt.Errorf("export u8: index: %w", err)
		}
	}
	return bw.Flush()
}

// UnlabelledFolder is the ImageFolder directory of unlabelled flows.
const UnlabelledFolder = "_unlabelled"

// ViewImage returns a byte view as a 40×40 grayscale image (row-major: byte
// i is pixel (i%40, i/40)), the official NetMamba PNG layout.
func ViewImage(view []byte) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, ImageSide, ImageSide))
	copy(img.Pix, view[:ImageSide*ImageSide])
	return img
}

// ExportPNG writes d as an ImageFolder tree: dir/[split/]class/NNNNNNNN.png,
// one 40×40 grayscale PNG per flow named by its row in d (so sorted names
// keep dataset order). A folder is created for every class, even empty ones,
// so that splits exported separately keep the same class indices; unlabelled
// flows go to UnlabelledFolder. It returns the number of images written.
func ExportPNG(d *Dataset, dir string) (int, error) {
	classes := d.Classes()
	if slices.Contains(classes, UnlabelledFolder) {
		return 0, fmt.Errorf("export png: a class is named %q, which is reserved for unlabelled flows", UnlabelledFolder)
	}
	root := dir
	if s := d.Meta().Split; s != "" {
		root = filepath.Join(dir, s)
	}
	for _, c := range classes {
		if err := validFolderName(c); err != nil {
			return 0, fmt.Errorf("export png: %w", err)
		}
		if err := os.MkdirAll(filepath.Join(root, c), 0o755); err != nil {
			return 0, fmt.Errorf("export png: %w", err)
		}
	}
	enc := png.Encoder{CompressionLevel: png.DefaultCompression}
	n := 0
	for i := 0; i < d.Len(); i++ {
		cls := ClassName(classes, d.Label(i))
		if cls == "" {
			cls = UnlabelledFolder
			if err := os.MkdirAll(filepath.Join(root, cls), 0o755); err != nil {
				return n, fmt.Errorf("export png: %w", err)
			}
		}
		p := filepath.Join(root, cls, fmt.Sprintf("%08d.png", i))
		f, err := os.Create(p)
		if err != nil {
			return n, fmt.Errorf("export png: %w", err)
		}
		err = enc.Encode(f, ViewImage(d.ViewBytes(i)))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return n, fmt.Errorf("export png: %s: %w", p, err)
		}
		n++
	}
	return n, nil
}

func validFolderName(c string) error {
	if c == "" || c == "." || c == ".." || strings.ContainsAny(c, `/\`) {
		return fmt.Errorf("class name %q cannot be a folder name", c)
	}
	return nil
}

// ImportPNG reads an ImageFolder tree (tree/class/*.png, classes = sorted
// folder names) into a new dataset at path, bytes only: each image must be
// 40×40; non-gray images are converted with the standard gray model.
// Records carry the label and the PNG path as source; keys, stats and
// sequences are zero. Images of UnlabelledFolder become unlabelled records.
func ImportPNG(tree, path string) (int, error) {
	ents, err := os.ReadDir(tree)
	if err != nil {
		return 0, fmt.Errorf("import png: %w", err)
	}
	var classes []string
	hasUnlabelled := false
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if e.Name() == UnlabelledFolder {
			hasUnlabelled = true
			continue
		}
		classes = append(classes, e.Name())
	}
	slices.Sort(classes)
	if len(classes) == 0 && !hasUnlabelled {
		return 0, fmt.Errorf("import png: %s has no class folders", tree)
	}
	w, err := Create(path, Meta{Classes: classes, Settings: Settings{Inputs: []string{tree}, Origin: "import"}})
	if err != nil {
		return 0, err
	}
	folders := classes
	if hasUnlabelled {
		folders = append([]string{UnlabelledFolder}, classes...)
	}
	var r Record
	n := 0
	for _, c := range folders {
		label := slices.Index(classes, c) // -1 for UnlabelledFolder
		files, err := filepath.Glob(filepath.Join(tree, c, "*.png"))
		if err != nil {
			w.Abort()
			return 0, fmt.Errorf("import png: %w", err)
		}
		slices.Sort(files)
		for _, p := range files {
			r = Record{Label: label, Source: p}
			if err := readViewPNG(p, r.View.Bytes[:]); err != nil {
				w.Abort()
				return 0, err
			}
			if err := w.Append(&r); err != nil {
				w.Abort()
				return 0, err
			}
			n++
		}
	}
	return n, w.Close()
}

func readViewPNG(p string, dst []byte) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("import png: %w", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return fmt.Errorf("import png: %s: %w", p, err)
	}
	b := img.Bounds()
	if b.Dx() != ImageSide || b.Dy() != ImageSide {
		return fmt.Errorf("import png: %s: image is %d×%d, want %d×%d", p, b.Dx(), b.Dy(), ImageSide, ImageSide)
	}
	if g, ok := img.(*image.Gray); ok {
		for y := 0; y < ImageSide; y++ {
			copy(dst[y*ImageSide:(y+1)*ImageSide], g.Pix[y*g.Stride:y*g.Stride+ImageSide])
		}
		return nil
	}
	for y := 0; y < ImageSide; y++ {
		for x := 0; x < ImageSide; x++ {
			dst[y*ImageSide+x] = color.GrayModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.Gray).Y
		}
	}
	return nil
}

// MMJSONName is the NetMamba+ trainer's file name for a split ("" -> data.json,
// the pre-training file).
func MMJSONName(split string) string {
	if split == "" {
		return "data.json"
	}
	return "data-" + split + ".json"
}

// ExportMMJSON writes d in the NetMamba+ trainer's JSON format to out: an
// array with one object per flow (docs/dataset-format.md, "mmjson"):
//
//	data          up to 5 strings, one per packet slot, of 320 space-separated decimal bytes
//	sizes         space-separated frame sizes of packets 0..19
//	signed_sizes  the same, negative for the responder's packets
//	intervals     space-separated inter-arrival times in seconds (first 0)
//	num_packet    packets in the flow
//	label, name   class index and name (-1 and "" when unlabelled)
//	pcap_file     the capture path
//
// Records without sequences (NPackets = 0, e.g. imported from PNG) are an error.
func ExportMMJSON(d *Dataset, out io.Writer) error {
	bw := bufio.NewWriterSize(out, 1<<20)
	classes := d.Classes()
	var r Record
	var b []byte
	if _, err := bw.WriteString("["); err != nil {
		return err
	}
	for i := 0; i < d.Len(); i++ {
		if err := d.ReadRecord(i, &r); err != nil {
			return err
		}
		if r.View.NPackets == 0 {
			return fmt.Errorf("export mmjson: record %d (%s) has no packet sequences", i, r.Source)
		}
		b = b[:0]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n{\"data\":["...)
		slots := min(r.View.NPackets, repr.ViewPackets)
		for s := 0; s < slots; s++ {
			if s > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			for j, v := range r.View.Bytes[s*repr.SlotBytes : (s+1)*repr.SlotBytes] {
				if j > 0 {
					b = append(b, ' ')
				}
				b = strconv.AppendUint(b, uint64(v), 10)
			}
			b = append(b, '"')
		}
		n := min(r.View.NPackets, repr.SeqLen)
		b = append(b, "],\"sizes\":\""...)
		for j := 0; j < n; j++ {
			if j > 0 {
				b = append(b, ' ')
			}
			b = strconv.AppendUint(b, uint64(r.View.Sizes[j]), 10)
		}
		b = append(b, "\",\"signed_sizes\":\""...)
		for j := 0; j < n; j++ {
			if j > 0 {
				b = append(b, ' ')
			}
			v := int64(r.View.Sizes[j])
			if r.View.Dirs[j] < 0 {
				v = -v
			}
			b = strconv.AppendInt(b, v, 10)
		}
		b = append(b, "\",\"intervals\":\""...)
		for j := 0; j < n; j++ {
			if j > 0 {
				b = append(b, ' ')
			}
			b = strconv.AppendFloat(b, r.View.IATs[j], 'f', -1, 64)
		}
		np := r.Stats.Packets
		if np == 0 {
			np = uint64(r.View.NPackets)
		}
		b = append(b, "\",\"num_packet\":"...)
		b = strconv.AppendUint(b, np, 10)
		b = append(b, ",\"label\":"...)
		b = strconv.AppendInt(b, int64(r.Label), 10)
		name, _ := json.Marshal(ClassName(classes, r.Label))
		b = append(b, ",\"name\":"...)
		b = append(b, name...)
		src, _ := json.Marshal(r.Source)
		b = append(b, ",\"pcap_file\":"...)
		b = append(b, src...)
		b = append(b, '}')
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	if _, err := bw.WriteString("\n]\n"); err != nil {
		return err
	}
	return bw.Flush()
}

// MMJSONMetadata is the NetMamba+ trainer's metadata.json.
type MMJSONMetadata struct {
	NameToIdx map[string]int `json:"name_to_idx"`
}

// NewMMJSONMetadata builds metadata.json's class map.
func NewMMJSONMetadata(classes []string) MMJSONMetadata {
	m := MMJSONMetadata{NameToIdx: map[string]int{}}
	for i, c := range classes {
		m.NameToIdx[c] = i
	}
	return m
}

// ExportFlows writes one row per record (FlowFieldNames plus label and
// source_file) in format "csv" or "jsonl".
func ExportFlows(d *Dataset, out io.Writer, format string) error {
	fw, err := NewFlowWriter(out, format, "label", "source_file")
	if err != nil {
		return err
	}
	classes := d.Classes()
	var r Record
	for i := 0; i < d.Len(); i++ {
		if err := d.ReadRecord(i, &r); err != nil {
			return err
		}
		if err := fw.Write(&r.Key, &r.Stats, ClassName(classes, r.Label), r.Source); err != nil {
			return fmt.Errorf("export %s: row %d: %w", format, i, err)
		}
	}
	return fw.Flush()
}
