package specjson

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// The encoders of one value each append it to b as json.Marshal writes it. A field that
// encoding/json cannot encode (only possible in a field handed to it, writeJSON) panics with
// giveUp, recovered by Marshal.

const hexDigits = "0123456789abcdef"

// appendString quotes s as json.Marshal does: HTML-safe (<, > and & as \u003c, \u003e,
// \u0026), U+2028 and U+2029 escaped, each byte of invalid UTF-8 as \ufffd, and the control
// characters as \b, \f, \n, \r, \t or \u00XX.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// comma separates a field from the ones before it in the object that starts at start.
func comma(b []byte, start int) []byte {
	if len(b) > start {
		b = append(b, ',')
	}
	return b
}

func writeString[T ~string](b []byte, p *T) []byte { return appendString(b, string(*p)) }

func writeBool[T ~bool](b []byte, p *T) []byte { return strconv.AppendBool(b, bool(*p)) }

func writeInt[T ~int | ~int8 | ~int16 | ~int32 | ~int64](b []byte, p *T) []byte {
	return strconv.AppendInt(b, int64(*p), 10)
}

func writeUint[T ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uintptr](b []byte, p *T) []byte {
	return strconv.AppendUint(b, uint64(*p), 10)
}

func writePtr[T any](b []byte, p **T, elem func([]byte, *T) []byte) []byte {
	if *p == nil {
		return append(b, "null"...)
	}
	return elem(b, *p)
}

// writeSlice: a nil slice is null, an empty one [].
func writeSlice[E any](b []byte, p *[]E, elem func([]byte, *E) []byte) []byte {
	if *p == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i := range *p {
		if i > 0 {
			b = append(b, ',')
		}
		b = elem(b, &(*p)[i])
	}
	return append(b, ']')
}

// writeMap: keys in byte order, quoted as any string.
func writeMap[K ~string, E any](b []byte, p *map[K]E, elem func([]byte, *E) []byte) []byte {
	m := *p
	if m == nil {
		return append(b, "null"...)
	}
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, string(k))
		b = append(b, ':')
		e := m[k]
		b = elem(b, &e)
	}
	return append(b, '}')
}

// writeJSON hands one value to encoding/json (see the package documentation). Marshal is given
// its address, so that what it finds (a MarshalJSON on the pointer, an addressable value) is
// what it finds in the field.
func writeJSON[T any](b []byte, p *T) []byte {
	out, err := json.Marshal(p)
	if err != nil {
		panic(giveUp{})
	}
	return append(b, out...)
}

// writeRaw writes a json.RawMessage as json.Marshal does: null when nil; else the bytes as
// they are when they are one valid value that encoding/json's compacting would leave alone
// (no white space outside strings; no <, >, & or U+2028/U+2029, which it escapes). Anything
// else goes to encoding/json.
func writeRaw(b []byte, p *json.RawMessage) []byte {
	raw := *p
	if raw == nil {
		return append(b, "null"...)
	}
	if !compactAndSafe(raw) {
		return writeJSON(b, p)
	}
	return append(b, raw...)
}

func compactAndSafe(raw []byte) bool {
	d := newDecoder(raw)
	if !run(func() {
		if d.peek() == 0 {
			d.fail()
		}
		d.skip()
	}) || d.off != len(raw) {
		return false
	}
	inString := false
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '<' || c == '>' || c == '&':
			return false
		case c == 0xE2 && i+2 < len(raw) && raw[i+1] == 0x80 && raw[i+2]&^1 == 0xA8:
			return false
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case !inString && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return false
		}
	}
	return true
}

// writeTime encodes a time.Time as encoding/json does: its MarshalJSON, which writes a plain
// quoted RFC 3339 text that encoding/json's compacting leaves as it is (checked all the same).
func writeTime(b []byte, p *time.Time) []byte {
	out, err := p.MarshalJSON()
	if err != nil || !compactAndSafe(out) {
		return writeJSON(b, p)
	}
	return append(b, out...)
}
