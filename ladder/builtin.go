package ladder

import (
	"math/rand/v2"
	"strings"

	"ladder-engine/engine/synth"
	"ladder-engine/gguf"
)

// The embedded default of `ladder-engine finetune` (no model given): a small
// random-weight backbone and a task a side network can visibly learn on it.
// A random backbone knows no language, so the task is a toy grammar:
// sentences built from a few word lists with agreement (a plural subject
// takes the plural verb) and fixed phrase shapes. Its entropy per token is
// far below the uniform ln(vocab) a random model starts at, and the
// validation text comes from the same grammar with another seed, so the
// validation loss shows generalisation, not memorisation.

// BuiltinModel writes the default backbone (synth llama "tiny": 4 layers,
// width 256, a 512-token vocabulary, fixed seed) to path.
func BuiltinModel(path string) error {
	return synth.Write(path, synth.Options{Arch: "llama", Preset: "tiny", Type: gguf.TypeF32, Seed: 1234, Name: "builtin-tiny"})
}

// BuiltinTask returns the toy-grammar text: nTrain training sentences and
// nVal validation sentences (another seed).
func BuiltinTask(nTrain, nVal int) (train, val string) {
	return grammarText(nTrain, 1), grammarText(nVal, 2)
}

var (
	gSubjects = [][2]string{ // singular, plural
		{"the cat", "the cats"}, {"the dog", "the dogs"}, {"a bird", "two birds"}, {"my friend", "my friends"},
		{"the old man", "the old men"}, {"a little girl", "the children"}, {"the farmer", "the farmers"},
		{"our teacher", "our teachers"},
	}
	gVerbs = [][2]string{ // singular, plural
		{"sees", "see"}, {"likes", "like"}, {"finds", "find"}, {"wants", "want"}, {"follows", "follow"},
		{"draws", "draw"}, {"carries", "carry"}, {"paints", "paint"},
	}
	gObjects = []string{"the ball", "a red apple", "the big tree", "a small boat", "the yellow house",
		"a green hat", "the long road", "a bright star"}
	gPlaces = []string{"in the park", "at night", "every day", "near the river", "after school", "in the morning"}
)

// grammarText generates n sentences, five to a line.
func grammarText(n int, seed uint64) string {
	rng := rand.New(rand.NewPCG(seed, 0x6772616d6d6172)) // "grammar"
	var b strings.Builder
	for i := 0; i < n; i++ {
		plural := rng.IntN(2)
		s := gSubjects[rng.IntN(len(gSubjects))][plural]
		v := gVerbs[rng.IntN(len(gVerbs))][plural]
		o := gObjects[rng.IntN(len(gObjects))]
		sent := s + " " + v + " " + o
		if rng.IntN(2) == 0 {
			sent += " " + gPlaces[rng.IntN(len(gPlaces))]
		}
		b.WriteString(strings.ToUpper(sent[:1]) + sent[1:] + ".")
		if i%5 == 4 {
			b.WriteString("\n")
		} else {
			b.WriteString(" ")
		}
	}
	return b.String()
}
