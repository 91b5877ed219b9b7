package specjson

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth is how deep the fast path follows nested arrays and objects (the spec's own types
// nest about 6 deep; deeper is an unknown key's value). Deeper input is left to
// encoding/json, whose own limit (10000) and error then apply.
const maxDepth = 200

// decoder reads one JSON value from data at off. Any input the fast path does not take
// (invalid JSON, a JSON type the field does not take, a number out of the field's range, a
// key encoding/json would match only case-insensitively ...) ends the decoding: fail panics
// with giveUp, which Decode and Unmarshal recover into ok == false.
type decoder struct {
	data []byte
	// text is data as a string: the strings decoded without escapes are slices of it, one
	// allocation for all of them.
	text  string
	off   int
	depth int
	// key is the object key last read by nextKey: a slice of data, or of scratch when it
	// held escapes.
	key     []byte
	scratch []byte
	// clean: the string last read was taken as it is, from data[cleanAt:off-1].
	clean   bool
	cleanAt int
}

func newDecoder(data []byte) *decoder { return &decoder{data: data, text: string(data)} }

type giveUp struct{}

func (d *decoder) fail() { panic(giveUp{}) }

// run calls f and says whether it finished without giving up; any other panic goes on.
func run(f func()) (ok bool) {
	defer func() {
		if !ok {
			if r := recover(); r != nil {
				if _, mine := r.(giveUp); !mine {
					panic(r)
				}
			}
		}
	}()
	f()
	return true
}

func (d *decoder) ws() {
	for d.off < len(d.data) {
		switch d.data[d.off] {
		case ' ', '\t', '\n', '\r':
			d.off++
		default:
			return
		}
	}
}

// peek is the next byte after white space (0 at the end of the input, which no value starts
// with).
func (d *decoder) peek() byte {
	d.ws()
	if d.off < len(d.data) {
		return d.data[d.off]
	}
	return 0
}

func (d *decoder) literal(lit string) {
	if len(d.data)-d.off < len(lit) || string(d.data[d.off:d.off+len(lit)]) != lit {
		d.fail()
	}
	d.off += len(lit)
}

// null consumes a null literal if one is next.
func (d *decoder) null() bool {
	if d.peek() != 'n' {
		return false
	}
	d.literal("null")
	return true
}

func (d *decoder) enter(c byte) {
	if d.peek() != c {
		d.fail()
	}
	d.off++
	d.depth++
	if d.depth > maxDepth {
		d.fail()
	}
}

// nextKey reads the next key of an object (entered with enter('{')) and the colon after it;
// false at the closing brace.
func (d *decoder) nextKey(first *bool) bool {
	c := d.peek()
	if *first {
		*first = false
		if c == '}' {
			d.off++
			d.depth--
			return false
		}
	} else {
		switch c {
		case '}':
			d.off++
			d.depth--
			return false
		case ',':
			d.off++
			c = d.peek()
		default:
			d.fail()
		}
	}
	if c != '"' {
		d.fail()
	}
	d.key = d.stringBytes()
	if d.peek() != ':' {
		d.fail()
	}
	d.off++
	return true
}

// nextElem says whether another element of an array (entered with enter('[')) follows.
func (d *decoder) nextElem(first *bool) bool {
	c := d.peek()
	if *first {
		*first = false
		if c == ']' {
			d.off++
			d.depth--
			return false
		}
		return true
	}
	switch c {
	case ']':
		d.off++
		d.depth--
		return false
	case ',':
		d.off++
		return true
	}
	d.fail()
	return false
}

// stringBytes reads a string literal (at a '"') as encoding/json unquotes it: escapes
// resolved (a \u escape of a lone or invalid surrogate gives U+FFFD), each byte of invalid
// UTF-8 made U+FFFD. The result aliases data when the literal needs no change, else scratch.
func (d *decoder) stringBytes() []byte {
	d.off++ // the opening quote
	start := d.off
	for i := start; i < len(d.data); {
		c := d.data[i]
		switch {
		case c == '"':
			d.off = i + 1
			d.clean, d.cleanAt = true, start
			return d.data[start:i]
		case c == '\\' || c < ' ':
			return d.unquoteFrom(start, i)
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(d.data[i:])
			if r == utf8.RuneError && size == 1 {
				return d.unquoteFrom(start, i)
			}
			i += size
		}
	}
	d.fail() // unterminated
	return nil
}

// unquoteFrom is stringBytes' slow path, from the first byte at i that needs work.
func (d *decoder) unquoteFrom(start, i int) []byte {
	d.clean = false
	b := append(d.scratch[:0], d.data[start:i]...)
	for i < len(d.data) {
		c := d.data[i]
		switch {
		case c == '"':
			d.off = i + 1
			d.scratch = b
			return b
		case c < ' ':
			d.fail() // a control character must be escaped
		case c == '\\':
			if i+1 >= len(d.data) {
				d.fail()
			}
			switch e := d.data[i+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := hex4(d.data[i:])
				if r < 0 {
					d.fail()
				}
				i += 6
				if utf16.IsSurrogate(r) {
					// A pair only if another \u escape follows and completes it; else the
					// first is U+FFFD and what follows is read on its own.
					if dec := utf16.DecodeRune(r, hex4(d.data[i:])); dec != utf8.RuneError {
						i += 6
						b = utf8.AppendRune(b, dec)
						continue
					}
					r = utf8.RuneError
				}
				b = utf8.AppendRune(b, r)
				continue
			default:
				d.fail() // not an escape JSON has (encoding/json's scanner refuses it)
			}
			i += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRune(d.data[i:])
			b = utf8.AppendRune(b, r) // RuneError for each invalid byte
			i += size
		}
	}
	d.fail()
	return nil
}

// hex4 is the rune of a \uXXXX escape at the start of s, or -1.
func hex4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// number reads a number literal as JSON's grammar has it and says whether it is an integer
// (no fraction, no exponent).
func (d *decoder) number() (lit []byte, integer bool) {
	d.ws()
	start, i := d.off, d.off
	digits := func() {
		j := i
		for i < len(d.data) && '0' <= d.data[i] && d.data[i] <= '9' {
			i++
		}
		if i == j {
			d.fail()
		}
	}
	if i < len(d.data) && d.data[i] == '-' {
		i++
	}
	if i < len(d.data) && d.data[i] == '0' {
		i++
	} else {
		digits()
	}
	integer = true
	if i < len(d.data) && d.data[i] == '.' {
		i++
		digits()
		integer = false
	}
	if i < len(d.data) && (d.data[i] == 'e' || d.data[i] == 'E') {
		i++
		if i < len(d.data) && (d.data[i] == '+' || d.data[i] == '-') {
			i++
		}
		digits()
		integer = false
	}
	d.off = i
	return d.data[start:i], integer
}

// skip reads over any value, checking its syntax as encoding/json's scanner does.
func (d *decoder) skip() {
	switch d.peek() {
	case '{':
		d.enter('{')
		for first := true; d.nextKey(&first); {
			d.skip()
		}
	case '[':
		d.enter('[')
		for first := true; d.nextElem(&first); {
			d.skip()
		}
	case '"':
		d.stringBytes()
	case 't':
		d.literal("true")
	case 'f':
		d.literal("false")
	case 'n':
		d.literal("null")
	default:
		d.number()
	}
}

// unknown skips the value of a key that names no field exactly. encoding/json would still
// decode it into a field whose name matches case-insensitively (Unicode folding): a key
// that could, or any key with non-ASCII bytes, is left to it.
func (d *decoder) unknown(folded []string) {
	for _, c := range d.key {
		if c >= utf8.RuneSelf {
			d.fail()
		}
	}
	for _, name := range folded {
		if len(name) == len(d.key) && upperEqual(d.key, name) {
			d.fail()
		}
	}
	d.skip()
}

// upperEqual: key (ASCII) equals upper (ASCII, upper case) once its letters are upper case.
func upperEqual(key []byte, upper string) bool {
	for i, c := range key {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}

// The decoders of one value each. null leaves a value as it is and makes a pointer, slice or
// map nil, as encoding/json does.

func readString[T ~string](d *decoder, p *T) {
	if d.null() {
		return
	}
	if d.peek() != '"' {
		d.fail()
	}
	*p = T(d.str(d.stringBytes()))
}

// str is b, the string last read, as a Go string.
func (d *decoder) str(b []byte) string {
	if d.clean {
		return d.text[d.cleanAt : d.cleanAt+len(b)]
	}
	return string(b)
}

func readBool[T ~bool](d *decoder, p *T) {
	switch d.peek() {
	case 'n':
		d.literal("null")
	case 't':
		d.literal("true")
		*p = true
	case 'f':
		d.literal("false")
		*p = false
	default:
		d.fail()
	}
}

func readInt[T ~int | ~int8 | ~int16 | ~int32 | ~int64](d *decoder, p *T, bits int) {
	if d.null() {
		return
	}
	lit, integer := d.number()
	if !integer {
		d.fail()
	}
	n, err := strconv.ParseInt(string(lit), 10, bits)
	if err != nil {
		d.fail()
	}
	*p = T(n)
}

func readUint[T ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uintptr](d *decoder, p *T, bits int) {
	if d.null() {
		return
	}
	lit, integer := d.number()
	if !integer || lit[0] == '-' { // strconv.ParseUint refuses a sign, even "-0"
		d.fail()
	}
	n, err := strconv.ParseUint(string(lit), 10, bits)
	if err != nil {
		d.fail()
	}
	*p = T(n)
}

// readPtr decodes into the value a pointer points to, allocating it when nil; a repeated key
// decodes into the same value again, as encoding/json does.
func readPtr[T any](d *decoder, p **T, elem func(*decoder, *T)) {
	if d.null() {
		*p = nil
		return
	}
	if *p == nil {
		*p = new(T)
	}
	elem(d, *p)
}

// readSlice follows encoding/json's array decoding: elements are decoded into the slice's
// existing elements (a repeated key merges into them), the slice grows one element at a
// time, is cut to the elements read, and an empty array gives a new empty slice.
func readSlice[E any](d *decoder, p *[]E, elem func(*decoder, *E)) {
	if d.null() {
		*p = nil
		return
	}
	d.enter('[')
	s := *p
	i := 0
	for first := true; d.nextElem(&first); i++ {
		if i >= cap(s) {
			s = slices.Grow(s, 1)
		}
		if i >= len(s) {
			s = s[:i+1]
		}
		elem(d, &s[i])
	}
	if i < len(s) {
		s = s[:i]
	}
	if i == 0 {
		s = make([]E, 0)
	}
	*p = s
}

// readMap: each value is decoded into a zero value, then stored under its key.
func readMap[K ~string, E any](d *decoder, p *map[K]E, elem func(*decoder, *E)) {
	if d.null() {
		*p = nil
		return
	}
	d.enter('{')
	if *p == nil {
		*p = make(map[K]E)
	}
	for first := true; d.nextKey(&first); {
		k := K(d.str(d.key))
		var e E
		elem(d, &e)
		(*p)[k] = e
	}
}

// readJSON hands one value to encoding/json: for the fields the generator does not decode
// itself (see the package documentation).
func readJSON[T any](d *decoder, p *T) {
	d.ws()
	start := d.off
	d.skip()
	if err := json.Unmarshal(d.data[start:d.off], p); err != nil {
		d.fail()
	}
}

// readRaw reads a json.RawMessage as encoding/json fills one: the value's bytes as they are
// in the input (after its leading white space), its syntax checked by skip.
func readRaw(d *decoder, p *json.RawMessage) {
	d.ws()
	start := d.off
	d.skip()
	*p = append((*p)[:0], d.data[start:d.off]...)
}

// readTime decodes a time.Time as encoding/json does: the value's bytes, syntax checked, handed
// to its UnmarshalJSON (null leaves it as it is; anything but an RFC 3339 string fails, and
// encoding/json then reports it).
func readTime(d *decoder, p *time.Time) {
	d.ws()
	start := d.off
	d.skip()
	if p.UnmarshalJSON(d.data[start:d.off]) != nil {
		d.fail()
	}
}
