package tokenizer

// Running compiled patterns: an explicit-stack backtracker (first
// alternative first, greedy loops try one more iteration first, as
// ECMAScript requires), and the std::regex_iterator-style split.

// reMatcher holds the backtracking stacks; one per goroutine.
type reMatcher struct {
	stacks [][]reFrame // one per lookahead depth
	depth  int
}

type reFrame struct{ pc, pos int32 }

// matchAt runs prog anchored at pos within the chunk text[start:end] and
// returns the end of the match, or -1. With notNull an empty match fails
// (std::regex's match_not_null).
func (m *reMatcher) matchAt(g *reProg, text []reChar, start, end, pos int, notNull bool) int {
	if m.depth == len(m.stacks) {
		m.stacks = append(m.stacks, make([]reFrame, 0, 64))
	}
	stack := m.stacks[m.depth][:0]
	m.depth++

	origin := pos
	insts := g.insts
	stack = append(stack, reFrame{0, int32(pos)})
	result := -1
outer:
	for len(stack) > 0 {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		pc, p := int(f.pc), int(f.pos)
		for {
			in := insts[pc]
			switch in.op {
			case opClass:
				if p >= end || !g.classes[in.x].matches(text[p]) {
					continue outer
				}
				p++
				pc++
			case opSplit:
				stack = append(stack, reFrame{in.y, int32(p)})
				pc = int(in.x)
			case opJmp:
				pc = int(in.x)
			case opBegin:
				if p != start {
					continue outer
				}
				pc++
			case opEnd:
				if p != end {
					continue outer
				}
				pc++
			case opLookPos, opLookNeg:
				m.stacks[m.depth-1] = stack // keep growth across the nested call
				ok := m.matchAt(g.subs[in.x], text, start, end, p, false) >= 0
				stack = m.stacks[m.depth-1]
				if ok != (in.op == opLookPos) {
					continue outer
				}
				pc++
			case opMatch:
				if notNull && p == origin {
					continue outer
				}
				result = p
				break outer
			}
		}
	}
	m.stacks[m.depth-1] = stack[:0]
	m.depth--
	return result
}

// split refines chunks (lengths in codepoints, covering text) the way
// llama.cpp's unicode_regex_split_stl does with std::regex_iterator: inside
// each chunk every match becomes a chunk, and so does every gap between
// matches.
func (m *reMatcher) split(g *reProg, text []reChar, chunks []int, out []int) []int {
	start := 0
	for _, n := range chunks {
		end := start + n
		last := start // end of the previous match
		pos := start
		for pos <= end {
			p, e := -1, -1
			for q := pos; q <= end; q++ {
				if e = m.matchAt(g, text, start, end, q, false); e >= 0 {
					p = q
					break
				}
			}
			if p < 0 {
				break
			}
			if e == p {
				// Empty match: std::regex_iterator retries here for a
				// non-empty one before moving on.
				if e2 := m.matchAt(g, text, start, end, p, true); e2 >= 0 {
					e = e2
				}
			}
			if p > last {
				out = append(out, p-last)
			}
			if e > p {
				out = append(out, e-p)
				last = e
				pos = e
			} else {
				last = p
				pos = p + 1
			}
		}
		if last < end {
			out = append(out, end-last)
		}
		start = end
	}
	return out
}
