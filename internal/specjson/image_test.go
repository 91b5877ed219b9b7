package specjson

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/oci"
)

// checkImage decodes data as each image-spec document (internal/oci's types) with the fast
// path and with json.Unmarshal, and fails when the fast path took something encoding/json
// decodes otherwise or refuses, or changed its argument when it gave up. encoding/json's
// result is also held to image-spec's own type for the document: the same outcome, and the
// same bytes when both are encoded again. It returns how many of the three documents the
// fast path took.
func checkImage(t *testing.T, data []byte) int {
	t.Helper()
	took := 0
	for _, doc := range []struct{ ours, theirs func() any }{
		{func() any { return new(oci.Index) }, func() any { return new(v1.Index) }},
		{func() any { return new(oci.Manifest) }, func() any { return new(v1.Manifest) }},
		{func() any { return new(oci.Image) }, func() any { return new(v1.Image) }},
	} {
		mk := doc.ours
		want, got, spec := mk(), mk(), doc.theirs()
		err := json.Unmarshal(data, want)
		specErr := json.Unmarshal(data, spec)
		if (err == nil) != (specErr == nil) {
			t.Fatalf("json.Unmarshal of %q: %T: %v; image-spec's %T: %v", data, want, err, spec, specErr)
		}
		ourJSON, err1 := json.Marshal(want)
		specJSON, err2 := json.Marshal(spec)
		if (err1 == nil) != (err2 == nil) || !bytes.Equal(ourJSON, specJSON) {
			t.Fatalf("%q decoded and encoded again: %T gives %s (%v), image-spec's %T %s (%v)", data, want, ourJSON, err1, spec, specJSON, err2)
		}
		if !UnmarshalImage(data, got) {
			if !reflect.DeepEqual(got, mk()) {
				t.Fatalf("UnmarshalImage(%T) gave up on %q but changed its argument: %#v", got, data, got)
			}
			continue
		}
		took++
		if err != nil {
			t.Fatalf("UnmarshalImage(%T) took %q, which encoding/json refuses: %v", got, data, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("UnmarshalImage(%T) of %q:\n got %#v\nwant %#v", got, data, got, want)
		}
	}
	return took
}

// imageFixtures are index.json, manifests and image configs other tools wrote (umoci,
// skopeo, docker), kept in the repository.
func imageFixtures(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	paths, _ := filepath.Glob("../../image/testdata/images/*/*.json")
	more, _ := filepath.Glob("../../image/testdata/images/*.json")
	for _, p := range append(paths, more...) {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[p] = data
	}
	if len(out) < 7 {
		t.Fatalf("only %d image fixtures found", len(out))
	}
	return out
}

// The documents other tools wrote take the fast path, as the type they are, with
// encoding/json's results; anything else is refused without a trace.
func TestUnmarshalImage(t *testing.T) {
	for p, data := range imageFixtures(t) {
		if checkImage(t, data) == 0 {
			t.Errorf("%s: the fast path took it as none of the three documents", p)
		}
		var want, got any
		switch filepath.Base(p) {
		case "index.json":
			want, got = new(oci.Index), new(oci.Index)
		case "manifest.json":
			want, got = new(oci.Manifest), new(oci.Manifest)
		default:
			want, got = new(oci.Image), new(oci.Image)
		}
		if err := json.Unmarshal(data, want); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if !UnmarshalImage(data, got) {
			t.Errorf("%s: the fast path gave up on it as a %T", p, got)
		} else if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %#v\nwant %#v", p, got, want)
		}
	}
	var s struct{ A int }
	if UnmarshalImage([]byte(`{"A":1}`), &s) || s.A != 0 {
		t.Errorf("UnmarshalImage took a type it does not know: %+v", s)
	}
}

// FuzzImage: arbitrary bytes as each image-spec document, the fast path against encoding/json.
func FuzzImage(f *testing.F) {
	for _, data := range imageFixtures(f) {
		f.Add(data)
	}
	for _, c := range edgeCases {
		f.Add([]byte(c.in))
	}
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"digest":"sha256:00","size":1,"data":"AAEC","platform":{"os":"linux","architecture":"amd64","os.features":[]},` +
		`"annotations":{"org.opencontainers.image.ref.name":"a<b"}}],"subject":null}`))
	f.Add([]byte(`{"created":"2024-01-02T03:04:05.123456789Z","architecture":"amd64","os":"linux",` +
		`"config":{"User":"1:2","ExposedPorts":{"80/tcp":{},"81/udp":{"x":1}},"Volumes":{"/v":{}},"Env":["A=1"],` +
		`"Entrypoint":["/bin/sh"],"Cmd":null,"ArgsEscaped":true,"StopSignal":"SIGTERM","Labels":{"k":"v"}},` +
		`"rootfs":{"type":"layers","diff_ids":["sha256:ab"]},"history":[{"created":null,"empty_layer":true}]}`))
	f.Add([]byte(`{"created":"not a time","architecture":"amd64"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkImage(t, data)
	})
}
