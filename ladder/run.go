package ladder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"ladder-engine/engine"
	"ladder-engine/gguf"
	"ladder-engine/ladder/report"
	"ladder-engine/ops"
)

// RunOptions say where a training run writes and what it reports.
type RunOptions struct {
	Dir         string    // run folder: metrics.jsonl, loss.png, checkpoint.gguf
	Adapter     string    // the final adapter file (default Dir/adapter.gguf)
	AdapterType gguf.Type // F32, F16 or BF16 matrices in the adapter
	Log         io.Writer // progress lines (nil: discarded)
	Resumed     bool      // append to metrics.jsonl instead of starting it afresh
	NoPlot      bool      // skip loss.png (tests)
	// Extra is stored in checkpoints (ladder.checkpoint.<key>): what the
	// caller needs to resume (model and data paths, data options).
	Extra map[string]string
	// TrainMeta is recorded in the adapter as ladder.training.<key>.
	TrainMeta map[string]any
	// Eval, when set, runs at each validation point on a decoder over the
	// current adapter; its numbers go to the metrics as eval.<name>.
	Eval func(dec engine.Decoder) (map[string]float64, error)
	// EvalCtx is the context of the decoder Eval gets (0: the model's
	// training context).
	EvalCtx int
	// OnStep, when set, sees every step's result (tests).
	OnStep func(step int, r StepResult)
}

// Summary is what a run reports at its end.
type Summary struct {
	Steps        int
	TrainLoss    float64 // mean loss of the last logging window
	FirstLoss    float64 // loss of the first step of this invocation
	ValLoss      float64 // last validation loss (NaN if none)
	Eval         map[string]float64
	Seconds      float64 // the whole call: steps, validation, checkpoints
	StepSeconds  float64 // the training steps alone
	Tokens       int64   // input tokens trained on by this call (a resumed run counts from the resume)
	Interrupted  bool
	Adapter      string
	Checkpoint   string
	PeakRSS      int64
	LadderInputs int64 // bytes of kept ladder inputs (the stored backbone activations)
}

// ErrInterrupted is returned (wrapped) by Run when its context is cancelled;
// a checkpoint has been saved.
var ErrInterrupted = errors.New("training interrupted")

// Run trains until TotalSteps, validating every EvalEvery steps and
// checkpointing every SaveEvery steps; at the end (or when ctx is cancelled,
// e.g. by Ctrl-C) it saves a checkpoint and the adapter.
func (tr *Trainer) Run(ctx context.Context, o RunOptions) (Summary, error) {
	sum := Summary{ValLoss: math.NaN(), FirstLoss: math.NaN()}
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	if o.Adapter == "" {
		o.Adapter = filepath.Join(o.Dir, "adapter.gguf")
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return sum, err
	}
	open := report.CreateMetrics
	if o.Resumed {
		open = report.AppendMetrics
	}
	mw, err := open(o.Dir)
	if err != nil {
		return sum, err
	}
	defer mw.Close()
	ckpt := filepath.Join(o.Dir, CheckpointFile)
	sum.Checkpoint, sum.Adapter = ckpt, o.Adapter

	total := tr.TotalSteps()
	logEvery := tr.Opts.LogEvery
	if logEvery <= 0 {
		logEvery = max(1, total/50)
	}
	start := time.Now()
	startStep, startTokens := tr.Step(), tr.Tokens
	var winLoss float64
	var winTargets, winTokens int
	var winTime time.Duration // training time of the window (validation excluded)
	skips := 0

	save := func() error {
		if err := tr.SaveCheckpoint(ckpt, o.Extra); err != nil {
			return err
		}
		meta := map[string]any{"steps": tr.Step(), "tokens": int(tr.Tokens)}
		for k, v := range o.TrainMeta {
			meta[k] = v
		}
		w := gguf.NewWriter()
		if err := tr.net.writeAdapter(w, o.AdapterType, tr.fp, meta); err != nil {
			return err
		}
		return w.WriteFile(o.Adapter)
	}
	validate := func(rec *report.Record) error {
		v, err := tr.Validate()
		if err != nil {
			return err
		}
		sum.ValLoss = v
		if !math.IsNaN(v) {
			rec.ValLoss = v
		}
		if o.Eval != nil {
			dec := tr.net.newDecoder(tr.M, o.EvalCtx)
			ev, err := o.Eval(dec)
			dec.Free()
			if err != nil {
				return err
			}
			sum.Eval, rec.Eval = ev, ev
		}
		return nil
	}

	for tr.Step() < total {
		if ctx.Err() != nil {
			sum.Interrupted = true
			break
		}
		t0 := time.Now()
		r, err := tr.TrainStep()
		dt := time.Since(t0)
		winTime += dt
		sum.StepSeconds += dt.Seconds()
		if err != nil {
			return sum, err
		}
		if r.Skipped {
			skips++
			fmt.Fprintf(log, "step %d: gradient norm %v is not finite; update skipped\n", tr.Step()+1, r.GradNorm)
			if skips >= 10 {
				return sum, fmt.Errorf("training diverged: %d updates in a row had a non-finite gradient (lower --lr?)", skips)
			}
			continue
		}
		skips = 0
		step := tr.Step()
		if math.IsNaN(sum.FirstLoss) {
			sum.FirstLoss = r.Loss
		}
		if o.OnStep != nil {
			o.OnStep(step, r)
		}
		winLoss += r.Loss * float64(r.Targets)
		winTargets += r.Targets
		winTokens += r.Tokens
		rec := report.Record{Step: step, Epoch: tr.Epoch(), TrainLoss: r.Loss, LR: float64(r.LR),
			MemBytes: ops.DefaultMeter.PeakTotal(), RSSBytes: PeakRSS(), Elapsed: time.Since(start).Seconds()}
		last := step >= total
		evalNow := last || tr.Opts.EvalEvery > 0 && step%tr.Opts.EvalEvery == 0
		if evalNow {
			if err := validate(&rec); err != nil {
				return sum, err
			}
		}
		if step%logEvery == 0 || evalNow || step == startStep+1 || ctx.Err() != nil {
			tps := float64(winTokens) / max(winTime.Seconds(), 1e-9)
			rec.TokensPerSec = tps
			sum.TrainLoss = winLoss / float64(max(winTargets, 1))
			done := step - startStep
			eta := time.Duration(float64(time.Since(start)) / float64(max(done, 1)) * float64(total-step))
			line := fmt.Sprintf("step %*d/%d  loss %.4f", digits(total), step, total, sum.TrainLoss)
			if evalNow && !math.IsNaN(sum.ValLoss) {
				line += fmt.Sprintf("  val %.4f", sum.ValLoss)
			}
			for _, k := range sortedKeys(rec.Eval) {
				line += fmt.Sprintf("  %s %.4f", k, rec.Eval[k])
			}
			line += fmt.Sprintf("  lr %.2e  %.0f tok/s  %s  ETA %s  mem %s  rss %s", r.LR, tps,
				round(time.Since(start)), round(eta), ops.FormatBytes(ops.DefaultMeter.PeakTotal()), ops.FormatBytes(PeakRSS()))
			fmt.Fprintln(log, line)
			winLoss, winTargets, winTokens, winTime = 0, 0, 0, 0
		}
		if err := mw.Write(rec); err != nil {
			return sum, err
		}
		if evalNow && !o.NoPlot {
			if err := report.WriteLossPlot(o.Dir); err != nil {
				fmt.Fprintf(log, "warning: loss plot: %v\n", err)
			}
		}
		if tr.Opts.SaveEvery > 0 && step%tr.Opts.SaveEvery == 0 && !last {
			if err := tr.SaveCheckpoint(ckpt, o.Extra); err != nil {
				return sum, err
			}
		}
	}
	if err := save(); err != nil {
		return sum, err
	}
	if !o.NoPlot && tr.Step() > startStep {
		if err := report.WriteLossPlot(o.Dir); err != nil {
			fmt.Fprintf(log, "warning: loss plot: %v\n", err)
		}
	}
	sum.Steps = tr.Step()
	sum.Seconds = time.Since(start).Seconds()
	sum.Tokens = tr.Tokens - startTokens
	sum.PeakRSS = PeakRSS()
	sum.LadderInputs = tr.LadderInputBytes()
	if sum.Interrupted {
		return sum, fmt.Errorf("%w at step %d/%d: checkpoint saved to %s", ErrInterrupted, sum.Steps, total, ckpt)
	}
	return sum, nil
}

func digits(n int) int { return len(fmt.Sprint(n)) }

func round(d time.Duration) time.Duration {
	if d > time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(100 * time.Millisecond)
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// PeakRSS is the process's peak resident set size in bytes (getrusage
// ru_maxrss, which Linux reports in KiB; the same as VmHWM).
func PeakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return int64(ru.Maxrss) * 1024
}
