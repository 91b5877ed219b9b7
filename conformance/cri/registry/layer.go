package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"
)

// epoch is the time of every entry, so that a layer's digest depends on its content only.
var epoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// layer collects the entries of one image layer; parents are added as directories.
type layer struct {
	entries map[string]*tar.Header
	data    map[string][]byte
}

func newLayer() *layer {
	return &layer{entries: map[string]*tar.Header{}, data: map[string][]byte{}}
}

func (l *layer) parents(name string) {
	for dir := path.Dir(name); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if _, ok := l.entries[dir]; !ok {
			l.entries[dir] = &tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755}
		}
	}
}

// dir adds a directory with mode (e.g. 01777 for /tmp).
func (l *layer) dir(name string, mode int64) {
	l.parents(name)
	l.entries[name] = &tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode}
}

// file adds a regular file owned by root.
func (l *layer) file(name string, mode int64, data []byte) {
	l.parents(name)
	l.entries[name] = &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data))}
	l.data[name] = data
}

// hostFile adds the content of a file of this machine (symlinks followed).
func (l *layer) hostFile(name string, mode int64, host string) error {
	real, err := filepath.EvalSymlinks(host)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(real)
	if err != nil {
		return err
	}
	l.file(name, mode, b)
	return nil
}

// hardlink adds name as a hard link to target, a file of the same layer. busybox's own image
// links its applets this way, and it matters: a masked path (a bind mount of /dev/null over
// /bin/ls) must hide that one name, not the busybox binary a symlink would lead to.
func (l *layer) hardlink(name, target string) {
	l.parents(name)
	l.entries[name] = &tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o755}
}

func (l *layer) symlink(name, target string) {
	l.parents(name)
	l.entries[name] = &tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}
}

// blob is one content-addressed piece of an image.
type blob struct {
	mediaType string
	digest    string // sha256:<hex>
	size      int64
	diffID    string // layers: digest of the uncompressed tar
	content   []byte
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// rank orders the entries of a layer: directories, files, then links (a hard link must come
// after its target).
func rank(h *tar.Header) int {
	switch h.Typeflag {
	case tar.TypeDir:
		return 0
	case tar.TypeReg:
		return 1
	case tar.TypeSymlink:
		return 2
	}
	return 3
}

// blob writes the layer as a gzip-compressed tar, entries in rank and then name order.
func (l *layer) blob() (*blob, error) {
	names := make([]string, 0, len(l.entries))
	for n := range l.entries {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		ri, rj := rank(l.entries[names[i]]), rank(l.entries[names[j]])
		if ri != rj {
			return ri < rj
		}
		return names[i] < names[j]
	})
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, n := range names {
		h := *l.entries[n]
		h.ModTime, h.Format = epoch, tar.FormatPAX
		h.Uid, h.Gid = 0, 0
		if err := tw.WriteHeader(&h); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", n, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(l.data[n]); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return &blob{
		mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
		digest:    digestOf(gz.Bytes()),
		size:      int64(gz.Len()),
		diffID:    digestOf(raw.Bytes()),
		content:   gz.Bytes(),
	}, nil
}
