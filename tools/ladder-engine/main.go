// Command ladder-engine fine-tunes quantized GGUF models with Ladder Side
// Tuning and runs them. Each subcommand lives in its own cmd_*.go file.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

type command struct {
	name    string
	summary string
	run     func(args []string) error
}

// commands is the whole CLI, in the order `--help` lists it.
var commands = []command{
	{"inspect", "print a GGUF file's metadata and tensor table", runInspect},
	{"tokenize", "print the token ids of a text", runTokenize},
	{"generate", "generate text from a prompt", runGenerate},
	{"perplexity", "perplexity of a text file (llama-perplexity protocol)", runPerplexity},
	{"embedding", "print final hidden states (llama-embedding)", runEmbedding},
	{"finetune", "train a ladder side network (LST / xLadder)", runFinetune},
	{"eval", "evaluate a model (and adapter) on a task", runEval},
	{"bench", "measure prompt processing / generation speed, or training memory (bench memory)", runBench},
	{"synth", "write a random-weight model with a real architecture's shapes", runSynth},
	{"plot", "overlay the loss curves of several runs", runPlot},
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stderr))
}

func dispatch(args []string, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(args[1:])
		if err == nil {
			return 0
		}
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "ladder-engine %s: %v\n", c.name, err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	fmt.Fprintf(stderr, "ladder-engine: unknown command %q\n\n", args[0])
	printUsage(stderr)
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: ladder-engine COMMAND [MODEL.gguf] [flags]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'ladder-engine COMMAND --help' for a command's flags.")
}

// usageError marks a command-line mistake: exit status 2 instead of 1.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// notYet is what a subcommand that is not built yet answers.
func notYet(name string) error {
	return fmt.Errorf("%s is not available yet in this version of ladder-engine", name)
}

// newFlags makes a flag set whose errors come back to us (never os.Exit) and
// whose --help prints the usage line and every flag.
func newFlags(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: ladder-engine %s %s\n\nflags:\n", name, usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses flags and positional arguments in any order, as
// llama.cpp's tools accept them (`inspect model.gguf --json`). It returns the
// positional arguments. A "--" ends flag parsing.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// modelFlag registers -m/--model on fs and returns a function that resolves
// the model path from it or from the first positional argument.
func modelFlag(fs *flag.FlagSet) func(pos []string) (string, []string, error) {
	var m string
	fs.StringVar(&m, "m", "", "model GGUF file (or give it as the first argument)")
	fs.StringVar(&m, "model", "", "same as -m")
	return func(pos []string) (string, []string, error) {
		if m != "" {
			return m, pos, nil
		}
		if len(pos) == 0 {
			return "", nil, usagef("no model given: pass MODEL.gguf or -m MODEL.gguf")
		}
		if strings.HasPrefix(pos[0], "-") {
			return "", nil, usagef("unknown flag %s", pos[0])
		}
		return pos[0], pos[1:], nil
	}
}
