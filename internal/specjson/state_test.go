package specjson

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/oci"
	"github.com/berth-project/berth/internal/wire"
)

// checkState decodes data as state.json with the fast path and with json.Unmarshal, and
// encodes what was decoded both ways.
func checkState(t *testing.T, data []byte) bool {
	t.Helper()
	var want, got wire.StateDoc
	err := json.Unmarshal(data, &want)
	ok := UnmarshalState(data, &got)
	if !ok {
		if !reflect.DeepEqual(got, wire.StateDoc{}) {
			t.Fatalf("UnmarshalState gave up on %q but changed its argument: %#v", data, got)
		}
	} else {
		if err != nil {
			t.Fatalf("UnmarshalState took %q, which encoding/json refuses: %v", data, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("UnmarshalState of %q:\n got %#v\nwant %#v", data, got, want)
		}
	}
	if err == nil {
		checkMarshalState(t, &want)
	}
	return ok
}

func checkMarshalState(t *testing.T, doc *wire.StateDoc) {
	t.Helper()
	want, err := json.Marshal(doc)
	got, ok := MarshalState(doc)
	if !ok {
		if err == nil {
			t.Fatalf("MarshalState gave up on a document json.Marshal encodes: %s", want)
		}
		return
	}
	if err != nil {
		t.Fatalf("MarshalState encoded a document json.Marshal refuses (%v): %s", err, got)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("MarshalState:\n got %s\nwant %s", got, want)
	}
}

var stateSeeds = []string{
	`{"ociVersion":"1.2.0","id":"c1","pid":42,"bundle":"/b","rootfs":"/b/rootfs","created":"2026-12-06T21:00:00.123456789Z","owner":"","annotations":{"a":"<"},"creating":true,"creatorPid":7,"pidStart":1099511627776,"cgroupPath":"/berth/c1","systemdCgroup":true,"image":"img:x","hostMounts":true,"hostMountTop":3,"config":{"ociVersion":"1.0.2","process":{"args":["sh"]}}}`,
	`{"id":"c1","config":null}`,
	`{"id":"c1","config":  [1, 2 ,{"a" : "\u003c"}] ,"pid":1}`,
	`{"id":"c1","config":"<&>\u2028"}`,
	`{"id":"c1","config":{}, "config":{"x":1}}`,
	`{"id":"c1","created":"not a time"}`,
	`{"id":"c1","ID":"c2"}`,
	`{"id":"c1","config":}`,
	`{"id":"c1","pid":-1,"pidStart":-1}`,
	`{"created":null}`, `{"created":"2026-12-06T21:00:00+01:00"}`, `{"created":"2026-12-06T21:00:00.5Z","created":null}`,
	`{"created":5}`, `{"created":"2026-12-06T21:00:00\u002b01:00"}`, `{"created":"2026-13-06T21:00:00Z"}`,
}

// The fast path takes what berth writes, and agrees with encoding/json on everything.
func TestStateDoc(t *testing.T) {
	for i, s := range stateSeeds {
		if took := checkState(t, []byte(s)); i < 5 && !took {
			t.Errorf("seed %d: the fast path gave up on %s", i, s)
		}
	}
	for _, raw := range []string{"", "null", "1", " 1", "{\"a\":1}", "{\"a\": 1}", "\"<\"", "\"\\u003c\"", "[1,2]", "{", "\"\xe2\x80\xa8\""} {
		doc := &wire.StateDoc{StateFields: wire.StateFields{ID: "x", Created: time.Unix(1, 2).UTC()}, Config: json.RawMessage(raw)}
		if raw == "" {
			doc.Config = nil
		}
		checkMarshalState(t, doc)
	}
	checkMarshalState(t, &wire.StateDoc{Config: json.RawMessage{}})
}

// checkMsg is checkState for an init pipe message.
func checkMsg(t *testing.T, data []byte) bool {
	t.Helper()
	var want, got wire.Msg
	err := json.Unmarshal(data, &want)
	ok := UnmarshalMsg(data, &got)
	if !ok && got != (wire.Msg{}) {
		t.Fatalf("UnmarshalMsg gave up on %q but changed its argument: %#v", data, got)
	}
	if ok && (err != nil || got != want) {
		t.Fatalf("UnmarshalMsg of %q: %#v, want %#v (encoding/json: %v)", data, got, want, err)
	}
	if err == nil {
		w, _ := json.Marshal(&want)
		if g, ok := MarshalMsg(&want); !ok || !bytes.Equal(g, w) {
			t.Fatalf("MarshalMsg: %s, want %s", g, w)
		}
	}
	return ok
}

// checkStore is checkState for the image store's records.
func checkStore(t *testing.T, data []byte) int {
	t.Helper()
	took := 0
	for _, mk := range []func() any{func() any { return new(wire.LayerMeta) }, func() any { return new(wire.ImageRefs) }} {
		want, got := mk(), mk()
		err := json.Unmarshal(data, want)
		if !UnmarshalStore(data, got) {
			if !reflect.DeepEqual(got, mk()) {
				t.Fatalf("UnmarshalStore(%T) gave up on %q but changed its argument", got, data)
			}
			continue
		}
		took++
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("UnmarshalStore(%T) of %q: %#v, want %#v (encoding/json: %v)", got, data, got, want, err)
		}
	}
	return took
}

var storeSeeds = []string{
	"{\n  \"implicit\": null\n}", `{"implicit":["usr","usr/share"]}`, `{"implicit":[]}`,
	"{\n  \"manifest\": \"sha256:ab\",\n  \"config\": \"sha256:cd\",\n  \"refs\": [\n    \"/tmp/bb:bb\",\n    \"/a:b<\"\n  ],\n  \"diffIDs\": [],\n  \"size\": 5,\n  \"stored\": \"2026-12-06T21:00:00Z\"\n}",
	`{"Refs":["x"]}`, `{"refs":"x"}`, `{"implicit":[1]}`,
}

// The store's records as berth writes them take the fast path, with encoding/json's results.
func TestStoreDocs(t *testing.T) {
	for i, s := range storeSeeds {
		if took := checkStore(t, []byte(s)); i < 4 && took != 2 {
			t.Errorf("the fast path took %s as %d of the two records", s, took)
		}
	}
}

var msgSeeds = []string{
	`{"type":"pid","pid":4242}`, `{"type":"ready"}`, `{"type":"handedOver"}`, `{"type":"maps"}`,
	`{"type":"step","step":"rootfs.pivotRoot","msg":"pivot_root \"/a\" <&>","at":1765000000000000000}`,
	`{"type":"error","msg":"mount: \u00e9\n"}`, `{"type":"seccomp","seccompFd":7}`,
	`{"type":"step","at":-1,"where":"x.go:1","dur":5}`, `{"Type":"go"}`, `{"type":1}`, `{"pid":1e3}`,
}

// The messages the C stage and berth write take the fast path, with encoding/json's results.
func TestMsg(t *testing.T) {
	for i, s := range msgSeeds {
		if took := checkMsg(t, []byte(s)); i < 8 && !took {
			t.Errorf("the fast path gave up on %s", s)
		}
	}
}

// FuzzState: arbitrary bytes as state.json, an init pipe message and the store's records, the fast path against
// encoding/json both ways; the input also as the raw config of a document to encode.
func FuzzState(f *testing.F) {
	for _, s := range msgSeeds {
		f.Add([]byte(s))
	}
	for _, s := range stateSeeds {
		f.Add([]byte(s))
	}
	for _, data := range fixtures(f) {
		f.Add(data)
	}
	for _, s := range storeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkState(t, data)
		checkMsg(t, data)
		checkStore(t, data)
		str := string(data)
		for _, v := range []any{&wire.StoreInfo{Marks: str, GIDMap: str}, &wire.ContainerUse{Ref: str, DiffIDs: []oci.Digest{oci.Digest(str)}}} {
			want, _ := json.MarshalIndent(v, "", "  ")
			if got, ok := MarshalStoreIndent(v); !ok || !bytes.Equal(got, want) {
				t.Fatalf("MarshalStoreIndent(%#v):\n got %s\nwant %s", v, got, want)
			}
		}
		checkMarshalState(t, &wire.StateDoc{StateFields: wire.StateFields{ID: string(data)}, Config: json.RawMessage(data)})
	})
}
