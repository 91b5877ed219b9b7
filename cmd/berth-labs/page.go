package main

// A lab page is markdown. Its fenced blocks are read by their info string (the word after the
// opening fence):
//
//	```sh            a step: its commands run, in order, in one shell for the whole page
//	```sh norun      shown, never run (a teacher's aside, a command for another machine)
//	```sh cleanup    a step that also runs, whatever happened, when the runner stops early
//	```sh timeout=N  a step allowed N seconds (default 60)
//	```text          what the sh step before it prints: each line must appear in its output
//
// Any other info string (console, json, ...) is only shown. docs/labs/README.md is the
// convention as a teacher reads it.

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// step is one ```sh block and the ```text block that goes with it.
type step struct {
	line    int    // the line of the opening fence, from 1
	prose   string // the page's text between the previous block and this one
	script  string
	want    []string // lines the output must contain, in order (empty: only the exit status counts)
	norun   bool
	cleanup bool
	timeout int // seconds
}

type block struct {
	line  int
	info  []string
	body  string
	prose string
}

// parsePage reads a lab page into its steps.
func parsePage(r io.Reader) ([]*step, error) {
	var blocks []block
	var prose, body strings.Builder
	var cur *block
	fence := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if cur == nil {
			if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
				fence = strings.Repeat(trimmed[:1], len(trimmed)-len(strings.TrimLeft(trimmed, trimmed[:1])))
				cur = &block{line: n, info: strings.Fields(trimmed[len(fence):]), prose: prose.String()}
				prose.Reset()
				body.Reset()
				continue
			}
			prose.WriteString(line + "\n")
			continue
		}
		if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]) == "" && len(trimmed) >= len(fence) {
			cur.body = body.String()
			blocks = append(blocks, *cur)
			cur = nil
			continue
		}
		body.WriteString(line + "\n")
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if cur != nil {
		return nil, fmt.Errorf("line %d: code block never closed", cur.line)
	}
	var steps []*step
	var last *step
	for _, b := range blocks {
		kind := ""
		if len(b.info) > 0 {
			kind = b.info[0]
		}
		switch kind {
		case "sh":
			s := &step{line: b.line, prose: b.prose, script: b.body, timeout: 60}
			for _, opt := range b.info[1:] {
				switch {
				case opt == "norun":
					s.norun = true
				case opt == "cleanup":
					s.cleanup = true
				case strings.HasPrefix(opt, "timeout="):
					t, err := strconv.Atoi(strings.TrimPrefix(opt, "timeout="))
					if err != nil || t <= 0 {
						return nil, fmt.Errorf("line %d: bad %q", b.line, opt)
					}
					s.timeout = t
				default:
					return nil, fmt.Errorf("line %d: unknown option %q of a sh block", b.line, opt)
				}
			}
			steps = append(steps, s)
			last = s
		case "text":
			if last == nil {
				return nil, fmt.Errorf("line %d: a text block with no sh block before it", b.line)
			}
			if last.want != nil {
				return nil, fmt.Errorf("line %d: a second text block for the sh block of line %d", b.line, last.line)
			}
			last.want = wantLines(b.body)
			if last.want == nil {
				last.want = []string{}
			}
		default:
			last = nil
		}
	}
	return steps, nil
}

// wantLines are the lines of a text block that must be matched: blank lines and lines that
// are only "..." (output left out) are not.
func wantLines(body string) []string {
	var w []string
	for _, l := range strings.Split(body, "\n") {
		l = squash(l)
		if l == "" || l == "..." {
			continue
		}
		w = append(w, l)
	}
	return w
}

// squash trims a line and makes every run of blanks one space, so columns may be aligned
// differently on the page and in the output.
func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

// match finds each wanted line in out, in order; it returns the first one missing ("" if all
// were found). A wanted line is found in an output line that contains it; "..." inside it
// stands for any text.
func match(want []string, out string) string {
	lines := strings.Split(out, "\n")
	for i := range lines {
		lines[i] = squash(lines[i])
	}
	pos := 0
	for _, w := range want {
		found := false
		for pos < len(lines) {
			l := lines[pos]
			pos++
			if lineMatches(w, l) {
				found = true
				break
			}
		}
		if !found {
			return w
		}
	}
	return ""
}

func lineMatches(want, line string) bool {
	for _, part := range strings.Split(want, "...") {
		part = strings.TrimSpace(part)
		i := strings.Index(line, part)
		if i < 0 {
			return false
		}
		line = line[i+len(part):]
	}
	return true
}
