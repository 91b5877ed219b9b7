package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/oci"
)

// orderSource serves index.json and then its blobs in the order they are asked for, whatever
// their digest: mutated manifests and configs reach the parsers instead of failing their digest
// check (the verifier has tests of its own).
type orderSource struct {
	idx   []byte
	blobs [][]byte
	n     int
}

func (s *orderSource) index() (*oci.Index, error) {
	var idx oci.Index
	if err := json.Unmarshal(s.idx, &idx); err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	return &idx, nil
}

func (s *orderSource) openBlob(d oci.Descriptor) (io.ReadCloser, error) {
	if s.n >= len(s.blobs) {
		return nil, fmt.Errorf("blob %s: not in the layout", d.Digest)
	}
	s.n++
	return io.NopCloser(strings.NewReader(string(s.blobs[s.n-1]))), nil
}

func (s *orderSource) close() error { return nil }

// A rootfs with the /etc/passwd and /etc/group the image configs' users are looked up in.
func userRoot(t *testing.T) string {
	abs, err := filepath.Abs("testdata/images/rootfs")
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// checkImage: whatever resolve accepts is usable: a manifest, layers of known types matching
// the diff_ids, and a runtime spec from its config (or a one-line error naming the field).
func checkImage(t *testing.T, im *Image, err error) {
	if err != nil {
		if strings.ContainsAny(err.Error(), "\n\r") {
			t.Fatalf("error on more than one line: %q", err)
		}
		return
	}
	if len(im.Layers) != len(im.DiffIDs) {
		t.Fatalf("%d layers, %d diff_ids", len(im.Layers), len(im.DiffIDs))
	}
	for i, l := range im.Layers {
		if checkLayerType(l.MediaType) != nil || im.DiffIDs[i].Validate() != nil {
			t.Fatalf("layer %d accepted: %q %q", i, l.MediaType, im.DiffIDs[i])
		}
	}
	for _, args := range [][]string{nil, {"sh"}} {
		spec, err := RuntimeSpec(im, userRoot(t), args)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("RuntimeSpec: error on more than one line: %q", err)
			}
			continue
		}
		if spec.Process == nil || len(spec.Process.Args) == 0 {
			t.Fatalf("RuntimeSpec gave no process args")
		}
	}
}

func readSeed(f *testing.F, p string) []byte {
	data, err := os.ReadFile(p)
	if err != nil {
		f.Fatal(err)
	}
	return data
}

// FuzzResolve: index.json, then the blobs resolve asks for (a nested index, a manifest, a
// config), each mutated. Seeds: the layouts umoci and skopeo wrote (testdata/images).
func FuzzResolve(f *testing.F) {
	for _, l := range []string{"umoci", "skopeo-zstd"} {
		d := filepath.Join("testdata/images", l)
		idx, m, c := readSeed(f, d+"/index.json"), readSeed(f, d+"/manifest.json"), readSeed(f, d+"/config.json")
		f.Add(idx, m, c, []byte{}, "")
		f.Add(idx, m, c, []byte{}, "t")
		f.Add(idx, m, readSeed(f, "testdata/images/docker-shape-config.json"), []byte{}, "")
		// A nested index (as skopeo and docker buildx write for several platforms), written
		// with image-spec's own types.
		nested, _ := json.Marshal(v1.Index{MediaType: v1.MediaTypeImageIndex, Manifests: []v1.Descriptor{
			{MediaType: v1.MediaTypeImageManifest, Digest: digest.FromBytes(m), Size: int64(len(m)), Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}},
			{MediaType: v1.MediaTypeImageManifest, Digest: digest.FromBytes(m), Size: int64(len(m)), Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}},
		}})
		top, _ := json.Marshal(v1.Index{Manifests: []v1.Descriptor{{Digest: digest.FromBytes(nested), Size: int64(len(nested))}}})
		f.Add(top, nested, m, c, "")
	}
	f.Fuzz(func(t *testing.T, idx, b1, b2, b3 []byte, tag string) {
		src := &orderSource{idx: idx, blobs: [][]byte{b1, b2, b3}}
		for _, p := range []Platform{DefaultPlatform(), {OS: "linux", Architecture: "arm64", Variant: "v8"}} {
			src.n = 0
			im, err := resolve(src, tag, p)
			checkImage(t, im, err)
		}
	})
}

// FuzzArchive: docker-archive and oci-archive tarballs, read in place (seed: skopeo's
// docker-archive of the umoci image).
func FuzzArchive(f *testing.F) {
	f.Add(readSeed(f, "testdata/images/skopeo-docker-archive.tar"), "")
	f.Add(readSeed(f, "testdata/images/skopeo-docker-archive.tar"), "fz/img:t")
	f.Fuzz(func(t *testing.T, data []byte, tag string) {
		tmp, err := os.CreateTemp("", "berth-fuzz-archive-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.Remove(tmp.Name())
		tmp.Write(data)
		tmp.Close()
		src, err := openArchive(tmp.Name())
		if err != nil {
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error on more than one line: %q", err)
			}
			return
		}
		defer src.close()
		im, err := resolve(src, tag, DefaultPlatform())
		checkImage(t, im, err)
		if err != nil {
			return
		}
		for i := range im.Layers {
			r, err := im.OpenLayer(i)
			if err != nil {
				continue
			}
			_, err = io.Copy(io.Discard, r)
			r.Close()
			var be *blobErr
			if err != nil && !errors.As(err, &be) && strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("layer %d: %q", i, err)
			}
		}
	})
}
