package main

import (
	"fmt"

	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/train"
)

// defaultModelName names the embedded default model in reports.
const defaultModelName = "netmamba-default"

// loadDefaultModel loads the model embedded in the binary.
func loadDefaultModel(batch, threads int) (*train.Loaded, error) {
	return nil, fmt.Errorf("this build has no embedded default model yet: pass --model FILE")
}

// defaultModelFile returns the embedded default model's checkpoint content.
func defaultModelFile() (*checkpoint.File, error) {
	return nil, fmt.Errorf("this build has no embedded default model yet: pass --model FILE")
}
