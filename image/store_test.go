package image

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/berth-project/berth/internal/oci"
)

// A container's image.json is written through specjson: the bytes must be
// json.MarshalIndent's, whatever the ref holds.
func TestContainerUseMarshal(t *testing.T) {
	d1 := oci.Digest("sha256:" + string(bytes.Repeat([]byte("a"), 64)))
	d2 := oci.Digest("sha512:<&>")
	for _, u := range []containerUse{
		{Ref: "bb:bb", Manifest: d1, DiffIDs: []oci.Digest{d1, d2}},
		{Ref: "/tmp/a layout/x:y", Manifest: d1, DiffIDs: []oci.Digest{d1}},
		{Ref: "\"quoted\" \\ <html> & \u2028 \x01 \xff é", Manifest: d2, DiffIDs: []oci.Digest{}},
		{},
	} {
		want, err := json.MarshalIndent(u, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := marshalIndented(&u); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%+v:\n got %s\nwant %s", u, got, want)
		}
	}
}

// store.json's usual check compares bytes with what writeJSONAtomic writes: both are
// marshalIndented, which must be json.MarshalIndent's output.
func TestStoreInfoMarshal(t *testing.T) {
	for _, i := range []storeInfo{
		{Marks: "trusted"},
		{Marks: "user", UIDMap: "0 100000 65536", GIDMap: "0 100000 65536,65536 1000 1"},
		{Marks: "user", UIDMap: "0 1000 1"},
		{Marks: "user", GIDMap: "<&>"},
		{},
	} {
		want, err := json.MarshalIndent(i, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := marshalIndented(&i); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%+v:\n got %s\nwant %s", i, got, want)
		}
	}
}
