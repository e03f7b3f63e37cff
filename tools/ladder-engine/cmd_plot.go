package main

import (
	"fmt"

	"ladder-engine/ladder/report"
)

// runPlot overlays the loss curves of several runs (ladder vs xladder vs
// lora) in one picture.
func runPlot(args []string) error {
	fs := newFlags("plot", "RUN... -o FILE.png [--title T] [--log-y]\n\nRUN is a run folder holding metrics.jsonl, or the file itself; NAME=RUN sets its legend name (default: the folder's name)")
	out := fs.String("o", "", "output image (.png, .svg, .pdf by extension; required)")
	title := fs.String("title", "", "plot title (default \"loss\")")
	logY := fs.Bool("log-y", false, "logarithmic loss axis")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("no runs: pass one or more run folders (or metrics.jsonl files)")
	}
	if *out == "" {
		return usagef("no output: pass -o FILE.png")
	}
	var runs []report.Run
	for _, arg := range pos {
		r, err := report.LoadRun(arg)
		if err != nil {
			return err
		}
		runs = append(runs, r)
	}
	if err := report.PlotLoss(*out, runs, report.PlotOptions{Title: *title, LogY: *logY}); err != nil {
		return err
	}
	fmt.Printf("wrote %s (%d runs)\n", *out, len(runs))
	return nil
}
