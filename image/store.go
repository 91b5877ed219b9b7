package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
	"github.com/berth-project/berth/internal/oci"
	"github.com/berth-project/berth/internal/rawfile"
	"github.com/berth-project/berth/internal/specjson"
	"github.com/berth-project/berth/internal/wire"
)

// Store is the shared layer store under berth's root:
//
//	<root>/.images/store.json            how its layers were written (storeinfo.go)
//	<root>/.images/lock                  flock: shared while layers are added or used, exclusive for rm/prune
//	<root>/.images/layers/<diffID-hex>/  one applied layer (overlayfs whiteouts), never modified
//	<root>/.images/layers/.tmp-*         a layer being applied (renamed into place when verified)
//	<root>/.images/meta/<diffID-hex>.json the directories that layer made without an entry for them
//	<root>/.images/locks/<diffID-hex>    flock held while that layer is applied
//	<root>/.images/images/<hex>.json     a record per image stored (by manifest digest)
//	<root>/.images/containers/<id>/      a container's bundle: config.json, rootfs (overlay), upper, work
type Store struct {
	Dir  string
	lock *os.File
}

// StoreDir is where the store lives under berth's root for root (and for an ordinary user
// who gives --root; otherwise an ordinary user's store is under $XDG_DATA_HOME/berth).
func StoreDir(root string) string { return filepath.Join(root, ".images") }

// OpenStore opens (creating) the store in dir.
// The lock is made last: a store that has it has its directories.
func OpenStore(dir string) (*Store, error) {
	lock := filepath.Join(dir, "lock")
	f, err := rawfile.Open(lock, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		for _, d := range []string{"layers", "meta", "locks", "images", "containers"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
				return nil, fmt.Errorf("image store: %w", err)
			}
		}
		f, err = rawfile.Open(lock, os.O_RDWR|os.O_CREATE, 0o600)
	}
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	return &Store{Dir: dir, lock: f}, nil
}

// Close releases the store (and its lock).
func (s *Store) Close() error { return s.lock.Close() }

func (s *Store) lockShared() error    { return flock(s.lock, unix.LOCK_SH) }
func (s *Store) lockExclusive() error { return flock(s.lock, unix.LOCK_EX) }
func (s *Store) unlock()              { _ = flock(s.lock, unix.LOCK_UN) }

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}

// layerKey is a layer's directory name: the diffID's hex (prefixed by the algorithm unless
// sha256).
func layerKey(d oci.Digest) string {
	if d.Algorithm() == oci.SHA256 {
		return d.Encoded()
	}
	return d.Algorithm().String() + "-" + d.Encoded()
}

// LayerDir is where layer diffID is (or would be) stored.
func (s *Store) LayerDir(d oci.Digest) string {
	return filepath.Join(s.Dir, "layers", layerKey(d))
}

func (s *Store) hasLayer(d oci.Digest) bool {
	_, err := os.Lstat(s.LayerDir(d))
	return err == nil
}

// layerMeta is kept beside each layer in meta/<key>.json.
type layerMeta = wire.LayerMeta

func (s *Store) metaPath(d oci.Digest) string {
	return filepath.Join(s.Dir, "meta", layerKey(d)+".json")
}

func (s *Store) layerMeta(d oci.Digest) layerMeta {
	var m layerMeta
	if data, err := rawfile.ReadFile(s.metaPath(d)); err == nil && !specjson.UnmarshalStore(data, &m) {
		_ = json.Unmarshal(data, &m)
	}
	return m
}

// Progress receives reports while layers are applied; nil means quiet.
type Progress func(layer string, done, total int64, finished bool)

// AddLayers applies every layer of im that the store lacks, distinct layers in parallel, and
// returns how many it applied (0 when all were there: nothing is unpacked twice). The caller
// holds the store lock shared.
func (s *Store) AddLayers(im *Image, progress Progress) (int, error) {
	if err := s.checkInfo(); err != nil {
		return 0, err
	}
	type job struct {
		i   int
		key string
	}
	var jobs []job
	seen := map[string]bool{}
	for i, d := range im.DiffIDs {
		k := layerKey(d)
		if seen[k] {
			continue
		}
		if s.hasLayer(d) {
			explain.Stepf("image.Store.AddLayers", "layer %d %s: found %s in the store, reused", i, d, s.LayerDir(d))
			seen[k] = true
			continue
		}
		explain.Stepf("image.Store.AddLayers", "layer %d %s: not in the store (no %s), to apply", i, d, s.LayerDir(d))
		seen[k] = true
		jobs = append(jobs, job{i, k})
	}
	if len(jobs) == 0 {
		return 0, nil
	}
	// Biggest first: the longest layer starts at once and the small ones fill in around it.
	sort.SliceStable(jobs, func(a, b int) bool { return im.Layers[jobs[a].i].Size > im.Layers[jobs[b].i].Size })
	workers := parallelWorkers()
	if workers > len(jobs) {
		workers = len(jobs)
	}
	explain.Idle() // on a timeline: from here on this goroutine waits for the workers' spans
	var (
		mu      sync.Mutex
		applied int
		errs    []error
		next    = make(chan job)
		wg      sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				did, err := s.addLayer(im, j.i, len(jobs) == 1, progress)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else if did {
					applied++
				}
				mu.Unlock()
			}
		}()
	}
	for _, j := range jobs {
		next <- j
	}
	close(next)
	wg.Wait()
	return applied, errors.Join(errs...)
}

// addLayer applies layer i under its lock, into a temporary directory renamed into place once
// the blob's digest and the diffID are verified. Another berth that got there first wins.
func (s *Store) addLayer(im *Image, i int, ahead bool, progress Progress) (bool, error) {
	d := im.DiffIDs[i]
	key := layerKey(d)
	lf, err := os.OpenFile(filepath.Join(s.Dir, "locks", key), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return false, err
	}
	defer lf.Close()
	if err := flock(lf, unix.LOCK_EX); err != nil {
		return false, err
	}
	if s.hasLayer(d) {
		return false, nil
	}
	layers := filepath.Join(s.Dir, "layers")
	// Whatever an interrupted apply of this layer left is never trusted: remove it.
	if old, _ := filepath.Glob(filepath.Join(layers, ".tmp-"+key+"-*")); len(old) > 0 {
		for _, o := range old {
			_ = os.RemoveAll(o)
		}
	}
	tmp, err := os.MkdirTemp(layers, ".tmp-"+key+"-")
	if err != nil {
		return false, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(tmp)
		}
	}()
	fd, err := unix.Open(tmp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	if err := unix.Fchmod(fd, 0o755); err != nil {
		return false, err
	}
	blob, err := im.OpenLayer(i)
	if err != nil {
		return false, err
	}
	defer blob.Close()
	desc := im.Layers[i]
	// Layers are applied in parallel: on a timeline each is a span of its own.
	defer explain.Spanf("image.Store.addLayer", "flock locks/%s; apply blob %s (%s, %d bytes) into %s, checking its digest and diffID; then rename to %s",
		key, desc.Digest, desc.MediaType, desc.Size, tmp, s.LayerDir(d))()
	r, stop := watch(blob, desc, progress)
	a := newApplier(fd, overlayMode)
	defer a.close()
	err = applyLayer(r, desc.Digest.String(), d, fd, overlayMode, a, ahead)
	stop()
	if err != nil {
		return false, err
	}
	// Written before the layer is in place: a stored layer always has its list.
	var implicit []string
	for p := range a.implicit {
		implicit = append(implicit, p)
	}
	sort.Strings(implicit)
	if err := writeJSONAtomic(s.metaPath(d), layerMeta{Implicit: implicit}); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, s.LayerDir(d)); err != nil {
		return false, err
	}
	ok = true
	return true, nil
}

// watch reports r's progress every 200ms until stop is called.
func watch(r io.Reader, desc oci.Descriptor, progress Progress) (io.Reader, func()) {
	if progress == nil {
		return r, func() {}
	}
	cr := &countingReader{r: r}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				progress(desc.Digest.String(), cr.count(), desc.Size, true)
				return
			case <-t.C:
				progress(desc.Digest.String(), cr.count(), desc.Size, false)
			}
		}
	}()
	return cr, func() { close(done); <-finished }
}

// Record is what the store keeps about an image it holds layers for.
type Record struct {
	Manifest oci.Digest   `json:"manifest"`
	Config   oci.Digest   `json:"config"`
	Refs     []string     `json:"refs"` // LAYOUT[:TAG] it was used as, absolute
	DiffIDs  []oci.Digest `json:"diffIDs"`
	Size     int64        `json:"size"` // compressed layer bytes
	Created  string       `json:"created,omitempty"`
	Stored   time.Time    `json:"stored"`
}

func (s *Store) recordPath(m oci.Digest) string {
	return filepath.Join(s.Dir, "images", m.Encoded()+".json")
}

// Add stores im: its layers and its record. It returns how many layers it applied.
func (s *Store) Add(im *Image, progress Progress) (int, error) {
	if err := s.lockShared(); err != nil {
		return 0, err
	}
	defer s.unlock()
	n, err := s.AddLayers(im, progress)
	if err != nil {
		return n, err
	}
	return n, s.writeRecord(im)
}

// writeRecord records im under its ref (LAYOUT[:TAG], absolute), keeping the refs and the
// time of an earlier record of the same manifest. A record that lists the ref already is left
// as it is: every run --image comes here, and its refs alone are read (one field through
// the generated decoder) before anything is rewritten.
func (s *Store) writeRecord(im *Image) error {
	ref := im.Layout
	if im.Tag != "" {
		ref += ":" + im.Tag
	}
	p := s.recordPath(im.Manifest.Digest)
	data, err := rawfile.ReadFile(p)
	if err == nil {
		var listed wire.ImageRefs
		if (specjson.UnmarshalStore(data, &listed) || json.Unmarshal(data, &listed) == nil) && slices.Contains(listed.Refs, ref) {
			return nil
		}
	}
	rec := Record{Manifest: im.Manifest.Digest, Config: im.ConfigDigest, DiffIDs: im.DiffIDs, Stored: time.Now().UTC()}
	for _, l := range im.Layers {
		if l.Size > 0 {
			rec.Size += l.Size
		}
	}
	if im.Config.Created != nil {
		rec.Created = im.Config.Created.UTC().Format(time.RFC3339)
	}
	if err == nil {
		if old, err := decodeRecord(p, data); err == nil {
			rec.Refs = old.Refs
			rec.Stored = old.Stored
		}
	}
	if !slices.Contains(rec.Refs, ref) {
		rec.Refs = append(rec.Refs, ref)
	}
	return writeJSONAtomic(p, rec)
}

func (s *Store) readRecord(p string) (*Record, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return decodeRecord(p, data)
}

func decodeRecord(p string, data []byte) (*Record, error) {
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return &r, nil
}

// writeJSONAtomic writes v to p through a temporary file renamed over it: a reader sees the
// old file or the new one, whole.
func writeJSONAtomic(p string, v any) error {
	data, err := marshalIndented(v)
	if err != nil {
		return err
	}
	tmp := p + ".tmp" + fmt.Sprint(os.Getpid())
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// Records lists the images stored.
func (s *Store) Records() ([]*Record, error) {
	ps, err := filepath.Glob(filepath.Join(s.Dir, "images", "*.json"))
	if err != nil {
		return nil, err
	}
	var out []*Record
	for _, p := range ps {
		if r, err := s.readRecord(p); err == nil {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Stored.Before(out[j].Stored) })
	return out, nil
}

// containerUse is what a container made from an image keeps in its directory (image.json).
type containerUse = wire.ContainerUse

// marshalIndented is json.MarshalIndent(v, "", "  ") for the store's small records that run
// --image writes, without reflection (specjson; encoding/json if it gives up).
func marshalIndented(v any) ([]byte, error) {
	if data, ok := specjson.MarshalStoreIndent(v); ok {
		return data, nil
	}
	return json.MarshalIndent(v, "", "  ")
}

// ContainerUses maps each container made from an image to the manifest it uses.
func (s *Store) ContainerUses() (map[string]containerUse, error) {
	ents, err := os.ReadDir(filepath.Join(s.Dir, "containers"))
	if err != nil {
		return nil, err
	}
	out := map[string]containerUse{}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(s.Dir, "containers", e.Name(), "image.json"))
		if err != nil {
			continue // left by a create killed before it wrote this (it is made under the store lock)
		}
		var u containerUse
		if json.Unmarshal(data, &u) == nil {
			out[e.Name()] = u
		}
	}
	return out, nil
}

// Remove deletes the record matching what (a ref as given to ls, a layout path, or a
// manifest digest or its prefix) and then prunes the layers nothing uses any more. It refuses
// while a container uses the image.
func (s *Store) Remove(what string) ([]string, error) {
	if err := s.lockExclusive(); err != nil {
		return nil, err
	}
	defer s.unlock()
	recs, err := s.Records()
	if err != nil {
		return nil, err
	}
	uses, err := s.ContainerUses()
	if err != nil {
		return nil, err
	}
	var match []*Record
	for _, r := range recs {
		if matchRecord(r, what) {
			match = append(match, r)
		}
	}
	if len(match) == 0 {
		return nil, fmt.Errorf("no stored image matches %q (see berth image ls)", what)
	}
	if len(match) > 1 {
		return nil, fmt.Errorf("%q matches %d images: name one by its digest", what, len(match))
	}
	r := match[0]
	for id, u := range uses {
		if u.Manifest == r.Manifest {
			return nil, fmt.Errorf("image %s is used by container %s: delete it first", r.Manifest, id)
		}
	}
	if err := os.Remove(s.recordPath(r.Manifest)); err != nil {
		return nil, err
	}
	removed, err := s.pruneLocked()
	return append([]string{"image " + r.Manifest.String()}, removed...), err
}

func matchRecord(r *Record, what string) bool {
	if w := strings.TrimPrefix(what, "sha256:"); len(w) >= 6 && strings.HasPrefix(r.Manifest.Encoded(), w) {
		return true
	}
	abs := what
	if l, tag, err := SplitRef(what); err == nil {
		if a, err := filepath.Abs(l); err == nil {
			abs = a
			if tag != "" {
				abs += ":" + tag
			}
		}
	}
	for _, ref := range r.Refs {
		if ref == what || ref == abs {
			return true
		}
	}
	return false
}

// Prune removes the layers no stored image and no container uses, whatever interrupted
// applies left, and the directories of containers whose create died before it finished.
func (s *Store) Prune(root string) ([]string, error) {
	if err := s.lockExclusive(); err != nil {
		return nil, err
	}
	defer s.unlock()
	s.releaseAbandoned(root)
	return s.pruneLocked()
}

func (s *Store) pruneLocked() ([]string, error) {
	used := map[string]bool{}
	recs, err := s.Records()
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		for _, d := range r.DiffIDs {
			used[layerKey(d)] = true
		}
	}
	uses, err := s.ContainerUses()
	if err != nil {
		return nil, err
	}
	for _, u := range uses {
		for _, d := range u.DiffIDs {
			used[layerKey(d)] = true
		}
	}
	layers := filepath.Join(s.Dir, "layers")
	ents, err := os.ReadDir(layers)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		n := e.Name()
		if used[n] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(layers, n)); err != nil {
			errs = append(errs, err)
			continue
		}
		_ = os.Remove(filepath.Join(s.Dir, "meta", n+".json"))
		if !strings.HasPrefix(n, ".tmp-") {
			if !strings.Contains(n, "-") {
				n = "sha256:" + n
			}
			removed = append(removed, "layer "+n)
		}
	}
	// No apply runs (the store is locked exclusively): no one holds or waits on these.
	locks, _ := os.ReadDir(filepath.Join(s.Dir, "locks"))
	for _, l := range locks {
		if !used[l.Name()] {
			_ = os.Remove(filepath.Join(s.Dir, "locks", l.Name()))
		}
	}
	return removed, errors.Join(errs...)
}

// releaseAbandoned releases container directories whose create died before the container
// existed (no state directory under root, and no berth holding its lock).
func (s *Store) releaseAbandoned(root string) {
	ents, _ := os.ReadDir(filepath.Join(s.Dir, "containers"))
	for _, e := range ents {
		if dir := filepath.Join(s.Dir, "containers", e.Name()); abandoned(root, dir, e.Name()) {
			_ = ReleaseBundle(dir)
		}
	}
}

func abandoned(root, dir, id string) bool {
	if _, err := os.Lstat(filepath.Join(root, id)); err == nil {
		return false
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	defer f.Close()
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil
}

// DiskUsage sums the bytes of the layer directories for diffIDs.
func (s *Store) DiskUsage(ds []oci.Digest) int64 {
	var n int64
	for _, d := range ds {
		_ = filepath.WalkDir(s.LayerDir(d), func(_ string, e os.DirEntry, err error) error {
			if err == nil && e.Type().IsRegular() {
				if fi, err := e.Info(); err == nil {
					n += fi.Size()
				}
			}
			return nil
		})
	}
	return n
}
