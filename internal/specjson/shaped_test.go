package specjson

import (
	"bytes"
	"math/rand"
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Spec-shaped input: JSON whose keys are the spec's field names (some in another case, some
// unknown) and whose values are of every JSON type, nested, with duplicate keys, nulls,
// numbers at the edges of the fields' ranges and strings with every kind of escape. Random
// bytes rarely get this deep into the typed decoders; this reaches them everywhere.

var fieldNames = func() []string {
	seen := map[reflect.Type]bool{}
	var names []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		if seen[t] {
			return
		}
		seen[t] = true
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map:
			walk(t.Elem())
		case reflect.Struct:
			for i := range t.NumField() {
				f := t.Field(i)
				if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
					names = append(names, name)
				}
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeFor[specs.Spec]())
	slices.Sort(names)
	return slices.Compact(names)
}()

var (
	shapedNumbers = []string{"0", "-0", "1", "-1", "7", "255", "256", "65535", "65536", "-1000", "2147483647", "-2147483648",
		"2147483648", "4294967295", "4294967296", "9223372036854775807", "-9223372036854775808", "9223372036854775808",
		"18446744073709551615", "18446744073709551616", "1.5", "1.0", "1e3", "-0.0", "1E+2", "0.000001"}
	shapedStrings = []string{`""`, `"a"`, `"/"`, `"CAP_SYS_ADMIN"`, `"\u00e9"`, `"\ud83d\ude00"`, `"\ud800"`, `"\udc00\ud800"`,
		`"\ud800\u0041"`, `"\"\\\/\b\f\n\r\t"`, `"<&>"`, "\"\u2028\"", "\"\xff\xfe\"", "\"\xed\xa0\x80\"", `"\u0000"`, `"é"`}
)

// shaper writes JSON steered by the bytes of src (zeros once it runs out), mostly of the type
// being decoded (the keys of the struct at hand, values of each field's type), sometimes not.
type shaper struct {
	src []byte
	out bytes.Buffer
}

func (s *shaper) next() int {
	if len(s.src) == 0 {
		return 0
	}
	b := s.src[0]
	s.src = s.src[1:]
	return int(b)
}

type jsonField struct {
	name string
	typ  reflect.Type
}

// jsonFields: a struct's JSON keys and their types, embedded structs' promoted.
func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		if f.IsExported() && name != "-" {
			if name == "" {
				name = f.Name
			}
			out = append(out, jsonField{name, f.Type})
		}
	}
	return out
}

// value writes a value for type t (nil: any).
func (s *shaper) value(t reflect.Type, depth int) {
	if t != nil && s.next()%12 == 0 {
		t = nil // the wrong type, now and then
	}
	if t == nil {
		s.anyValue(depth)
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		if s.next()%6 == 0 {
			s.out.WriteString("null")
			return
		}
		s.value(t.Elem(), depth)
	case reflect.Struct:
		fields := jsonFields(t)
		s.out.WriteByte('{')
		for i := range s.next() % 7 {
			if i > 0 {
				s.out.WriteByte(',')
			}
			f := fields[s.next()%len(fields)]
			name := f.name
			switch s.next() % 24 {
			case 0:
				name = strings.ToUpper(name)
			case 1:
				name = "x" + name
			case 2:
				name = fieldNames[s.next()%len(fieldNames)]
			case 3:
				name = strings.ToUpper(name[:1]) + name[1:]
			}
			s.out.WriteString(`"` + name + `":`)
			if s.next()%8 == 0 {
				s.out.WriteString(" \n\t")
			}
			s.value(f.typ, depth+1)
		}
		s.out.WriteByte('}')
	case reflect.Slice:
		if s.next()%8 == 0 {
			s.out.WriteString("null")
			return
		}
		s.out.WriteByte('[')
		for i := range s.next() % 4 {
			if i > 0 {
				s.out.WriteByte(',')
			}
			s.value(t.Elem(), depth+1)
		}
		s.out.WriteByte(']')
	case reflect.Map:
		if s.next()%8 == 0 {
			s.out.WriteString("null")
			return
		}
		s.out.WriteByte('{')
		for i := range s.next() % 4 {
			if i > 0 {
				s.out.WriteByte(',')
			}
			s.out.WriteString(shapedStrings[s.next()%len(shapedStrings)] + ":")
			s.value(t.Elem(), depth+1)
		}
		s.out.WriteByte('}')
	case reflect.String:
		s.out.WriteString(shapedStrings[s.next()%len(shapedStrings)])
	case reflect.Bool:
		s.out.WriteString([]string{"true", "false", "null"}[s.next()%3])
	case reflect.Interface:
		s.anyValue(depth)
	default: // numbers
		s.out.WriteString(shapedNumbers[s.next()%len(shapedNumbers)])
	}
}

// anyValue writes a value of any JSON type.
func (s *shaper) anyValue(depth int) {
	c := s.next()
	if depth > 8 {
		c %= 4 // scalars only
	}
	switch c % 7 {
	case 0:
		s.out.WriteString(shapedNumbers[s.next()%len(shapedNumbers)])
	case 1:
		s.out.WriteString(shapedStrings[s.next()%len(shapedStrings)])
	case 2:
		s.out.WriteString([]string{"null", "true", "false"}[s.next()%3])
	case 3:
		s.out.WriteString("null")
	case 4, 5:
		s.out.WriteByte('{')
		for i := range s.next() % 4 {
			if i > 0 {
				s.out.WriteByte(',')
			}
			s.out.WriteString(`"` + fieldNames[s.next()%len(fieldNames)] + `":`)
			s.anyValue(depth + 1)
		}
		s.out.WriteByte('}')
	default:
		s.out.WriteByte('[')
		for i := range s.next() % 4 {
			if i > 0 {
				s.out.WriteByte(',')
			}
			s.anyValue(depth + 1)
		}
		s.out.WriteByte(']')
	}
}

// shaped is a spec-shaped document.
func shaped(src []byte) []byte {
	s := &shaper{src: src}
	s.value(reflect.TypeFor[specs.Spec](), 0)
	return s.out.Bytes()
}

func TestShapedRandom(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	src := make([]byte, 400)
	taken := 0
	for range 5000 {
		r.Read(src)
		if check(t, shaped(src)) {
			taken++
		}
	}
	t.Logf("the fast path took %d of 5000", taken)
	if taken < 200 {
		t.Errorf("the fast path took only %d of 5000 spec-shaped documents", taken)
	}
}

// FuzzSpecShaped: the fuzzer's bytes steer the spec-shaped generator.
func FuzzSpecShaped(f *testing.F) {
	r := rand.New(rand.NewSource(3))
	for range 20 {
		src := make([]byte, 200)
		r.Read(src)
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		check(t, shaped(src))
	})
}
