package ladder

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"ladder-engine/engine"
	"ladder-engine/gguf"
	"ladder-engine/ladder/data"
)

// A checkpoint is one GGUF file, written atomically (temporary file +
// rename): the adapter's metadata and its tensors in f32 (so it is also a
// usable adapter: ladder's, or llama.cpp's LoRA format for lora), plus
//
//	ladder.checkpoint.step      u32     optimizer steps taken
//	ladder.checkpoint.tokens    u64     input tokens trained on
//	ladder.checkpoint.position  string  JSON data.Position of the next batch
//	ladder.checkpoint.options   string  JSON TrainOptions (steps, schedule, seed, ...)
//	ladder.checkpoint.config    string  JSON Config (side-network choices)
//	ladder.checkpoint.<key>     string  the caller's extras (model and data paths, data options)
//	optimizer.state             i8[n]   optim.Optimizer.Save bytes (moments, step count)
//
// Shuffling depends only on (seed, epoch) and the position, and the side
// network starts from the saved values, so a resumed run repeats the
// uninterrupted run's losses exactly.

// CheckpointFile is the checkpoint's name in a run folder.
const CheckpointFile = "checkpoint.gguf"

const (
	keyCkpt         = "ladder.checkpoint."
	keyCkptStep     = keyCkpt + "step"
	keyCkptTokens   = keyCkpt + "tokens"
	keyCkptPosition = keyCkpt + "position"
	keyCkptOptions  = keyCkpt + "options"
	keyCkptConfig   = keyCkpt + "config"
	tensorOptState  = "optimizer.state"
)

// SaveCheckpoint writes the training state to path atomically. extra holds
// strings the caller needs to resume (stored as ladder.checkpoint.<key>).
func (tr *Trainer) SaveCheckpoint(path string, extra map[string]string) error {
	w := gguf.NewWriter()
	if err := tr.net.writeAdapter(w, gguf.TypeF32, tr.fp, nil); err != nil {
		return err
	}
	pos, _ := json.Marshal(tr.train.Position())
	opts, _ := json.Marshal(tr.Opts)
	cfg, _ := json.Marshal(tr.Cfg)
	w.SetUint32(keyCkptStep, uint32(tr.Step()))
	w.SetUint64(keyCkptTokens, uint64(tr.Tokens))
	w.SetString(keyCkptPosition, string(pos))
	w.SetString(keyCkptOptions, string(opts))
	w.SetString(keyCkptConfig, string(cfg))
	for k, v := range extra {
		w.SetString(keyCkpt+k, v)
	}
	// The optimizer state is streamed: Save once to learn its size, then
	// again while the file is written (the moments can be hundreds of MiB).
	var size countWriter
	if err := tr.opt.Save(&size); err != nil {
		return err
	}
	save := func(w io.Writer) error { return tr.opt.Save(w) }
	if err := w.AddTensorFunc(tensorOptState, gguf.TypeI8, []int64{size.n}, save); err != nil {
		return err
	}
	if err := w.WriteFile(path); err != nil {
		return fmt.Errorf("writing checkpoint: %w", err)
	}
	return nil
}

// Checkpoint is a checkpoint file opened for resuming.
type Checkpoint struct {
	f       *gguf.File
	Step    int
	Tokens  int64
	Pos     data.Position
	Options TrainOptions
	Config  Config
	Extra   map[string]string // the caller's strings
}

// OpenCheckpoint reads a checkpoint's metadata (the model is needed only by
// Resume, so the caller can first learn which model and data to load).
func OpenCheckpoint(path string) (*Checkpoint, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	c := &Checkpoint{f: f, Extra: map[string]string{}}
	bad := func(err error) (*Checkpoint, error) {
		f.Close()
		return nil, fmt.Errorf("%s: not a ladder checkpoint: %w", path, err)
	}
	step, err := f.GetUint32(keyCkptStep)
	if err != nil {
		return bad(err)
	}
	c.Step = int(step)
	tok, err := f.GetInt(keyCkptTokens)
	if err != nil {
		return bad(err)
	}
	c.Tokens = tok
	for key, dst := range map[string]any{keyCkptPosition: &c.Pos, keyCkptOptions: &c.Options, keyCkptConfig: &c.Config} {
		s, err := f.GetString(key)
		if err != nil {
			return bad(err)
		}
		if err := json.Unmarshal([]byte(s), dst); err != nil {
			return bad(fmt.Errorf("%s: %w", key, err))
		}
	}
	for _, kv := range f.KV {
		if len(kv.Key) > len(keyCkpt) && kv.Key[:len(keyCkpt)] == keyCkpt {
			if s, ok := kv.Value.(string); ok {
				c.Extra[kv.Key[len(keyCkpt):]] = s
			}
		}
	}
	if _, ok := f.Tensor(tensorOptState); !ok {
		return bad(fmt.Errorf("tensor %q missing", tensorOptState))
	}
	return c, nil
}

// Close releases the file.
func (c *Checkpoint) Close() error { return c.f.Close() }

// Resume rebuilds the trainer saved in c on model m and the same data
// (train, val); opts replaces the saved options (pass c.Options to keep
// them; changing Steps or the schedule changes the run from here on).
func (c *Checkpoint) Resume(m *engine.Model, opts TrainOptions, train, val []data.Example) (*Trainer, error) {
	var net trainable
	var err error
	if c.Config.Method == "lora" {
		net, err = loraFromFile(c.f, m, c.Config)
	} else {
		net, err = sideFromFile(c.f, m, true)
	}
	if err != nil {
		return nil, err
	}
	tr, err := newTrainer(m, net, c.Config, opts, train, val)
	if err != nil {
		net.Free()
		return nil, err
	}
	ti, _ := c.f.Tensor(tensorOptState)
	if err := tr.opt.Load(bytes.NewReader(c.f.Data(ti))); err != nil {
		tr.Free()
		return nil, fmt.Errorf("%s: %w", c.f.Path, err)
	}
	if tr.opt.Steps() != c.Step {
		tr.Free()
		return nil, fmt.Errorf("%s: optimizer state is at step %d, checkpoint says %d", c.f.Path, tr.opt.Steps(), c.Step)
	}
	if err := tr.train.Seek(c.Pos); err != nil {
		tr.Free()
		return nil, fmt.Errorf("%s: %w", c.f.Path, err)
	}
	tr.Tokens = c.Tokens
	return tr, nil
}

// countWriter counts the bytes written to it.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
