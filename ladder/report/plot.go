package report

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// LossPlotFile is the name of the loss plot finetune writes in its folder.
const LossPlotFile = "loss.png"

// Run is one training run's metrics under a legend name.
type Run struct {
	Name    string
	Records []Record
}

// PlotOptions tune a loss plot; the zero value is a sensible default.
type PlotOptions struct {
	Title  string  // default "loss"
	LogY   bool    // logarithmic loss axis
	Width  float64 // inches, default 8
	Height float64 // inches, default 5
}

// LoadRun reads a run given as a folder holding metrics.jsonl or as the
// file itself; "NAME=PATH" sets the legend name, else it is the folder's
// name (the file's folder when a file is given).
func LoadRun(arg string) (Run, error) {
	name, path, named := strings.Cut(arg, "=")
	if !named || path == "" {
		name, path = "", arg
	}
	st, err := os.Stat(path)
	if err != nil {
		return Run{}, fmt.Errorf("report: run %s: %w", arg, err)
	}
	file := path
	if st.IsDir() {
		file = filepath.Join(path, MetricsFile)
	}
	if name == "" {
		abs, err := filepath.Abs(file)
		if err != nil {
			abs = file
		}
		name = filepath.Base(filepath.Dir(abs))
	}
	recs, err := ReadMetricsFile(file)
	if err != nil {
		return Run{}, err
	}
	return Run{Name: name, Records: recs}, nil
}

// WriteLossPlot renders dir/loss.png (train and validation loss against
// step) from dir/metrics.jsonl; finetune calls it as the run goes and at
// the end.
func WriteLossPlot(dir string) error {
	recs, err := ReadMetricsFile(filepath.Join(dir, MetricsFile))
	if err != nil {
		return err
	}
	return PlotLoss(filepath.Join(dir, LossPlotFile), []Run{{Name: filepath.Base(dir), Records: recs}}, PlotOptions{})
}

// PlotLoss draws the train loss (solid) and validation loss (dashed, with
// points) of each run against step, one colour per run, and saves it to
// path in the format its extension names (.png, .svg, .pdf, .jpg, .eps,
// .tif). A single run is coloured by curve instead: train and validation.
// Points that are not finite (a diverged loss) or, on a log axis, not
// positive are left out.
func PlotLoss(path string, runs []Run, opt PlotOptions) error {
	if len(runs) == 0 {
		return errors.New("report: no runs to plot")
	}
	p := plot.New()
	p.Title.Text = opt.Title
	if p.Title.Text == "" {
		p.Title.Text = "loss"
	}
	p.X.Label.Text = "step"
	p.Y.Label.Text = "loss"
	if opt.LogY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.ThumbnailWidth = vg.Points(24)

	drawn := 0
	for i, run := range runs {
		train, val := lossPoints(run.Records, opt.LogY)
		trainColor, valColor := plotutil.Color(i), plotutil.Color(i)
		trainName, valName := run.Name+" train", run.Name+" val"
		if len(runs) == 1 {
			trainColor, valColor = plotutil.Color(0), plotutil.Color(1)
			trainName, valName = "train", "validation"
		}
		if len(train) > 0 {
			l, err := plotter.NewLine(train)
			if err != nil {
				return fmt.Errorf("report: run %s: %w", run.Name, err)
			}
			l.LineStyle.Color = trainColor
			l.LineStyle.Width = vg.Points(1)
			p.Add(l)
			p.Legend.Add(trainName, l)
			drawn++
		}
		if len(val) > 0 {
			l, pts, err := plotter.NewLinePoints(val)
			if err != nil {
				return fmt.Errorf("report: run %s: %w", run.Name, err)
			}
			l.LineStyle.Color = valColor
			l.LineStyle.Width = vg.Points(1.5)
			l.LineStyle.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
			pts.Color = valColor
			pts.Shape = draw.CircleGlyph{}
			pts.Radius = vg.Points(2.5)
			p.Add(l, pts)
			p.Legend.Add(valName, l, pts)
			drawn++
		}
	}
	if drawn == 0 {
		return errors.New("report: the runs hold no train or validation loss to plot")
	}
	// A little room past the data, so the last validation point (drawn at
	// the final step) is not cut in half by the frame.
	pad := func(a *plot.Axis, log bool) {
		if log {
			f := math.Pow(a.Max/a.Min, 0.03)
			a.Min, a.Max = a.Min/f, a.Max*f
			return
		}
		d := 0.03 * (a.Max - a.Min)
		if d == 0 {
			d = 0.5
		}
		a.Min, a.Max = a.Min-d, a.Max+d
	}
	pad(&p.X, false)
	pad(&p.Y, opt.LogY)
	w, h := opt.Width, opt.Height
	if w <= 0 {
		w = 8
	}
	if h <= 0 {
		h = 5
	}
	if err := p.Save(vg.Length(w)*vg.Inch, vg.Length(h)*vg.Inch, path); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// lossPoints returns the (step, train loss) and (step, val loss) points
// that can be drawn.
func lossPoints(recs []Record, logY bool) (train, val plotter.XYs) {
	ok := func(v float64) bool {
		return Has(v) && !math.IsNaN(v) && !math.IsInf(v, 0) && (!logY || v > 0)
	}
	for _, r := range recs {
		if ok(r.TrainLoss) {
			train = append(train, plotter.XY{X: float64(r.Step), Y: r.TrainLoss})
		}
		if ok(r.ValLoss) {
			val = append(val, plotter.XY{X: float64(r.Step), Y: r.ValLoss})
		}
	}
	return train, val
}
