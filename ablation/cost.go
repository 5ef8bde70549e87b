package ablation

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/netmamba/netmamba/eval"
)

// PretrainCost is what one variant's pre-training cost. It is written as
// JSON beside the checkpoint (NAME-pretrain.cost.json) when the
// pre-training ends, so an ablation that reuses the checkpoint still
// reports it.
type PretrainCost struct {
	Seconds  float64 `json:"seconds"`   // wall time of the invocation that finished it (model build, steps, checkpoint write)
	Steps    int     `json:"steps"`     // optimiser steps in all
	RunSteps int     `json:"run_steps"` // steps taken in Seconds (fewer than Steps after a resumed interruption)
	// LoopSeconds is the training loop's wall time as the resume state
	// summed it: over every process of a resumed pre-training, except
	// that a state saved by a binary that did not record it contributes 0
	// (then it covers only the processes after it). The cost table shows
	// it for a resumed run only when it exceeds Seconds, i.e. when the
	// earlier processes were recorded.
	LoopSeconds float64 `json:"loop_seconds,omitempty"`
	Batch       int     `json:"batch"`         // flows per step
	FlowsPerSec float64 `json:"flows_per_sec"` // RunSteps·Batch / Seconds
	Threads     int     `json:"threads"`       // worker threads (0: all CPUs; -1: unknown)
	FinalLoss   float64 `json:"final_loss"`    // mean loss of the last epoch (0: unknown)
	// Source is "measured" (this file) or "log" (estimated from the
	// timestamps of the training log, for checkpoints without a cost file).
	Source string `json:"source"`
}

// costPath is the cost file of the checkpoint ckpt.
func costPath(ckpt string) string { return strings.TrimSuffix(ckpt, ".safetensors") + ".cost.json" }

// writePretrainCost writes c beside ckpt (temporary file + rename).
func writePretrainCost(ckpt string, c *PretrainCost) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("ablation: pre-training cost: %w", err)
	}
	p := costPath(ckpt)
	if err := os.WriteFile(p+".tmp", append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("ablation: %w", err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		return fmt.Errorf("ablation: %w", err)
	}
	return nil
}

// readPretrainCost returns the cost of the pre-trained checkpoint ckpt:
// from its cost file, else estimated from its training log
// (NAME-pretrain.log.jsonl), else nil (unknown).
func readPretrainCost(ckpt string) (*PretrainCost, error) {
	p := costPath(ckpt)
	b, err := os.ReadFile(p)
	if err == nil {
		var c PretrainCost
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("ablation: %s: %w", p, err)
		}
		return &c, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("ablation: %w", err)
	}
	return costFromLog(strings.TrimSuffix(ckpt, ".safetensors") + ".log.jsonl")
}

// costFromLog estimates a pre-training's cost from the per-step
// timestamps of its training log (1 s resolution). The first record is
// written after step 1, so the span covers Steps-1 steps and is scaled up.
// A pause between an interruption and its resumption counts as training
// time. It returns nil when the log is missing or has too few timed records.
func costFromLog(path string) (*PretrainCost, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ablation: %w", err)
	}
	defer f.Close()
	recs, err := eval.ReadTrainLog(f, path)
	if err != nil {
		return nil, fmt.Errorf("ablation: %w", err)
	}
	var first, last time.Time
	var s0, s1 int64
	var loss float64
	for _, r := range recs {
		if r.Time == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, r.Time)
		if err != nil {
			return nil, fmt.Errorf("ablation: %s: step %d: %w", path, r.Step, err)
		}
		if first.IsZero() {
			first, s0 = t, r.Step
		}
		last, s1 = t, r.Step
		if r.Loss != nil {
			loss = *r.Loss
		}
	}
	if first.IsZero() || s1 <= s0 {
		return nil, nil
	}
	secs := last.Sub(first).Seconds() * float64(s1) / float64(s1-s0)
	c := &PretrainCost{Seconds: secs, Steps: int(s1), RunSteps: int(s1), Threads: -1, FinalLoss: loss, Source: "log"}
	return c, nil
}

// VariantCost is one variant's share of an ablation's cost.
type VariantCost struct {
	Variant  string
	Pretrain *PretrainCost // nil: not pre-trained, or cost unknown
	Runs     int           // fine-tuning runs (all phases and OOD)
	Seconds  float64       // their summed wall time
}

// Costs returns each variant's cost, in grid order. Fine-tuning seconds
// are those of every run in the result, including runs reused from an
// earlier invocation (their result files keep their cost).
func (r *Result) Costs() []VariantCost {
	var out []VariantCost
	for _, v := range r.Grid.Variants {
		c := VariantCost{Variant: v.Name}
		if p, ok := r.Pretrain[v.Name]; ok {
			c.Pretrain = &p
		}
		for _, runs := range [][]Run{r.Runs, r.OODRuns} {
			for _, run := range runs {
				if run.Variant == v.Name {
					c.Runs++
					c.Seconds += run.Seconds
				}
			}
		}
		out = append(out, c)
	}
	return out
}

// writeCost appends the cost section of the markdown report.
func (r *Result) writeCost(b *strings.Builder) {
	g := &r.Grid
	b.WriteString("\n## Cost\n\n")
	var names []string
	for _, v := range g.Variants {
		names = append(names, v.Name)
	}
	fmt.Fprintf(b, "Grid: variants %s; losses %s; fractions %v; seeds %v; fine-tuning %d epochs, batch %d, blr %g; ",
		strings.Join(names, ", "), strings.Join(g.Losses, ", "), g.Fractions, g.Seeds, g.Epochs, g.Batch, g.blr())
	if len(g.PretrainData) > 0 && g.PretrainSteps > 0 {
		fmt.Fprintf(b, "pre-training %d steps on %s; ", g.PretrainSteps, strings.Join(g.PretrainData, ", "))
	} else {
		b.WriteString("no pre-training; ")
	}
	fmt.Fprintf(b, "hold-out %d; %s threads, %d fine-tuning run(s) at once with %s thread(s) each.\n\n",
		g.HoldOut, threadsString(g.Threads), max(g.Jobs, 1), threadsString(g.RunThreads()))
	b.WriteString("| variant | pre-training s | steps | flows/s | fine-tuning runs | fine-tuning s (sum) | s per run (mean) |\n|---|---|---|---|---|---|---|\n")
	var preSum, ftSum float64
	preKnown := true
	for _, c := range r.Costs() {
		pre, steps, fps := "-", "-", "-"
		if c.Pretrain != nil {
			p := c.Pretrain
			pre = fmt.Sprintf("%.1f", p.Seconds)
			if p.Source == "log" {
				pre = "≈" + pre + " (from log)"
			}
			if p.RunSteps < p.Steps {
				pre += fmt.Sprintf(" (last %d steps; resumed", p.RunSteps)
				if p.LoopSeconds > p.Seconds { // earlier runs recorded their loop time (older states did not)
					pre += fmt.Sprintf("; %.1f s of training loop over all its runs", p.LoopSeconds)
				}
				pre += ")"
			}
			steps = fmt.Sprint(p.Steps)
			if p.FlowsPerSec > 0 {
				fps = fmt.Sprintf("%.1f", p.FlowsPerSec)
			}
			preSum += p.Seconds
		} else if len(g.PretrainData) > 0 && g.PretrainSteps > 0 {
			pre, preKnown = "unknown", false
		}
		mean := "-"
		if c.Runs > 0 {
			mean = fmt.Sprintf("%.1f", c.Seconds/float64(c.Runs))
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %d | %.1f | %s |\n", c.Variant, pre, steps, fps, c.Runs, c.Seconds, mean)
		ftSum += c.Seconds
	}
	fmt.Fprintf(b, "\nIn all: pre-training %.1f s", preSum)
	if !preKnown {
		b.WriteString(" (some unknown)")
	}
	fmt.Fprintf(b, ", fine-tuning %.1f s summed over runs. This invocation: %.1f s wall", ftSum, r.TotalSecs)
	if r.CPUSecs > 0 {
		fmt.Fprintf(b, ", %.1f s CPU (user+system)", r.CPUSecs)
	}
	b.WriteString("; runs and checkpoints reused from earlier invocations cost it nothing. " +
		"A run's seconds are its wall time (training, validation, test scoring); runs that went at once shared the cores, so their sum can exceed the wall time.\n")
}
