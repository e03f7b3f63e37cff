package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"ladder-engine/engine/tokenizer"
	"ladder-engine/gguf"
)

const tokenizeUsage = `MODEL.gguf (-p TEXT | -f FILE | --stdin) [--ids | --json] [--no-bos] [--no-parse-special] [--no-escape] [--show-count]

Tokenizes a text with the model's vocabulary as llama.cpp's llama-tokenize
does: BOS is added when the vocabulary asks for it (--no-bos: never), the
text of special tokens becomes those tokens (--no-parse-special: plain text),
and escapes such as \n, \t, \\ and \xNN in the text are processed first
(--no-escape: taken literally). Prints one "id -> 'piece'" line per token,
or the ids as [1, 2, 3] (--ids) or as a JSON array (--json).
To reproduce llama.cpp's tokenizer suites use --no-bos --no-parse-special
--no-escape.`

func runTokenize(args []string) error {
	return tokenizeCmd(args, os.Stdin, os.Stdout)
}

func tokenizeCmd(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := newFlags("tokenize", tokenizeUsage)
	model := modelFlag(fs)
	var prompt, file string
	var fromStdin, printIDs, printJSON, noBOS, noParseSpecial, noEscape, showCount, logDisable bool
	fs.StringVar(&prompt, "p", "", "text to tokenize")
	fs.StringVar(&prompt, "prompt", "", "same as -p")
	fs.StringVar(&file, "f", "", "read the text from FILE")
	fs.StringVar(&file, "file", "", "same as -f")
	fs.BoolVar(&fromStdin, "stdin", false, "read the text from standard input")
	fs.BoolVar(&printIDs, "ids", false, "print only the ids, as [1, 2, 3]")
	fs.BoolVar(&printJSON, "json", false, "print the ids as one JSON array")
	fs.BoolVar(&noBOS, "no-bos", false, "never add BOS (or EOS)")
	fs.BoolVar(&noParseSpecial, "no-parse-special", false, "tokenize the text of special tokens as plain text")
	fs.BoolVar(&noEscape, "no-escape", false, `do not process escapes (\n, \t, \xNN, ...) in the text`)
	fs.BoolVar(&showCount, "show-count", false, "print the number of tokens at the end")
	fs.BoolVar(&logDisable, "log-disable", false, "accepted for llama-tokenize compatibility (nothing is logged)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	path, rest, err := model(pos)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q (quote the text and pass it with -p)", rest[0])
	}
	promptSet := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "p" || f.Name == "prompt" {
			promptSet = true
		}
	})
	sources := 0
	for _, on := range []bool{promptSet, file != "", fromStdin} {
		if on {
			sources++
		}
	}
	if sources != 1 {
		return usagef("give exactly one of -p TEXT, -f FILE or --stdin")
	}
	if printIDs && printJSON {
		return usagef("--ids and --json are exclusive")
	}

	text := prompt
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		text = string(b)
	case fromStdin:
		b, err := io.ReadAll(stdin)
		if err != nil {
			return fmt.Errorf("reading standard input: %w", err)
		}
		text = string(b)
	}
	if !noEscape {
		text = processEscapes(text)
	}

	f, err := gguf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		return err
	}
	// llama-tokenize passes add_special = (vocab wants BOS) && !--no-bos, so
	// EOS too is only added when BOS is.
	ids := tok.Encode(text, tok.AddBOS() && !noBOS, !noParseSpecial)

	w := bufio.NewWriter(stdout)
	switch {
	case printJSON:
		b, err := json.Marshal(ids)
		if err != nil {
			return err
		}
		if ids == nil {
			b = []byte("[]")
		}
		w.Write(b)
		w.WriteByte('\n')
	case printIDs:
		w.WriteByte('[')
		for i, id := range ids {
			if i > 0 {
				w.WriteString(", ")
			}
			w.WriteString(strconv.Itoa(int(id)))
		}
		w.WriteString("]\n")
	default:
		for _, id := range ids {
			fmt.Fprintf(w, "%6d -> '%s'\n", id, tok.TokenPiece(id))
		}
	}
	if showCount {
		fmt.Fprintf(w, "Total number of tokens: %d\n", len(ids))
	}
	return w.Flush()
}

// processEscapes is llama.cpp's string_process_escapes: \n \r \t \' \" \\
// and \xNN become the characters they name; any other backslash pair stays.
func processEscapes(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 >= len(s) {
			out = append(out, s[i])
			continue
		}
		i++
		switch c := s[i]; c {
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case '\'', '"', '\\':
			out = append(out, c)
		case 'x':
			if v, ok := hexByte(s, i+1); ok {
				out = append(out, v)
				i += 2
				break
			}
			out = append(out, '\\', c)
		default:
			out = append(out, '\\', c)
		}
	}
	return string(out)
}

// hexByte reads s[i:i+2] as llama.cpp does with strtol(base 16), which must
// consume both characters: two hex digits, or a space or sign and one digit.
func hexByte(s string, i int) (byte, bool) {
	if i+1 >= len(s) {
		return 0, false
	}
	hex := func(c byte) (int, bool) {
		switch {
		case c >= '0' && c <= '9':
			return int(c - '0'), true
		case c >= 'a' && c <= 'f':
			return int(c-'a') + 10, true
		case c >= 'A' && c <= 'F':
			return int(c-'A') + 10, true
		}
		return 0, false
	}
	a, b := s[i], s[i+1]
	lo, ok := hex(b)
	if !ok {
		return 0, false
	}
	if hi, ok := hex(a); ok {
		return byte(hi<<4 | lo), true
	}
	switch a {
	case ' ', '\t', '\n', '\v', '\f', '\r', '+':
		return byte(lo), true
	case '-':
		return byte(-lo), true
	}
	return 0, false
}
