package report

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// synthRun makes a plausible loss curve: exponential decay to floor plus a
// little deterministic wiggle, validation every 50 steps.
func synthRun(start, floor, rate float64, steps int) []Record {
	var recs []Record
	for s := 0; s <= steps; s += 5 {
		l := floor + (start-floor)*math.Exp(-rate*float64(s)) + 0.05*math.Sin(float64(s)*0.7)
		r := Record{Step: s, TrainLoss: l, LR: 3e-4}
		if s%50 == 0 {
			r.ValLoss = floor + 0.1 + (start-floor)*math.Exp(-rate*float64(s))
		}
		recs = append(recs, r)
	}
	return recs
}

func TestPlotLossPNG(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "cmp.png")
	runs := []Run{
		{Name: "ladder", Records: synthRun(6, 1.8, 0.01, 400)},
		{Name: "xladder", Records: synthRun(6, 1.6, 0.015, 400)},
	}
	if err := PlotLoss(out, runs, PlotOptions{Title: "ladder vs xladder"}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	// 8×5 inches at vg's default 96 dpi.
	if b := img.Bounds(); b.Dx() != 768 || b.Dy() != 480 {
		t.Errorf("image %v, want 768×480", b)
	}
	if dump := os.Getenv("LADDER_PLOT_DUMP"); dump != "" {
		data, _ := os.ReadFile(out)
		os.WriteFile(dump, data, 0o644)
	}
}

func TestWriteLossPlot(t *testing.T) {
	dir := t.TempDir()
	w, err := CreateMetrics(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range synthRun(5, 2, 0.02, 200) {
		w.Write(r)
	}
	// A diverged step and a log-axis-hostile value must not break the plot.
	w.Write(Record{Step: 205, TrainLoss: math.Inf(1)})
	w.Close()
	if err := WriteLossPlot(dir); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, LossPlotFile)); err != nil || st.Size() == 0 {
		t.Fatalf("loss.png: %v", err)
	}
	run, err := LoadRun(dir)
	if err != nil || run.Name != filepath.Base(dir) {
		t.Fatalf("LoadRun(dir) = %q, %v", run.Name, err)
	}
	if err := PlotLoss(filepath.Join(dir, "log.svg"), []Run{run}, PlotOptions{LogY: true}); err != nil {
		t.Fatal(err)
	}
	run, err = LoadRun("mine=" + filepath.Join(dir, MetricsFile))
	if err != nil || run.Name != "mine" {
		t.Fatalf("LoadRun(name=file) = %q, %v", run.Name, err)
	}
}

func TestPlotLossNothingToDraw(t *testing.T) {
	err := PlotLoss(filepath.Join(t.TempDir(), "x.png"), []Run{{Name: "a", Records: []Record{{Step: 1, LR: 1}}}}, PlotOptions{})
	if err == nil {
		t.Fatal("want an error for runs without losses")
	}
}
