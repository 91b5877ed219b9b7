package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/oci"
)

// The sandbox for applying fuzzed layers: a small tmpfs of its own (a layer that writes a lot
// fills it, not the disk), laid out as
//
//	outside/secret          must stay as it is (content, mode, one link)
//	outside/dir/
//	a/b/layer/              the layer directory: everything must land below it
//
// In mergeMode the layer directory starts with lower entries that point outside: symlinks
// (relative and absolute) to outside/, which no entry may go through.
var (
	sandboxMu  sync.Mutex
	sandboxDir string
)

func applySandbox(t *testing.T) string {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mknod, chown, trusted xattrs)")
	}
	sandboxMu.Lock()
	defer sandboxMu.Unlock()
	if sandboxDir != "" {
		return sandboxDir
	}
	sweepSandboxes()
	dir, err := os.MkdirTemp("", fmt.Sprintf("berth-fuzz-apply-%d-", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64m,nr_inodes=20000,mode=0755"); err != nil {
		os.Remove(dir)
		t.Fatalf("tmpfs for the sandbox: %v", err)
	}
	sandboxDir = dir
	return sandboxDir
}

// sweepSandboxes removes the sandboxes of fuzzing processes that are gone: a worker is killed
// when fuzzing ends and cannot clean up after itself.
func sweepSandboxes() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "berth-fuzz-apply-*"))
	for _, d := range dirs {
		pid, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(d), "berth-fuzz-apply-"), "-")
		if n, err := strconv.Atoi(pid); err == nil && n != os.Getpid() && unix.Kill(n, 0) == unix.ESRCH {
			removeSandbox(d)
		}
	}
}

func removeSandbox(d string) {
	_ = unix.Unmount(d, unix.MNT_DETACH)
	_ = os.Remove(d)
}

// cleanupSandbox is for the process that ran the seeds (go test without -fuzz).
func cleanupSandbox() {
	sandboxMu.Lock()
	defer sandboxMu.Unlock()
	if sandboxDir != "" {
		removeSandbox(sandboxDir)
		sandboxDir = ""
	}
	sweepSandboxes()
}

const secret = "the host's secret\n"

func resetSandbox(t *testing.T, root string, mode applyMode) string {
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(root, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	layer := filepath.Join(root, "a", "b", "layer")
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(layer, 0o755))
	must(os.MkdirAll(filepath.Join(root, "outside", "dir"), 0o755))
	must(os.WriteFile(filepath.Join(root, "outside", "secret"), []byte(secret), 0o600))
	if mode == mergeMode {
		must(os.Symlink("../../../outside", filepath.Join(layer, "up")))
		must(os.Symlink(filepath.Join(root, "outside"), filepath.Join(layer, "abs")))
		must(os.Symlink("../../../outside/secret", filepath.Join(layer, "sec")))
		must(os.MkdirAll(filepath.Join(layer, "etc"), 0o755))
		must(os.Symlink("../up/dir", filepath.Join(layer, "etc", "deep")))
		must(os.WriteFile(filepath.Join(layer, "etc", "passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644))
	}
	return layer
}

// checkSandbox walks the whole tmpfs: below the layer directory anything goes; elsewhere only
// what resetSandbox made, unchanged.
func checkSandbox(t *testing.T, root string) {
	want := map[string]bool{"a": true, "a/b": true, "a/b/layer": true, "outside": true, "outside/dir": true, "outside/secret": true}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." || rel == "a/b/layer" {
			if rel == "a/b/layer" {
				return filepath.SkipDir
			}
			return nil
		}
		if !want[rel] {
			t.Fatalf("%s was made outside the layer directory", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	sp := filepath.Join(root, "outside", "secret")
	if err := unix.Lstat(sp, &st); err != nil {
		t.Fatalf("outside/secret: %v", err)
	}
	data, _ := os.ReadFile(sp)
	if string(data) != secret || st.Mode != unix.S_IFREG|0o600 || st.Nlink != 1 || st.Uid != 0 || st.Gid != 0 {
		t.Fatalf("outside/secret changed: %q mode %o links %d owner %d:%d", data, st.Mode, st.Nlink, st.Uid, st.Gid)
	}
	for _, d := range []string{"outside", "outside/dir", "a", "a/b"} {
		if err := unix.Lstat(filepath.Join(root, d), &st); err != nil || st.Mode != unix.S_IFDIR|0o755 || st.Uid != 0 {
			t.Fatalf("%s changed: mode %o owner %d, %v", d, st.Mode, st.Uid, err)
		}
	}
	var xs [256]byte
	for _, d := range []string{"outside", "outside/dir", "outside/secret", "a/b"} {
		if n, _ := unix.Llistxattr(filepath.Join(root, d), xs[:]); n > 0 {
			t.Fatalf("%s got xattrs: %q", d, xs[:n])
		}
	}
}

// applyFuzzed applies blob (a layer as stored: tar, gzip or zstd) in both modes and checks the
// sandbox after each. Errors are fine; escapes, panics and hangs are not.
func applyFuzzed(t *testing.T, blob []byte) {
	root := applySandbox(t)
	pre := time.AfterFunc(20*time.Second, func() { panic(fmt.Sprintf("decompressing hung on %q", blob)) })
	raw := blob
	if zr, err := pgzip.NewReader(bytes.NewReader(blob)); err == nil {
		raw, _ = io.ReadAll(io.LimitReader(zr, 32<<20))
	} else if zd, err := zstd.NewReader(bytes.NewReader(blob), zstd.WithDecoderMaxMemory(32<<20)); err == nil {
		if out, err := io.ReadAll(io.LimitReader(zd, 32<<20)); err == nil {
			raw = out
		}
		zd.Close()
	}
	pre.Stop()
	for _, mode := range []applyMode{overlayMode, mergeMode} {
		layer := resetSandbox(t, root, mode)
		fd, err := unix.Open(layer, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		d := oci.FromBytes(blob)
		v, _ := newVerifier(bytes.NewReader(blob), d.String(), d, int64(len(blob)))
		timer := time.AfterFunc(20*time.Second, func() { panic(fmt.Sprintf("applyLayer hung on %q", blob)) })
		err = applyLayer(v, d.String(), oci.FromBytes(raw), fd, mode, nil, mode == overlayMode)
		timer.Stop()
		unix.Close(fd)
		if err != nil && strings.ContainsAny(err.Error(), "\n\r") {
			t.Fatalf("error on more than one line: %q", err)
		}
		checkSandbox(t, root)
	}
}

// FuzzApplyLayer: layer blobs as bytes (seeds: real layers in testdata/layers, made with umoci
// and skopeo from the runc suite's busybox and by the builders of the image tests).
func FuzzApplyLayer(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/layers/*")
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Cleanup(cleanupSandbox)
	f.Fuzz(func(t *testing.T, blob []byte) {
		applyFuzzed(t, blob)
		if fixed := fixChecksums(blob); fixed != nil {
			applyFuzzed(t, fixed)
		}
	})
}

// fixChecksums returns a copy of an uncompressed tar stream with each header's checksum made
// right, so that mutations of names, sizes, types and links reach the applier rather than
// stopping at the tar reader's checksum test; nil when the stream is compressed.
func fixChecksums(blob []byte) []byte {
	if len(blob) < 512 || blob[0] == 0x1f || blob[0] == 0x28 {
		return nil
	}
	out := append([]byte{}, blob...)
	for off := 0; off+512 <= len(out); {
		h := out[off : off+512]
		if bytes.Count(h, []byte{0}) == 512 {
			off += 512
			continue
		}
		copy(h[148:156], "        ")
		sum := 0
		for _, c := range h {
			sum += int(c)
		}
		copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
		size, err := strconv.ParseInt(strings.Trim(string(h[124:136]), " \x00"), 8, 64)
		if err != nil || size < 0 || size > int64(len(out)) {
			break
		}
		if h[156] == tar.TypeSymlink || h[156] == tar.TypeLink || h[156] == tar.TypeDir || h[156] == tar.TypeChar || h[156] == tar.TypeBlock || h[156] == tar.TypeFifo {
			size = 0
		}
		off += 512 + int((size+511)/512*512)
	}
	return out
}

// FuzzApplyEntries: layers described one entry a line, so that mutations make well-formed tar
// headers (a tar header's checksum defeats byte mutations):
//
//	TYPE|NAME|LINKNAME|MODE|DATA|EXTRA
//
// TYPE is the typeflag (0 file, 1 hard link, 2 symlink, 3 char, 4 block, 5 dir, 6 fifo, S
// sparse...); MODE octal; DATA the file's bytes, or #N to claim N bytes and write what DATA
// holds after the #N (a truncated entry); EXTRA is MAJOR:MINOR for devices, UID:GID, or
// xattr NAME=VALUE. A line "trunc N" cuts the tar stream after N bytes.
func FuzzApplyEntries(f *testing.F) {
	for _, s := range []string{
		"5|etc/|||\n0|etc/passwd||644|root:x:0:0\n2|etc/link|passwd|777|\n1|etc/hard|etc/passwd|644|\n",
		"5|a/|||\n0|a/.wh.b||0|\n0|a/.wh..wh..opq||0|\n0|.wh.c||0|\n",
		"2|a|../../../outside|777|\n0|a/x||644|escaped\n",
		"2|a|/|777|\n5|a/tmp|||\n",
		"1|h|../outside/secret|644|\n0|h||644|overwritten\n",
		"1|h|up/secret|644|\n1|s|sec|644|\n0|up/new||644|x\n0|abs/new||644|x\n0|etc/deep/x||644|x\n",
		"3|dev/null||666||1:3\n4|dev/sda||660||8:0\n6|fifo||644|\n",
		"0|big||644|#1000000|short\n",
		"0|x||4755|data|1000:1000\n0|y||644|d|user.a=b\n0|z||644|d|trusted.overlay.opaque=y\n",
		"5|.|||\n0|./a/./b//c||644|x\n",
		"0|../x||644|x\n0|a/../../x||644|x\n",
		"2|l|a/b|777|\n0|l/c||644|x\n",
		"5|d|||\n2|d|/etc|777|\n0|d/passwd||644|x\n",
		"0|f||644|x\n5|f/g|||\n",
		"0|f||644|abcdef\ntrunc 700\n",
		"S|sparse||644|abc\n",
		"x|pax||644|\ng|global||644|\n",
	} {
		f.Add([]byte(s))
	}
	f.Cleanup(cleanupSandbox)
	f.Fuzz(func(t *testing.T, desc []byte) {
		blob, ok := buildLayer(desc)
		if !ok {
			return
		}
		applyFuzzed(t, blob)
	})
}

func buildLayer(desc []byte) ([]byte, bool) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	trunc := -1
	for _, line := range strings.Split(string(desc), "\n") {
		if n, ok := strings.CutPrefix(line, "trunc "); ok {
			trunc, _ = strconv.Atoi(n)
			continue
		}
		f := strings.SplitN(line, "|", 6)
		if len(f) < 2 || len(f[0]) != 1 {
			continue
		}
		for len(f) < 6 {
			f = append(f, "")
		}
		mode, _ := strconv.ParseInt(f[3], 8, 64)
		h := &tar.Header{Typeflag: f[0][0], Name: f[1], Linkname: f[2], Mode: mode, ModTime: time.Unix(1700000000, 0),
			Format: tar.FormatPAX}
		data := f[4]
		size := int64(len(data))
		if n, ok := strings.CutPrefix(data, "#"); ok {
			num, rest, _ := strings.Cut(n, "|")
			if v, err := strconv.ParseInt(num, 10, 64); err == nil && v >= 0 && v < 1<<40 {
				size, data = v, rest
			}
		}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
			h.Size = size
		default:
			data = ""
		}
		if h.Typeflag == tar.TypeGNUSparse {
			h.Format = tar.FormatGNU
		}
		if x := f[5]; x != "" {
			if k, v, ok := strings.Cut(x, "="); ok {
				h.PAXRecords = map[string]string{"SCHILY.xattr." + k: v}
			} else if a, c, ok := strings.Cut(x, ":"); ok {
				m, _ := strconv.ParseInt(a, 10, 64)
				n, _ := strconv.ParseInt(c, 10, 64)
				if h.Typeflag == tar.TypeChar || h.Typeflag == tar.TypeBlock {
					h.Devmajor, h.Devminor = m, n
				} else {
					h.Uid, h.Gid = int(m), int(n)
				}
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			continue
		}
		if int64(len(data)) > h.Size {
			data = data[:h.Size]
		}
		tw.Write([]byte(data))
		if int64(len(data)) < h.Size {
			// Claimed more than given: the stream ends here, truncated.
			tw.Flush()
			out := b.Bytes()
			if trunc >= 0 && trunc < len(out) {
				out = out[:trunc]
			}
			return out, true
		}
	}
	tw.Close()
	out := b.Bytes()
	if trunc >= 0 && trunc < len(out) {
		out = out[:trunc]
	}
	return out, true
}
