package main

import (
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

func TestPlotTwoRuns(t *testing.T) {
	dir := t.TempDir()
	for i, name := range []string{"ladder", "xladder"} {
		run := filepath.Join(dir, name)
		os.MkdirAll(run, 0o755)
		f, _ := os.Create(filepath.Join(run, "metrics.jsonl"))
		for s := 0; s <= 100; s += 10 {
			fmt.Fprintf(f, `{"step":%d,"train_loss":%g}`+"\n", s, 5-float64(s)/40-float64(i)*0.3)
			if s%50 == 0 {
				fmt.Fprintf(f, `{"step":%d,"val_loss":%g}`+"\n", s, 5.2-float64(s)/45-float64(i)*0.3)
			}
		}
		f.Close()
	}
	out := filepath.Join(dir, "cmp.png")
	code, _ := evalStdout(t, "plot", filepath.Join(dir, "ladder"), filepath.Join(dir, "xladder", "metrics.jsonl"), "-o", out)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("%s is not a PNG: %v", out, err)
	}
	if code, _ := evalStdout(t, "plot", filepath.Join(dir, "ladder")); code != 2 {
		t.Errorf("no -o: exit %d, want 2", code)
	}
	if code, _ := evalStdout(t, "plot", filepath.Join(dir, "missing"), "-o", out); code != 1 {
		t.Errorf("missing run: exit %d, want 1", code)
	}
}
