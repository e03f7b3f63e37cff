package tokenizer

import (
	"fmt"
	"strconv"
)

// A small backtracking regex engine with ECMAScript (std::regex) semantics,
// for the pre-tokenizer patterns llama.cpp runs through std::regex. Go's
// regexp has neither lookahead nor ordered (first-alternative-wins)
// alternation, and both decide where words split.
//
// Text is matched as codepoints with their llama.cpp flags, which is how
// llama.cpp's "collapsed" std::regex path sees it: \p{L}, \p{N}, \p{P} test
// the codepoint's category, \s is ASCII space or any codepoint llama.cpp
// counts as whitespace (it rewrites those to \v before matching), and a
// literal or range matches the codepoint itself.
//
// Supported: alternation, (...), (?:...), (?=...), (?!...), [...] and [^...]
// with ranges, . ^ $, quantifiers ? * + {n} {n,} {n,m} (and lazy forms),
// escapes \s \S \d \D \w \W \p{L} \p{N} \p{P} \p{M} \p{S} (and \p{Lu}...
// taken as \p{L}, as llama.cpp does), \r \n \t \f \v \0 \xHH \uHHHH, and any
// escaped punctuation.

// reChar is one codepoint of the subject text.
type reChar struct {
	r     rune   // the codepoint; non-ASCII whitespace is \v, as llama.cpp rewrites it
	flags uint16 // llama.cpp codepoint flags
}

// reClass is one character class: a set of ranges and category tests.
type reClass struct {
	ranges []rune // pairs lo, hi
	with   uint16 // codepoint flags any of which makes a member
	not    uint16 // codepoint flags the absence of any of which makes a member (\S)
	digit  int8   // +1 \d member, -1 \D member
	word   int8   // +1 \w member, -1 \W member
	negate bool   // [^...]
	dot    bool   // . : anything but line terminators
}

func (c *reClass) matches(ch reChar) bool {
	hit := false
	switch {
	case c.dot:
		hit = ch.r != '\n' && ch.r != '\r' && ch.r != 0x2028 && ch.r != 0x2029
	case c.with&ch.flags != 0:
		hit = true
	case c.not != 0 && c.not&ch.flags == 0:
		hit = true
	default:
		r := ch.r
		for i := 0; i+1 < len(c.ranges); i += 2 {
			if r >= c.ranges[i] && r <= c.ranges[i+1] {
				hit = true
				break
			}
		}
		if !hit && c.digit != 0 {
			hit = (r >= '0' && r <= '9') == (c.digit > 0)
		}
		if !hit && c.word != 0 {
			w := r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_'
			hit = w == (c.word > 0)
		}
	}
	return hit != c.negate
}

// Program instructions.
const (
	opClass   uint8 = iota // consume one char in classes[x]
	opSplit                // try x, on failure y
	opJmp                  // go to x
	opBegin                // assert start of chunk
	opEnd                  // assert end of chunk
	opLookPos              // assert subs[x] matches here
	opLookNeg              // assert subs[x] does not match here
	opMatch
)

type reInst struct {
	op   uint8
	x, y int32
}

// reProg is a compiled pattern.
type reProg struct {
	src     string
	insts   []reInst
	classes []reClass
	subs    []*reProg // lookahead bodies
}

// AST.
type reNode struct {
	kind     uint8 // nClass, nCat, nAlt, nRepeat, nBegin, nEnd, nLook
	class    int
	subs     []*reNode
	min, max int // repeat; max -1 = unbounded
	greedy   bool
	neg      bool // negative lookahead
}

const (
	nClass uint8 = iota
	nCat
	nAlt
	nRepeat
	nBegin
	nEnd
	nLook
)

type reParser struct {
	src     []rune
	pos     int
	classes []reClass
}

// compileRegex parses and compiles an ECMAScript pattern.
func compileRegex(pattern string) (*reProg, error) {
	p := &reParser{src: []rune(pattern)}
	node, err := p.parseAlt()
	if err != nil {
		return nil, fmt.Errorf("tokenizer: regex %q: %w", pattern, err)
	}
	if p.pos < len(p.src) {
		return nil, fmt.Errorf("tokenizer: regex %q: unexpected %q at %d", pattern, p.src[p.pos], p.pos)
	}
	prog := &reProg{src: pattern, classes: p.classes}
	if err := prog.emit(node); err != nil {
		return nil, fmt.Errorf("tokenizer: regex %q: %w", pattern, err)
	}
	prog.insts = append(prog.insts, reInst{op: opMatch})
	return prog, nil
}

func (p *reParser) peek() (rune, bool) {
	if p.pos < len(p.src) {
		return p.src[p.pos], true
	}
	return 0, false
}

func (p *reParser) parseAlt() (*reNode, error) {
	var alts []*reNode
	for {
		seq, err := p.parseSeq()
		if err != nil {
			return nil, err
		}
		alts = append(alts, seq)
		if c, ok := p.peek(); ok && c == '|' {
			p.pos++
			continue
		}
		break
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return &reNode{kind: nAlt, subs: alts}, nil
}

func (p *reParser) parseSeq() (*reNode, error) {
	seq := &reNode{kind: nCat}
	for {
		c, ok := p.peek()
		if !ok || c == '|' || c == ')' {
			return seq, nil
		}
		atom, err := p.parseAtom()
		if err != nil {
			return nil, err
		}
		atom, err = p.parseQuantifier(atom)
		if err != nil {
			return nil, err
		}
		seq.subs = append(seq.subs, atom)
	}
}

func (p *reParser) parseQuantifier(atom *reNode) (*reNode, error) {
	c, ok := p.peek()
	if !ok {
		return atom, nil
	}
	min, max := 0, 0
	switch c {
	case '?':
		min, max = 0, 1
		p.pos++
	case '*':
		min, max = 0, -1
		p.pos++
	case '+':
		min, max = 1, -1
		p.pos++
	case '{':
		end := p.pos + 1
		for end < len(p.src) && p.src[end] != '}' {
			end++
		}
		if end == len(p.src) {
			return nil, fmt.Errorf("unterminated {")
		}
		body := string(p.src[p.pos+1 : end])
		lo, hi, found := body, body, false
		for i := 0; i < len(body); i++ {
			if body[i] == ',' {
				lo, hi, found = body[:i], body[i+1:], true
				break
			}
		}
		var err error
		if min, err = strconv.Atoi(lo); err != nil {
			return nil, fmt.Errorf("bad repeat {%s}", body)
		}
		switch {
		case !found:
			max = min
		case hi == "":
			max = -1
		default:
			if max, err = strconv.Atoi(hi); err != nil || max < min {
				return nil, fmt.Errorf("bad repeat {%s}", body)
			}
		}
		if min > 1000 || max > 1000 {
			return nil, fmt.Errorf("repeat {%s} too large", body)
		}
		p.pos = end + 1
	default:
		return atom, nil
	}
	greedy := true
	if c, ok := p.peek(); ok && c == '?' {
		greedy = false
		p.pos++
	}
	if atom.kind == nBegin || atom.kind == nEnd || atom.kind == nLook {
		return nil, fmt.Errorf("quantifier on an assertion")
	}
	return &reNode{kind: nRepeat, subs: []*reNode{atom}, min: min, max: max, greedy: greedy}, nil
}

func (p *reParser) addClass(c reClass) *reNode {
	p.classes = append(p.classes, c)
	return &reNode{kind: nClass, class: len(p.classes) - 1}
}

func (p *reParser) parseAtom() (*reNode, error) {
	c := p.src[p.pos]
	p.pos++
	switch c {
	case '(':
		kind, neg := nCat, false
		if p.pos+1 < len(p.src) && p.src[p.pos] == '?' {
			switch p.src[p.pos+1] {
			case ':':
			case '=':
				kind = nLook
			case '!':
				kind, neg = nLook, true
			default:
				return nil, fmt.Errorf("unsupported group (?%c", p.src[p.pos+1])
			}
			p.pos += 2
		}
		inner, err := p.parseAlt()
		if err != nil {
			return nil, err
		}
		if c, ok := p.peek(); !ok || c != ')' {
			return nil, fmt.Errorf("missing )")
		}
		p.pos++
		if kind == nLook {
			return &reNode{kind: nLook, subs: []*reNode{inner}, neg: neg}, nil
		}
		return inner, nil
	case '[':
		return p.parseClass()
	case '.':
		return p.addClass(reClass{dot: true}), nil
	case '^':
		return &reNode{kind: nBegin}, nil
	case '$':
		return &reNode{kind: nEnd}, nil
	case '\\':
		var cls reClass
		if err := p.parseEscape(&cls); err != nil {
			return nil, err
		}
		return p.addClass(cls), nil
	case ')', '*', '+', '?', '{':
		return nil, fmt.Errorf("unexpected %q at %d", c, p.pos-1)
	}
	return p.addClass(reClass{ranges: []rune{c, c}}), nil
}

// parseEscape reads the escape after a backslash into cls; a single
// character becomes a one-rune range (so callers can build ranges from it).
func (p *reParser) parseEscape(cls *reClass) error {
	if p.pos >= len(p.src) {
		return fmt.Errorf("trailing backslash")
	}
	c := p.src[p.pos]
	p.pos++
	lit := func(r rune) { cls.ranges = append(cls.ranges, r, r) }
	switch c {
	case 's':
		cls.with |= flagWhitespace
	case 'S':
		cls.not |= flagWhitespace
	case 'd':
		cls.digit = 1
	case 'D':
		cls.digit = -1
	case 'w':
		cls.word = 1
	case 'W':
		cls.word = -1
	case 'p':
		end := p.pos
		for end < len(p.src) && p.src[end] != '}' {
			end++
		}
		if p.pos >= len(p.src) || p.src[p.pos] != '{' || end == len(p.src) {
			return fmt.Errorf("bad \\p")
		}
		name := string(p.src[p.pos+1 : end])
		p.pos = end + 1
		switch name {
		case "L", "Lu", "Ll", "Lt", "Lm", "Lo":
			cls.with |= flagLetter
		case "N":
			cls.with |= flagNumber
		case "P":
			cls.with |= flagPunct
		case "M":
			cls.with |= flagMark
		case "S":
			cls.with |= flagSymbol
		default:
			return fmt.Errorf("unsupported \\p{%s}", name)
		}
	case 'r':
		lit('\r')
	case 'n':
		lit('\n')
	case 't':
		lit('\t')
	case 'f':
		lit('\f')
	case 'v':
		lit('\v')
	case '0':
		lit(0)
	case 'x', 'u':
		n := 2
		if c == 'u' {
			n = 4
		}
		if p.pos+n > len(p.src) {
			return fmt.Errorf("bad \\%c escape", c)
		}
		v, err := strconv.ParseUint(string(p.src[p.pos:p.pos+n]), 16, 32)
		if err != nil {
			return fmt.Errorf("bad \\%c escape", c)
		}
		p.pos += n
		lit(rune(v))
	case 'b', 'B':
		return fmt.Errorf("unsupported \\%c", c)
	default:
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '1' && c <= '9' {
			return fmt.Errorf("unsupported escape \\%c", c)
		}
		lit(c)
	}
	return nil
}

func (p *reParser) parseClass() (*reNode, error) {
	var cls reClass
	if c, ok := p.peek(); ok && c == '^' {
		cls.negate = true
		p.pos++
	}
	for {
		if p.pos >= len(p.src) {
			return nil, fmt.Errorf("missing ]")
		}
		c := p.src[p.pos]
		if c == ']' { // ECMAScript: "[]" is an empty class, "]" is never literal here
			p.pos++
			break
		}
		// One element: a literal, an escape, or a range lo-hi.
		var elem reClass
		if c == '\\' {
			p.pos++
			if err := p.parseEscape(&elem); err != nil {
				return nil, err
			}
		} else {
			elem.ranges = []rune{c, c}
			p.pos++
		}
		isLit := len(elem.ranges) == 2 && elem.ranges[0] == elem.ranges[1] &&
			elem.with == 0 && elem.not == 0 && elem.digit == 0 && elem.word == 0
		if isLit && p.pos+1 < len(p.src) && p.src[p.pos] == '-' && p.src[p.pos+1] != ']' {
			p.pos++
			var hiElem reClass
			if p.src[p.pos] == '\\' {
				p.pos++
				if err := p.parseEscape(&hiElem); err != nil {
					return nil, err
				}
			} else {
				hiElem.ranges = []rune{p.src[p.pos], p.src[p.pos]}
				p.pos++
			}
			if len(hiElem.ranges) != 2 || hiElem.with != 0 || hiElem.not != 0 || hiElem.digit != 0 || hiElem.word != 0 {
				return nil, fmt.Errorf("bad range in class")
			}
			lo, hi := elem.ranges[0], hiElem.ranges[0]
			if hi < lo {
				return nil, fmt.Errorf("range %q-%q out of order", lo, hi)
			}
			cls.ranges = append(cls.ranges, lo, hi)
			continue
		}
		if elem.digit != 0 || elem.word != 0 {
			if cls.digit != 0 && cls.digit != elem.digit || cls.word != 0 && cls.word != elem.word {
				return nil, fmt.Errorf("unsupported mix of \\d/\\D or \\w/\\W in a class")
			}
			if elem.digit != 0 {
				cls.digit = elem.digit
			}
			if elem.word != 0 {
				cls.word = elem.word
			}
		}
		if elem.not != 0 && cls.not != 0 {
			return nil, fmt.Errorf("unsupported two negated escapes in a class")
		}
		cls.ranges = append(cls.ranges, elem.ranges...)
		cls.with |= elem.with
		cls.not |= elem.not
	}
	return p.addClass(cls), nil
}

// nullable reports whether n can match the empty string; loops over such
// bodies would need ECMAScript's empty-iteration rule, so we refuse them.
func nullable(n *reNode) bool {
	switch n.kind {
	case nClass:
		return false
	case nCat:
		for _, s := range n.subs {
			if !nullable(s) {
				return false
			}
		}
		return true
	case nAlt:
		for _, s := range n.subs {
			if nullable(s) {
				return true
			}
		}
		return false
	case nRepeat:
		return n.min == 0 || nullable(n.subs[0])
	}
	return true // assertions
}

func (g *reProg) add(in reInst) int {
	g.insts = append(g.insts, in)
	return len(g.insts) - 1
}

func (g *reProg) emit(n *reNode) error {
	switch n.kind {
	case nClass:
		g.add(reInst{op: opClass, x: int32(n.class)})
	case nCat:
		for _, s := range n.subs {
			if err := g.emit(s); err != nil {
				return err
			}
		}
	case nAlt:
		var jumps []int
		for i, s := range n.subs {
			split := -1
			if i < len(n.subs)-1 {
				split = g.add(reInst{op: opSplit})
				g.insts[split].x = int32(len(g.insts))
			}
			if err := g.emit(s); err != nil {
				return err
			}
			if split >= 0 {
				jumps = append(jumps, g.add(reInst{op: opJmp}))
				g.insts[split].y = int32(len(g.insts))
			}
		}
		for _, j := range jumps {
			g.insts[j].x = int32(len(g.insts))
		}
	case nRepeat:
		body := n.subs[0]
		if n.max != 0 && nullable(body) {
			return fmt.Errorf("quantified subpattern can match empty")
		}
		for i := 0; i < n.min; i++ {
			if err := g.emit(body); err != nil {
				return err
			}
		}
		if n.max < 0 {
			loop := g.add(reInst{op: opSplit})
			if err := g.emit(body); err != nil {
				return err
			}
			g.add(reInst{op: opJmp, x: int32(loop)})
			g.setSplit(loop, loop+1, len(g.insts), n.greedy)
			return nil
		}
		var splits []int
		for i := n.min; i < n.max; i++ {
			s := g.add(reInst{op: opSplit})
			splits = append(splits, s)
			if err := g.emit(body); err != nil {
				return err
			}
		}
		for _, s := range splits {
			g.setSplit(s, s+1, len(g.insts), n.greedy)
		}
	case nBegin:
		g.add(reInst{op: opBegin})
	case nEnd:
		g.add(reInst{op: opEnd})
	case nLook:
		sub := &reProg{src: g.src, classes: g.classes}
		if err := sub.emit(n.subs[0]); err != nil {
			return err
		}
		sub.insts = append(sub.insts, reInst{op: opMatch})
		g.subs = append(g.subs, sub)
		op := opLookPos
		if n.neg {
			op = opLookNeg
		}
		g.add(reInst{op: op, x: int32(len(g.subs) - 1)})
	}
	return nil
}

func (g *reProg) setSplit(at, body, out int, greedy bool) {
	if greedy {
		g.insts[at].x, g.insts[at].y = int32(body), int32(out)
	} else {
		g.insts[at].x, g.insts[at].y = int32(out), int32(body)
	}
}
