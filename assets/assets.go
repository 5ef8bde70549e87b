// Package assets holds what the netmamba binary carries inside it: the
// default classifier, trained on ../shared/data/ndpi-app by
// scripts/train-default.sh (see README.md for its test-set figures).
package assets

import (
	_ "embed"

	"github.com/netmamba/netmamba/checkpoint"
)

// DefaultModelName names the embedded default model in reports.
const DefaultModelName = "netmamba-default"

//go:embed netmamba-default.safetensors
var defaultModel []byte

// DefaultModel parses the embedded default model (a fresh copy each call).
func DefaultModel() (*checkpoint.File, error) {
	return checkpoint.ParseSafetensors(defaultModel)
}
