// Package image reads OCI images (image layouts, oci-archive and docker-archive tarballs),
// applies their layers into a content-addressed store shared by every container, and prepares
// overlay root filesystems and runtime configs for `berth run --image`.
//
// Every blob is verified against its size and digest while it is read, and every layer against
// its diffID before it is trusted: the store is keyed by diffID, so a layer directory that
// exists under its final name holds exactly what the image says.
package image

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/berth-project/berth/internal/explain"
	"github.com/berth-project/berth/internal/oci"
	"github.com/berth-project/berth/internal/rawfile"
	"github.com/berth-project/berth/internal/specjson"
)

// Media types of Docker's image manifest schema 2, read as their OCI counterparts.
const (
	DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	DockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	DockerConfig       = "application/vnd.docker.container.image.v1+json"
	DockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	DockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	dockerLayerTar     = "application/vnd.docker.image.rootfs.diff.tar" // docker-archive's layer.tar
)

// maxJSON bounds the manifests, indexes and configs read into memory.
const maxJSON = 32 << 20

// Platform selects one manifest of a multi-platform index.
type Platform struct{ OS, Architecture, Variant string }

// DefaultPlatform is the host's: linux and the architecture berth was built for.
func DefaultPlatform() Platform {
	return Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// ParsePlatform reads "os/arch[/variant]".
func ParsePlatform(s string) (Platform, error) {
	p := strings.Split(s, "/")
	if len(p) < 2 || len(p) > 3 || p[0] == "" || p[1] == "" {
		return Platform{}, fmt.Errorf("platform %q: want os/arch[/variant]", s)
	}
	pl := Platform{OS: p[0], Architecture: p[1]}
	if len(p) == 3 {
		pl.Variant = p[2]
	}
	return pl, nil
}

func (p Platform) String() string {
	if p.Variant != "" {
		return p.OS + "/" + p.Architecture + "/" + p.Variant
	}
	return p.OS + "/" + p.Architecture
}

func (p Platform) matches(q *oci.Platform) bool {
	if q == nil {
		return true // an entry that does not say is taken to be for any platform
	}
	return q.OS == p.OS && q.Architecture == p.Architecture && (p.Variant == "" || q.Variant == "" || q.Variant == p.Variant)
}

// Image is one resolved image: its manifest, config and layers, all verified.
type Image struct {
	Ref      string // what the user named: LAYOUT[:TAG]
	Layout   string // absolute path of the layout directory or archive
	Tag      string // the tag used, if any
	Manifest oci.Descriptor
	Config   oci.Image
	// ConfigDigest is the config blob's digest (the image ID).
	ConfigDigest oci.Digest
	Layers       []oci.Descriptor
	DiffIDs      []oci.Digest
	src          source
}

// Close releases the layout (an archive's open file).
func (im *Image) Close() error { return im.src.close() }

// OpenLayer returns the verified stream of layer i's blob, as stored (compressed or not):
// reading it to the end checks its size and digest.
func (im *Image) OpenLayer(i int) (io.ReadCloser, error) {
	return im.src.openBlob(im.Layers[i])
}

// SplitRef separates LAYOUT[:TAG]: the layout is the shortest prefix, ending before a colon,
// that exists on disk, so that paths and tags may both hold colons ("a.tar:name:tag").
func SplitRef(ref string) (layout, tag string, err error) {
	if ref == "" {
		return "", "", errors.New("empty image reference (want LAYOUT[:TAG])")
	}
	for i := 0; i < len(ref); i++ {
		if ref[i] != ':' {
			continue
		}
		if _, err := os.Stat(ref[:i]); err == nil {
			return ref[:i], ref[i+1:], nil
		}
	}
	if _, err := os.Stat(ref); err != nil {
		return "", "", fmt.Errorf("image %q: no OCI layout or archive at that path: %w", ref, err)
	}
	return ref, "", nil
}

// Open resolves ref (LAYOUT[:TAG]) to one image for platform: the tag is looked up in the
// layout's index by org.opencontainers.image.ref.name, nested indexes are followed, and the
// manifest for the platform is chosen. The manifest and config are read and verified; the
// layers are verified when OpenLayer's streams are read.
func Open(ref string, platform Platform) (*Image, error) {
	layout, tag, err := SplitRef(ref)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(layout)
	if err != nil {
		return nil, err
	}
	src, err := openSource(abs, tag)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	im, err := resolve(src, tag, platform)
	if err != nil {
		src.close()
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	im.Ref, im.Layout, im.Tag = ref, abs, tag
	if explain.Enabled() {
		what, name := "OCI layout", tag
		if _, ok := src.(*archiveSource); ok {
			what = "archive"
		}
		if name == "" {
			name = "(the only image, or latest)"
		}
		explain.Stepf("image.Open", "%s %s: index.json, tag %s -> manifest %s (%s), config %s; %d layers, diffIDs %s",
			what, abs, name, im.Manifest.Digest, platform, im.ConfigDigest, len(im.Layers), shortDigests(im.DiffIDs))
	}
	return im, nil
}

// shortDigests lists digests by their first 12 hex digits, as `docker images` shows them.
func shortDigests(ds []oci.Digest) string {
	var out []string
	for _, d := range ds {
		e := d.Encoded()
		if len(e) > 12 {
			e = e[:12]
		}
		out = append(out, e)
	}
	return strings.Join(out, " ")
}

func resolve(src source, tag string, platform Platform) (*Image, error) {
	idx, err := src.index()
	if err != nil {
		return nil, err
	}
	desc, err := pickTagged(idx, tag)
	if err != nil {
		return nil, err
	}
	// Follow nested indexes down to the manifest for the platform.
	for depth := 0; ; depth++ {
		if depth > 8 {
			return nil, errors.New("indexes nested more than 8 deep")
		}
		if desc.MediaType == "" {
			// Some writers leave it out of index.json: the blob says what it is.
			var probe struct {
				MediaType string            `json:"mediaType"`
				Manifests []json.RawMessage `json:"manifests"`
			}
			if err := readJSON(src, desc, &probe); err != nil {
				return nil, err
			}
			switch {
			case probe.MediaType != "":
				desc.MediaType = probe.MediaType
			case probe.Manifests != nil:
				desc.MediaType = oci.MediaTypeImageIndex
			default:
				desc.MediaType = oci.MediaTypeImageManifest
			}
		}
		switch desc.MediaType {
		case oci.MediaTypeImageManifest, DockerManifest:
		case oci.MediaTypeImageIndex, DockerManifestList:
			var sub oci.Index
			if err := readJSON(src, desc, &sub); err != nil {
				return nil, err
			}
			if desc, err = pickPlatform(sub.Manifests, platform, desc.Digest.String()); err != nil {
				return nil, err
			}
			continue
		default:
			return nil, fmt.Errorf("%s: media type %q is neither a manifest nor an index", desc.Digest, desc.MediaType)
		}
		break
	}
	var m oci.Manifest
	if err := readJSON(src, desc, &m); err != nil {
		return nil, err
	}
	switch m.Config.MediaType {
	case oci.MediaTypeImageConfig, DockerConfig:
	default:
		return nil, fmt.Errorf("manifest %s: config media type %q is not an image config", desc.Digest, m.Config.MediaType)
	}
	var cfg oci.Image
	if err := readJSON(src, m.Config, &cfg); err != nil {
		return nil, err
	}
	if cfg.OS != "" && cfg.OS != platform.OS || cfg.Architecture != "" && cfg.Architecture != platform.Architecture {
		return nil, fmt.Errorf("image is for %s/%s, not %s (choose another with --platform)", cfg.OS, cfg.Architecture, platform)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("config %s lists %d diff_ids for the manifest's %d layers", m.Config.Digest, len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	for i, l := range m.Layers {
		if err := checkLayerType(l.MediaType); err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		if err := cfg.RootFS.DiffIDs[i].Validate(); err != nil {
			return nil, fmt.Errorf("config %s: diff_id %d: %w", m.Config.Digest, i, err)
		}
	}
	return &Image{Manifest: desc, Config: cfg, ConfigDigest: m.Config.Digest, Layers: m.Layers,
		DiffIDs: cfg.RootFS.DiffIDs, src: src}, nil
}

func checkLayerType(mt string) error {
	switch mt {
	case oci.MediaTypeImageLayer, oci.MediaTypeImageLayerGzip, oci.MediaTypeImageLayerZstd,
		oci.MediaTypeImageLayerNonDistributable, oci.MediaTypeImageLayerNonDistributableGzip, //nolint:staticcheck
		oci.MediaTypeImageLayerNonDistributableZstd, //nolint:staticcheck
		DockerLayer, DockerForeignLayer, dockerLayerTar:
		return nil
	}
	return fmt.Errorf("media type %q is not a layer berth can apply (tar, tar+gzip, tar+zstd)", mt)
}

// refName is the annotation that tags an entry of index.json.
const refName = oci.AnnotationRefName

// pickTagged finds the entry named tag; without a tag, the only image, or "latest".
func pickTagged(idx *oci.Index, tag string) (oci.Descriptor, error) {
	var tags []string
	for _, d := range idx.Manifests {
		if n := d.Annotations[refName]; n != "" {
			tags = append(tags, n)
		}
	}
	sort.Strings(tags)
	if tag == "" {
		if len(idx.Manifests) == 1 {
			return idx.Manifests[0], nil
		}
		tag = "latest"
		if len(idx.Manifests) == 0 {
			return oci.Descriptor{}, errors.New("index.json lists no images")
		}
	}
	for _, d := range idx.Manifests {
		if d.Annotations[refName] == tag {
			return d, nil
		}
	}
	// docker-archive names: "name" means name:latest, and Docker Hub's are stored in full.
	var alts []string
	for _, t := range []string{tag, tag + ":latest"} {
		alts = append(alts, t, "docker.io/"+t, "docker.io/library/"+t)
	}
	for _, alt := range alts {
		for _, d := range idx.Manifests {
			if d.Annotations[refName] == alt {
				return d, nil
			}
		}
	}
	return oci.Descriptor{}, fmt.Errorf("no image tagged %q (tags: %s)", tag, strings.Join(tags, ", "))
}

func pickPlatform(ds []oci.Descriptor, p Platform, index string) (oci.Descriptor, error) {
	var seen []string
	for _, d := range ds {
		if p.matches(d.Platform) {
			return d, nil
		}
		if d.Platform != nil {
			seen = append(seen, Platform{d.Platform.OS, d.Platform.Architecture, d.Platform.Variant}.String())
		}
	}
	return oci.Descriptor{}, fmt.Errorf("index %s has no image for %s (it has: %s)", index, p, strings.Join(seen, ", "))
}

// readJSON reads a small blob whole, verifies it and decodes it.
func readJSON(src source, d oci.Descriptor, v any) error {
	if d.Size > maxJSON {
		return fmt.Errorf("blob %s: %d bytes is too large for a %s", d.Digest, d.Size, d.MediaType)
	}
	r, err := src.openBlob(d)
	if err != nil {
		return err
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := unmarshalJSON(data, v); err != nil {
		return fmt.Errorf("blob %s (%s): %w", d.Digest, d.MediaType, err)
	}
	return nil
}

// unmarshalJSON is json.Unmarshal into a zero value, through specjson's generated decoders for
// the image-spec documents it has them for: encoding/json's reflection on these types, cold
// in each berth process, was most of what opening a layout cost (docs/performance.md).
func unmarshalJSON(data []byte, v any) error {
	if specjson.UnmarshalImage(data, v) {
		return nil
	}
	return json.Unmarshal(data, v)
}

// verifier checks a blob as it streams: too many bytes fail at once, and at EOF the size and
// digest must match. Errors name the blob.
type verifier struct {
	r    io.Reader
	name string
	want oci.Digest
	size int64 // -1: unknown
	n    int64
	h    hash.Hash
	err  error
}

func newVerifier(r io.Reader, name string, want oci.Digest, size int64) (*verifier, error) {
	if err := want.Validate(); err != nil {
		return nil, fmt.Errorf("blob %s: %w", name, err)
	}
	return &verifier{r: r, name: name, want: want, size: size, h: want.Algorithm().Hash()}, nil
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.n += int64(n)
	v.h.Write(p[:n])
	if v.size >= 0 && v.n > v.size {
		v.err = &blobErr{fmt.Sprintf("blob %s: larger than the %d bytes its descriptor says", v.name, v.size)}
		return 0, v.err
	}
	if err == io.EOF {
		if v.size >= 0 && v.n != v.size {
			v.err = &blobErr{fmt.Sprintf("blob %s: truncated: %d bytes, its descriptor says %d", v.name, v.n, v.size)}
			return n, v.err
		}
		if got := oci.NewDigest(v.want.Algorithm(), v.h); got != v.want {
			v.err = &blobErr{fmt.Sprintf("blob %s: digest mismatch: its content hashes to %s", v.name, got)}
			return n, v.err
		}
		v.err = io.EOF
	} else if err != nil {
		v.err = fmt.Errorf("blob %s: %w", v.name, err)
		return n, v.err
	}
	return n, err
}

// blobErr is a blob that is not what its descriptor says.
type blobErr struct{ msg string }

func (e *blobErr) Error() string { return e.msg }

type readCloser struct {
	io.Reader
	io.Closer
}

// source is where blobs come from: a layout directory or an archive.
type source interface {
	index() (*oci.Index, error)
	openBlob(d oci.Descriptor) (io.ReadCloser, error)
	close() error
}

// openSource recognises a layout directory, an oci-archive or a docker-archive.
func openSource(p, tag string) (source, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		if _, err := os.Stat(filepath.Join(p, "oci-layout")); err != nil {
			return nil, fmt.Errorf("not an OCI image layout (no oci-layout file): %w", err)
		}
		return dirSource{p}, nil
	}
	return openArchive(p)
}

type dirSource struct{ dir string }

func blobPath(d oci.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", err
	}
	return path.Join("blobs", d.Algorithm().String(), d.Encoded()), nil
}

func (s dirSource) index() (*oci.Index, error) {
	data, err := rawfile.ReadFile(filepath.Join(s.dir, "index.json"))
	if err != nil {
		return nil, err
	}
	var idx oci.Index
	if err := unmarshalJSON(data, &idx); err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	return &idx, nil
}

func (s dirSource) openBlob(d oci.Descriptor) (io.ReadCloser, error) {
	p, err := blobPath(d.Digest)
	if err != nil {
		return nil, fmt.Errorf("blob %q: %w", d.Digest, err)
	}
	f, err := rawfile.Open(filepath.Join(s.dir, p), os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	v, err := newVerifier(f, d.Digest.String(), d.Digest, d.Size)
	if err != nil {
		f.Close()
		return nil, err
	}
	return readCloser{v, f}, nil
}

func (dirSource) close() error { return nil }

// archiveSource reads an uncompressed tarball in place: one pass over its headers records
// where each file's bytes are, and blobs are then read as sections of the file.
type archiveSource struct {
	f       *os.File
	entries map[string]tarEntry
	idx     *oci.Index
	// docker-archive: blobs by digest (config and layers) mapped to their paths.
	byDigest map[oci.Digest]string
	synth    map[oci.Digest][]byte // its manifests, made up from manifest.json
}

type tarEntry struct{ off, size int64 }

func openArchive(p string) (source, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err == nil && (magic[0] == 0x1f && magic[1] == 0x8b || magic == [4]byte{0x28, 0xb5, 0x2f, 0xfd}) {
		// A compressed archive cannot be read in place: decompress it into an unnamed
		// temporary file first.
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
		tmp, err := decompressedCopy(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("decompressing the archive: %w", err)
		}
		f = tmp
	}
	s := &archiveSource{f: f, entries: map[string]tarEntry{}}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("reading archive: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		off, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			f.Close()
			return nil, err
		}
		s.entries[path.Clean(strings.TrimPrefix(h.Name, "./"))] = tarEntry{off, h.Size}
	}
	switch {
	case s.has("index.json"):
		// oci-archive (and docker save since 25, which writes an OCI layout too)
	case s.has("manifest.json"):
		if err := s.dockerIndex(); err != nil {
			f.Close()
			return nil, err
		}
	default:
		f.Close()
		return nil, errors.New("neither an OCI layout (index.json) nor a docker-archive (manifest.json)")
	}
	return s, nil
}

func (s *archiveSource) has(name string) bool { _, ok := s.entries[name]; return ok }

func (s *archiveSource) section(name string) (*io.SectionReader, error) {
	e, ok := s.entries[path.Clean(name)]
	if !ok {
		return nil, fmt.Errorf("%s: not in the archive", name)
	}
	return io.NewSectionReader(s.f, e.off, e.size), nil
}

func (s *archiveSource) readFile(name string) ([]byte, error) {
	r, err := s.section(name)
	if err != nil {
		return nil, err
	}
	if r.Size() > maxJSON {
		return nil, fmt.Errorf("%s: too large", name)
	}
	return io.ReadAll(r)
}

func (s *archiveSource) index() (*oci.Index, error) {
	if s.idx != nil {
		return s.idx, nil
	}
	data, err := s.readFile("index.json")
	if err != nil {
		return nil, err
	}
	var idx oci.Index
	if err := unmarshalJSON(data, &idx); err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	return &idx, nil
}

func (s *archiveSource) openBlob(d oci.Descriptor) (io.ReadCloser, error) {
	if data, ok := s.synth[d.Digest]; ok {
		return io.NopCloser(strings.NewReader(string(data))), nil
	}
	name, ok := s.byDigest[d.Digest]
	if !ok {
		p, err := blobPath(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("blob %q: %w", d.Digest, err)
		}
		name = p
	}
	r, err := s.section(name)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	size := d.Size
	if d.MediaType == dockerLayerTar {
		size = -1 // docker-archive: known only from the archive, checked through the diffID
	}
	v, err := newVerifier(r, d.Digest.String(), d.Digest, size)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(v), nil
}

func (s *archiveSource) close() error { return s.f.Close() }

// dockerIndex turns a docker-archive's manifest.json into an index of synthetic manifests,
// tagged with RepoTags. Its layer.tar files are uncompressed, so their digests are the
// config's diffIDs; the config's digest is its own hash.
func (s *archiveSource) dockerIndex() error {
	data, err := s.readFile("manifest.json")
	if err != nil {
		return err
	}
	var dm []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(data, &dm); err != nil {
		return fmt.Errorf("manifest.json: %w", err)
	}
	s.byDigest = map[oci.Digest]string{}
	s.synth = map[oci.Digest][]byte{}
	s.idx = &oci.Index{}
	for _, e := range dm {
		cdata, err := s.readFile(e.Config)
		if err != nil {
			return fmt.Errorf("manifest.json: config: %w", err)
		}
		cd := oci.FromBytes(cdata)
		// Named after its digest (blobs/sha256/HEX or HEX.json): that is its identity.
		if base := strings.TrimSuffix(path.Base(e.Config), ".json"); len(base) == 64 && base != cd.Encoded() {
			return fmt.Errorf("blob %s: digest mismatch: its content hashes to %s", e.Config, cd)
		}
		var cfg oci.Image
		if err := json.Unmarshal(cdata, &cfg); err != nil {
			return fmt.Errorf("config %s: %w", e.Config, err)
		}
		if len(cfg.RootFS.DiffIDs) != len(e.Layers) {
			return fmt.Errorf("config %s lists %d diff_ids for %d layers", e.Config, len(cfg.RootFS.DiffIDs), len(e.Layers))
		}
		s.byDigest[cd] = e.Config
		m := oci.Manifest{MediaType: oci.MediaTypeImageManifest, Config: oci.Descriptor{MediaType: oci.MediaTypeImageConfig, Digest: cd, Size: int64(len(cdata))}}
		m.SchemaVersion = 2
		for i, l := range e.Layers {
			d := cfg.RootFS.DiffIDs[i]
			// A layer named after a digest other than its diffID is compressed: verify that.
			if base := path.Base(l); len(base) == 64 && path.Base(path.Dir(l)) == "sha256" {
				d = oci.NewDigestFromEncoded(oci.SHA256, base)
			}
			s.byDigest[d] = l
			m.Layers = append(m.Layers, oci.Descriptor{MediaType: dockerLayerTar, Digest: d, Size: -1})
		}
		mdata, _ := json.Marshal(m)
		md := oci.FromBytes(mdata)
		s.synth[md] = mdata
		desc := oci.Descriptor{MediaType: oci.MediaTypeImageManifest, Digest: md, Size: int64(len(mdata))}
		if len(e.RepoTags) == 0 {
			s.idx.Manifests = append(s.idx.Manifests, desc)
		}
		for _, t := range e.RepoTags {
			d := desc
			d.Annotations = map[string]string{refName: t}
			s.idx.Manifests = append(s.idx.Manifests, d)
		}
	}
	return nil
}

// decompressedCopy writes r, decompressed, to an unlinked file in the temporary directory.
func decompressedCopy(r io.Reader) (*os.File, error) {
	zr, closeFn, err := decompress(r, false)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	f, err := os.CreateTemp("", "berth-archive-")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	if _, err := io.Copy(f, zr); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
