package eval

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// TrainRecord is one line of a training log (JSON Lines: one JSON object
// per line, UTF-8, '\n'-terminated). The trainer appends a record every
// logging interval (training fields) and after every validation pass
// (val_* fields); the HTML report draws learning curves from it.
//
// Schema (snake_case keys; absent optional fields mean "not measured"):
//
//	step          int     optimiser steps done so far (required)
//	epoch         float   fractional epoch, epoch + iteration/iterations_per_epoch (required)
//	lr            float   learning rate of the last step (schedule value, before group scales)
//	loss          float   mean training loss since the previous record
//	val_loss      float   validation loss
//	val_accuracy  float   validation accuracy in [0, 1]
//	val_macro_f1  float   validation macro-F1 in [0, 1]
//	time          string  RFC 3339 wall-clock time of the record
//
// Unknown keys are ignored by ReadTrainLog, so the trainer may add fields.
type TrainRecord struct {
	Step        int64    `json:"step"`
	Epoch       float64  `json:"epoch"`
	LR          *float64 `json:"lr,omitempty"`
	Loss        *float64 `json:"loss,omitempty"`
	ValLoss     *float64 `json:"val_loss,omitempty"`
	ValAccuracy *float64 `json:"val_accuracy,omitempty"`
	ValMacroF1  *float64 `json:"val_macro_f1,omitempty"`
	Time        string   `json:"time,omitempty"`
}

// Float returns a pointer to v, for the optional TrainRecord fields.
func Float(v float64) *float64 { return &v }

// AppendTrainRecord writes rec as one JSON line to w.
func AppendTrainRecord(w io.Writer, rec TrainRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("eval: training log record at step %d: %w", rec.Step, err)
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("eval: training log record at step %d: %w", rec.Step, err)
	}
	return nil
}

// ReadTrainLog parses a training log; name (the file name) appears in
// errors with the line number. Blank lines are skipped.
func ReadTrainLog(r io.Reader, name string) ([]TrainRecord, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var recs []TrainRecord
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var rec TrainRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, fmt.Errorf("eval: training log %s:%d: %w", name, line, err)
		}
		recs = append(recs, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("eval: training log %s: %w", name, err)
	}
	return recs, nil
}
