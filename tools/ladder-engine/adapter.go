package main

import (
	"ladder-engine/engine"
	"ladder-engine/ladder"
)

// decoder is what generate, perplexity and eval run on: the plain model's
// engine.ModelDecoder or, with --adapter, a ladder.Decoder (backbone and
// side-network caches together).
type decoder interface {
	engine.Decoder
	Free()
}

// newDecoder returns the model's decoder, or with an adapter file the
// model with the adapter applied. An adapter trained on another base model
// is refused with a message naming what differs.
func newDecoder(m *engine.Model, adapter string, nCtx int) (decoder, error) {
	if adapter == "" {
		return m.NewDecoder(nCtx), nil
	}
	return ladder.OpenDecoder(m, adapter, nCtx)
}

// adapterDecoder is newDecoder for `eval --adapter` (which wraps the plain
// model itself); the ladder decoder also truncates its caches, so eval
// reuses shared prefixes.
func adapterDecoder(m *engine.Model, path string, nCtx int) (engine.Decoder, error) {
	return ladder.OpenDecoder(m, path, nCtx)
}
