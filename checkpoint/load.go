package checkpoint

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Checkpoint file formats.
const (
	FormatSafetensors = "safetensors"
	FormatPth         = "pth" // torch.save zip archive
)

// DetectFormat tells a checkpoint's format from its first bytes.
func DetectFormat(raw []byte) (string, error) {
	switch {
	case len(raw) == 0:
		return "", fmt.Errorf("empty file")
	case zipMagicOK(raw):
		return FormatPth, nil
	case safetensorsMagicOK(raw):
		return FormatSafetensors, nil
	case len(raw) >= 2 && raw[0] == 0x80 && raw[1] <= 5:
		return FormatPth, nil // legacy torch pickle: ParsePth explains
	case len(raw) >= 9 && raw[8] == '{':
		return FormatSafetensors, nil // header length wrong: ParseSafetensors explains
	}
	return "", fmt.Errorf("unknown format: magic % x at offset 0 is neither safetensors (8-byte length + '{') nor a torch.save zip (PK\\x03\\x04)", raw[:min(8, len(raw))])
}

// Load reads a checkpoint, safetensors or .pth, choosing the reader from
// the content (not the extension).
func Load(path string) (*File, error) {
	f, _, err := LoadFormat(path)
	return f, err
}

// LoadFormat is Load that also returns the detected format.
func LoadFormat(path string) (*File, string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("checkpoint: %w", err)
	}
	format, err := DetectFormat(raw)
	if err != nil {
		return nil, "", fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	var f *File
	if format == FormatPth {
		f, err = parsePth(raw, true)
	} else {
		f, err = parseSafetensors(raw, true)
	}
	if err != nil {
		return nil, "", fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	return f, format, nil
}

// FormatForPath picks the output format from a file name: ".safetensors"
// or ".pth"/".pt"/".bin".
func FormatForPath(path string) (string, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".safetensors":
		return FormatSafetensors, nil
	case ".pth", ".pt", ".bin":
		return FormatPth, nil
	}
	return "", fmt.Errorf("checkpoint: %s: cannot tell the format from the extension (want .safetensors or .pth)", path)
}

// Save writes f to path in the format its extension names.
func Save(path string, f *File, opt WriteOptions) error {
	format, err := FormatForPath(path)
	if err != nil {
		return err
	}
	if format == FormatPth {
		return WritePth(path, f, opt)
	}
	return WriteSafetensors(path, f, opt)
}
