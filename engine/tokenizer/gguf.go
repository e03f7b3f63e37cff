package tokenizer

import (
	"fmt"

	"ladder-engine/gguf"
)

// FromGGUF loads the vocabulary of a GGUF file (only metadata is read).
func FromGGUF(f *gguf.File) (*Tokenizer, error) {
	cfg, err := ConfigFromGGUF(f)
	if err != nil {
		return nil, err
	}
	t, err := New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	return t, nil
}

// ConfigFromGGUF reads the tokenizer metadata of a GGUF file.
func ConfigFromGGUF(f *gguf.File) (Config, error) {
	var cfg Config
	wrap := func(err error) error { return fmt.Errorf("tokenizer: %s: %w", f.Path, err) }
	var err error
	if cfg.Model, err = f.GetString("tokenizer.ggml.model"); err != nil {
		return cfg, wrap(err)
	}
	if f.Has("tokenizer.ggml.pre") {
		if cfg.Pre, err = f.GetString("tokenizer.ggml.pre"); err != nil {
			return cfg, wrap(err)
		}
	}
	if cfg.Tokens, err = f.GetStrings("tokenizer.ggml.tokens"); err != nil {
		return cfg, wrap(err)
	}
	if f.Has("tokenizer.ggml.scores") {
		if cfg.Scores, err = f.GetFloat32s("tokenizer.ggml.scores"); err != nil {
			// llama.cpp also accepts integer scores
			ints, ierr := f.GetInt32s("tokenizer.ggml.scores")
			if ierr != nil {
				return cfg, wrap(err)
			}
			cfg.Scores = make([]float32, len(ints))
			for i, v := range ints {
				cfg.Scores[i] = float32(v)
			}
		}
	}
	if f.Has("tokenizer.ggml.token_type") {
		if cfg.Types, err = f.GetInt32s("tokenizer.ggml.token_type"); err != nil {
			return cfg, wrap(err)
		}
	}
	if f.Has("tokenizer.ggml.merges") {
		if cfg.Merges, err = f.GetStrings("tokenizer.ggml.merges"); err != nil {
			return cfg, wrap(err)
		}
	}
	cfg.IDs = map[string]uint32{}
	for _, k := range specialIDKeys() {
		if !f.Has(k) {
			continue
		}
		v, err := f.GetUint32(k)
		if err != nil {
			// llama.cpp stores ids as uint32; a -1 written as int32 means "none"
			if n, ierr := f.GetInt(k); ierr == nil && n < 0 {
				continue
			}
			return cfg, wrap(err)
		}
		cfg.IDs[k] = v
	}
	cfg.Flags = map[string]bool{}
	for _, k := range flagKeys {
		if !f.Has(k) {
			continue
		}
		v, err := f.GetBool(k)
		if err != nil {
			return cfg, wrap(err)
		}
		cfg.Flags[k] = v
	}
	if f.Has("general.name") {
		cfg.Name, _ = f.GetString("general.name")
	}
	return cfg, nil
}
