package vm

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// A guest tree is a set of Debian packages unpacked (dpkg -x) into one directory of the cache,
// which the guest image copies over its root: systemd and dbus (systemd-packages), criu and
// what it runs (criu-packages). .ci/deps fills the cache ahead of time; the test downloads the
// packages only when the cache has no tree.

// packageList reads a package list kept next to this file: one name a line, # comments.
func packageList(file string) ([]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out, nil
}

// listHash names a package list's version: the first 12 hex digits of the SHA-256 of its
// package names, one a line (as .ci/deps computes it with sha256sum).
func listHash(pkgs []string) string {
	sum := sha256.Sum256([]byte(strings.Join(pkgs, "\n") + "\n"))
	return hex.EncodeToString(sum[:])[:12]
}

// findTree returns cacheDir()/name, downloading and unpacking the packages of list into it
// first when it has no probe file.
func findTree(name, list, probe string, logf func(string, ...any)) (string, error) {
	dir := filepath.Join(cacheDir(), name)
	if _, err := os.Stat(filepath.Join(dir, probe)); err == nil {
		return dir, nil
	}
	pkgs, err := packageList(list)
	if err != nil {
		return "", err
	}
	logf("%s not in %s: downloading %d packages", probe, dir, len(pkgs))
	if err := os.MkdirAll(cacheDir(), 0o755); err != nil {
		return "", err
	}
	dl, err := os.MkdirTemp(cacheDir(), ".download-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dl)
	cmd := exec.Command("apt-get", append([]string{"download", "-qq"}, pkgs...)...)
	cmd.Dir = dl
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("apt-get download %s: %v\n%s", strings.Join(pkgs, " "), err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dl, "*.deb"))
	if len(debs) != len(pkgs) {
		return "", fmt.Errorf("apt-get download gave %d packages for %d names", len(debs), len(pkgs))
	}
	tmp := filepath.Join(dl, "x")
	for _, d := range debs {
		if out, err := exec.Command("dpkg", "-x", d, tmp).CombinedOutput(); err != nil {
			return "", fmt.Errorf("dpkg -x %s: %v\n%s", d, err, out)
		}
	}
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, os.ErrExist) {
		if _, serr := os.Stat(filepath.Join(dir, probe)); serr == nil {
			return dir, nil // another test unpacked it meanwhile
		}
		return "", err
	}
	return dir, nil
}

// skipInGuest is what the guest image leaves out of the unpacked packages: documentation, and
// the generators systemd would run at boot for fstab, gettys, sysv scripts... (slow under TCG,
// and nothing here needs them), criu's Python tools and its compel build kit.
func skipInGuest(rel string) bool {
	for _, p := range []string{"usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/lintian",
		"usr/share/zsh", "usr/share/bash-completion", "usr/lib/x86_64-linux-gnu/gconv", "lib/systemd/system-generators",
		"lib/udev", "usr/share/bug", "usr/share/info", "usr/lib/python3", "usr/lib/compel", "usr/include"} {
		if rel == p || strings.HasPrefix(rel, p+"/") {
			return true
		}
	}
	return false
}

// addTree puts the unpacked tree under /prefix in the image (stage1 copies it over the new
// root), less what skipInGuest leaves out.
func addTree(c *cpioWriter, prefix, tree string) error {
	c.dir(prefix)
	err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(tree, p)
		if rel == "." {
			return nil
		}
		if skipInGuest(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		name := prefix + "/" + rel
		perm := uint32(fi.Mode().Perm())
		if fi.Mode()&fs.ModeSetuid != 0 {
			perm |= 0o4000
		}
		switch {
		case fi.IsDir():
			c.entry(name, sIFDIR|perm, 0, 0, nil)
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			c.symlink(name, target)
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			c.file(name, perm, data)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("initramfs: %s: %w", tree, err)
	}
	return nil
}
