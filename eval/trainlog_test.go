package eval

import (
	"bytes"
	"strings"
	"testing"
)

func TestTrainLogRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	recs := []TrainRecord{
		{Step: 10, Epoch: 0.5, LR: Float(1e-4), Loss: Float(1.25)},
		{Step: 20, Epoch: 1, LR: Float(2e-4), Loss: Float(0.75), ValLoss: Float(0.9), ValAccuracy: Float(0.625), ValMacroF1: Float(0.5), Time: "2026-11-27T12:00:00Z"},
	}
	for _, r := range recs {
		if err := AppendTrainRecord(&buf, r); err != nil {
			t.Fatal(err)
		}
	}
	want := `{"step":10,"epoch":0.5,"lr":0.0001,"loss":1.25}` + "\n"
	if !strings.HasPrefix(buf.String(), want) {
		t.Errorf("first line %q, want %q", strings.SplitN(buf.String(), "\n", 2)[0], want)
	}
	// A blank line and an unknown field are tolerated.
	buf.WriteString("\n" + `{"step":30,"epoch":1.5,"grad_norm":3.5}` + "\n")
	got, err := ReadTrainLog(&buf, "run.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || *got[1].ValMacroF1 != 0.5 || got[2].Loss != nil || got[2].Step != 30 {
		t.Errorf("read back %+v", got)
	}
	_, err = ReadTrainLog(strings.NewReader("{\"step\":1}\n{bad\n"), "run.jsonl")
	if err == nil || !strings.Contains(err.Error(), "run.jsonl:2") {
		t.Errorf("malformed line: error %v, want one naming run.jsonl:2", err)
	}
}

// FuzzReadTrainLog: arbitrary input yields records or an error, never a
// panic; whatever parses re-encodes and parses to the same records.
func FuzzReadTrainLog(f *testing.F) {
	f.Add([]byte(`{"step":1,"epoch":0.1,"lr":0.001,"loss":2.3}` + "\n"))
	f.Add([]byte(`{"step":20,"epoch":1,"val_loss":0.9,"val_accuracy":0.6,"val_macro_f1":0.5,"time":"2026-11-27T12:00:00Z"}`))
	f.Add([]byte("\n\n{\"step\":-1}\n{"))
	f.Add([]byte(`{"step":1e99}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := ReadTrainLog(bytes.NewReader(data), "fuzz.jsonl")
		if err != nil {
			return
		}
		var buf bytes.Buffer
		for _, r := range recs {
			if err := AppendTrainRecord(&buf, r); err != nil {
				t.Fatal(err)
			}
		}
		again, err := ReadTrainLog(&buf, "again.jsonl")
		if err != nil || len(again) != len(recs) {
			t.Fatalf("re-read %d records (err %v), want %d", len(again), err, len(recs))
		}
	})
}
