// Package specjson decodes and encodes a runtime-spec config (specs.Spec) without
// reflection at run time: a fast path in front of encoding/json, with the same results. It
// also decodes the image-spec documents `run --image` reads (an index, a manifest, an image
// config, as internal/oci's types: UnmarshalImage), and decodes and encodes state.json and the init pipe's messages
// (internal/wire's StateDoc and Msg), whose reflection every berth process paid the same way.
//
// Why: every berth process that reads or writes a spec paid encoding/json's reflection
// caches for the spec's types once (about 0.7 to 1 ms here, the first Decode or Marshal of
// a specs.Spec in a process; docs/performance.md). The code for each type is generated from
// the types by internal/specjson/gen (`go generate ./internal/specjson/`, committed as
// spec_gen.go; TestGeneratedIsCurrent fails when it is stale).
//
// The contract is encoding/json's results, exactly. The decoders take the canonical subset
// of valid input and give up (ok == false) on anything else, and the caller then decodes
// with encoding/json as before, so results and error texts are encoding/json's:
//   - a syntax error anywhere, or the end of the input inside the value;
//   - a JSON type the field does not take (a string for a number ...);
//   - an integer with a fraction or exponent, out of the field's range, or negative for an
//     unsigned field;
//   - a key that matches no field exactly but could match one case-insensitively, as
//     encoding/json's folding would (any key with a non-ASCII byte counts as such);
//   - nesting deeper than 200.
//
// Within the subset, encoding/json's semantics are followed: unknown keys skipped (their
// value's syntax checked), null a no-op except for a pointer, slice, map or interface (nil);
// a repeated key decodes again into what the first made (the same pointer's value, the same
// map, the slice's existing elements); an empty array is an empty, non-nil slice; strings
// unescaped as encoding/json does (\uXXXX with surrogate pairs, a lone or invalid surrogate
// as U+FFFD, each byte of invalid UTF-8 as U+FFFD).
//
// Marshal writes what json.Marshal writes: fields in order, omitempty, map keys sorted, nil
// slices and maps as null, strings HTML-safe (<, >, & as \u003c ...), U+2028 and U+2029
// escaped, invalid UTF-8 as \ufffd.
//
// Types the generator does not handle itself are handed to encoding/json for that value alone
// (readJSON, writeJSON): an interface, a float, a byte slice, an array, a map with a key that
// is not a plain string, a type with its own MarshalJSON, UnmarshalJSON, MarshalText or
// UnmarshalText. In runtime-spec 1.3 that is one field: windows.credentialSpec (an
// interface). Constructs it cannot follow make the generator fail instead (see package gen).
//
// The tests hold the fast path to this: differential fuzz targets against encoding/json
// (FuzzSpec on any bytes, FuzzSpecShaped on spec-shaped documents), and a check that the
// configs runc, berth, containerd, podman and the CRI write are taken by the fast path.
package specjson

//go:generate go run ./cmd/specjson-gen -o spec_gen.go

import (
	"encoding/json"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/oci"
	"github.com/berth-project/berth/internal/wire"
)

// Decode decodes a config as json.NewDecoder(bytes.NewReader(data)).Decode(&spec) does: the
// first JSON value in data, whatever follows it ignored. ok is false when the input is
// outside the fast path's subset: then decode it with encoding/json.
func Decode(data []byte) (spec *specs.Spec, ok bool) {
	spec = new(specs.Spec)
	d := newDecoder(data)
	if !run(func() {
		if d.peek() == 0 {
			d.fail() // no value at all: the Decoder's io.EOF, or a NUL byte
		}
		decSpec(d, spec)
	}) {
		return nil, false
	}
	return spec, true
}

// Unmarshal decodes a config as json.Unmarshal does: data must hold one JSON value and
// nothing but white space after it. ok is false as for Decode.
func Unmarshal(data []byte) (spec *specs.Spec, ok bool) {
	spec = new(specs.Spec)
	if !unmarshal(data, spec, decSpec) {
		return nil, false
	}
	return spec, true
}

// UnmarshalProcess decodes a process object (`berth exec --process`, which containerd uses
// for every exec) as json.Unmarshal does, ok false as for Unmarshal.
func UnmarshalProcess(data []byte) (proc *specs.Process, ok bool) {
	proc = new(specs.Process)
	if !unmarshal(data, proc, decProcess) {
		return nil, false
	}
	return proc, true
}

// UnmarshalImage decodes an image layout's index, a manifest or an image config (v is an
// *oci.Index, *oci.Manifest or *oci.Image) as json.Unmarshal into a zero value does. ok is
// false, and v untouched, for any other v and as for Unmarshal: then decode with encoding/json.
func UnmarshalImage(data []byte, v any) (ok bool) {
	switch p := v.(type) {
	case *oci.Index:
		return unmarshalZero(data, p, decOciIndex)
	case *oci.Manifest:
		return unmarshalZero(data, p, decOciManifest)
	case *oci.Image:
		return unmarshalZero(data, p, decOciImage)
	}
	return false
}

// UnmarshalState decodes state.json as json.Unmarshal into a zero wire.StateDoc does (its
// config kept as the raw JSON it is). ok is false, and v untouched, as for Unmarshal.
func UnmarshalState(data []byte, v *wire.StateDoc) (ok bool) {
	return unmarshalZero(data, v, decWireStateDoc)
}

// MarshalState encodes state.json as json.Marshal does; ok is false only where Marshal's is
// (a value handed to encoding/json failed: then json.Marshal gives the error).
func MarshalState(v *wire.StateDoc) (data []byte, ok bool) {
	ok = run(func() { data = encWireStateDoc(make([]byte, 0, 1024+len(v.Config)), v) })
	return data, ok
}

// UnmarshalMsg decodes an init pipe message as json.Unmarshal into a zero wire.Msg does; ok
// is false, and v untouched, as for Unmarshal.
func UnmarshalMsg(data []byte, v *wire.Msg) (ok bool) { return unmarshalZero(data, v, decWireMsg) }

// MarshalMsg encodes an init pipe message as json.Marshal does.
func MarshalMsg(v *wire.Msg) (data []byte, ok bool) {
	ok = run(func() { data = encWireMsg(make([]byte, 0, 64+len(v.Msg)+len(v.Step)+len(v.Where)), v) })
	return data, ok
}

// UnmarshalStore decodes an image store record (v is a *wire.LayerMeta or *wire.ImageRefs) as
// json.Unmarshal into a zero value does; ok is false, and v untouched, for any other v and as
// for Unmarshal.
func UnmarshalStore(data []byte, v any) (ok bool) {
	switch p := v.(type) {
	case *wire.LayerMeta:
		return unmarshalZero(data, p, decWireLayerMeta)
	case *wire.ImageRefs:
		return unmarshalZero(data, p, decWireImageRefs)
	}
	return false
}

// MarshalStoreIndent encodes an image store record berth writes (v is a *wire.StoreInfo or
// *wire.ContainerUse) as json.MarshalIndent(v, "", "  ") does; ok is false for any other v and
// where json.Marshal would fail.
func MarshalStoreIndent(v any) (data []byte, ok bool) {
	ok = run(func() {
		switch p := v.(type) {
		case *wire.StoreInfo:
			data = encWireStoreInfo(nil, p)
		case *wire.ContainerUse:
			data = encWireContainerUse(nil, p)
		default:
			panic(giveUp{})
		}
	})
	if !ok {
		return nil, false
	}
	return indentCompact(make([]byte, 0, len(data)*3/2), data, "", "  "), true
}

// unmarshal decodes data into v as json.Unmarshal does, or gives up (false).
func unmarshal[T any](data []byte, v *T, dec func(*decoder, *T)) bool {
	d := newDecoder(data)
	return run(func() {
		if d.peek() == 0 {
			d.fail()
		}
		dec(d, v)
		if d.ws(); d.off != len(d.data) {
			d.fail()
		}
	})
}

// unmarshalZero is unmarshal into a zero value, stored in *v only when it succeeded.
func unmarshalZero[T any](data []byte, v *T, dec func(*decoder, *T)) bool {
	var x T
	if !unmarshal(data, &x, dec) {
		return false
	}
	*v = x
	return true
}

// Marshal encodes a config as json.Marshal does. ok is false only when a value handed to
// encoding/json fails (an unsupported value in windows.credentialSpec): json.Marshal then
// gives the error.
func Marshal(spec *specs.Spec) (data []byte, ok bool) {
	if spec == nil {
		return []byte("null"), true
	}
	ok = run(func() { data = encSpec(make([]byte, 0, 4096), spec) })
	return data, ok
}

// MarshalIndent is json.MarshalIndent for a config (the same bytes: Marshal's, then
// json.Indent), with encoding/json itself when Marshal gives up.
func MarshalIndent(spec *specs.Spec, prefix, indent string) ([]byte, error) {
	data, ok := Marshal(spec)
	if !ok {
		return json.MarshalIndent(spec, prefix, indent)
	}
	return indentCompact(make([]byte, 0, len(data)*3/2), data, prefix, indent), nil
}

// indentCompact appends src, compact JSON as Marshal writes it, indented as json.Indent
// indents it: a newline, prefix and one indent per level after each opening bracket and
// comma and before each closing one, an empty object or array kept as {} or [], ": "
// after a key. It need not scan for errors as json.Indent does.
func indentCompact(dst, src []byte, prefix, indent string) []byte {
	depth := 0
	newline := func() {
		dst = append(dst, '\n')
		dst = append(dst, prefix...)
		for range depth {
			dst = append(dst, indent...)
		}
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch c {
		case '"':
			j := i + 1
			for ; src[j] != '"'; j++ {
				if src[j] == '\\' {
					j++
				}
			}
			dst = append(dst, src[i:j+1]...)
			i = j
		case '{', '[':
			dst = append(dst, c)
			if i+1 < len(src) && (src[i+1] == '}' || src[i+1] == ']') {
				dst = append(dst, src[i+1])
				i++
				continue
			}
			depth++
			newline()
		case '}', ']':
			depth--
			newline()
			dst = append(dst, c)
		case ',':
			dst = append(dst, c)
			newline()
		case ':':
			dst = append(dst, ':', ' ')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
