package main

import (
	"fmt"

	"github.com/netmamba/netmamba/assets"
	"github.com/netmamba/netmamba/checkpoint"
	"github.com/netmamba/netmamba/train"
)

// defaultModelName names the embedded default model in reports.
const defaultModelName = assets.DefaultModelName

// loadDefaultModel loads the classifier embedded in the binary.
func loadDefaultModel(batch, threads int) (*train.Loaded, error) {
	f, err := defaultModelFile()
	if err != nil {
		return nil, err
	}
	return train.ClassifierFromFile("embedded "+defaultModelName, f, batch, threads)
}

// defaultModelFile returns the embedded default model's checkpoint content.
func defaultModelFile() (*checkpoint.File, error) {
	f, err := assets.DefaultModel()
	if err != nil {
		return nil, fmt.Errorf("embedded default model: %w", err)
	}
	return f, nil
}
