package vm

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// The kernel is Debian's own (the package linux-image-amd64 depends on), unpacked with dpkg -x
// into a cache directory that .ci/deps fills ahead of time; the test only downloads it when the
// cache is empty.

// cacheDir is $BERTH_VM_CACHE, else /var/cache/berth-vm for root (where .ci/deps puts the
// kernel), else $XDG_CACHE_HOME/berth-vm.
func cacheDir() string {
	if d := os.Getenv("BERTH_VM_CACHE"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/cache/berth-vm"
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "berth-vm")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "berth-vm")
}

// kernel is an unpacked linux-image package.
type kernel struct {
	vmlinuz string
	modules string // lib/modules/<version>
}

// kernelPackage asks apt which linux-image-<version>-amd64 the metapackage points at today.
func kernelPackage() (string, error) {
	out, err := exec.Command("apt-cache", "depends", "linux-image-amd64").Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache depends linux-image-amd64: %w", err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("apt-cache depends linux-image-amd64: no linux-image-* dependency in %q", out)
}

// findKernel returns the cached kernel, downloading and unpacking it first if needed. When
// apt cannot say which package is current, any kernel already in the cache does.
func findKernel(logf func(string, ...any)) (*kernel, error) {
	dir := cacheDir()
	pkg, err := kernelPackage()
	if err != nil {
		if k := anyCachedKernel(dir); k != nil {
			return k, nil
		}
		return nil, err
	}
	if k := unpackedKernel(filepath.Join(dir, pkg)); k != nil {
		return k, nil
	}
	logf("kernel %s not in %s: downloading it", pkg, dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	dl, err := os.MkdirTemp(dir, ".download-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dl)
	cmd := exec.Command("apt-get", "download", pkg)
	cmd.Dir = dl
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("apt-get download %s: %v\n%s", pkg, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dl, pkg+"_*.deb"))
	if len(debs) != 1 {
		return nil, fmt.Errorf("apt-get download %s: no .deb in %s", pkg, dl)
	}
	tmp := filepath.Join(dl, "x")
	if out, err := exec.Command("dpkg", "-x", debs[0], tmp).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("dpkg -x %s: %v\n%s", debs[0], err, out)
	}
	if err := os.Rename(tmp, filepath.Join(dir, pkg)); err != nil && !errors.Is(err, os.ErrExist) {
		// Another test unpacked it meanwhile: use theirs.
		if k := unpackedKernel(filepath.Join(dir, pkg)); k != nil {
			return k, nil
		}
		return nil, err
	}
	if k := unpackedKernel(filepath.Join(dir, pkg)); k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("%s: no boot/vmlinuz-* in the package", pkg)
}

func unpackedKernel(dir string) *kernel {
	vm, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	if len(vm) == 0 {
		return nil
	}
	ver := strings.TrimPrefix(filepath.Base(vm[0]), "vmlinuz-")
	return &kernel{vmlinuz: vm[0], modules: filepath.Join(dir, "lib", "modules", ver)}
}

func anyCachedKernel(dir string) *kernel {
	ds, _ := filepath.Glob(filepath.Join(dir, "linux-image-*"))
	sort.Strings(ds)
	for i := len(ds) - 1; i >= 0; i-- {
		if k := unpackedKernel(ds[i]); k != nil {
			return k
		}
	}
	return nil
}

// modules resolves names to .ko files, each after the modules it depends on (read from the
// "depends=" entry of the module's own .modinfo: the package ships no modules.dep, which
// depmod writes at install time).
func (k *kernel) modulesFor(names ...string) ([]string, error) {
	index := map[string]string{}
	err := filepath.WalkDir(filepath.Join(k.modules, "kernel"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".ko") {
			index[modName(strings.TrimSuffix(d.Name(), ".ko"))] = p
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []string
	done := map[string]bool{}
	var add func(string) error
	add = func(name string) error {
		name = modName(name)
		if done[name] {
			return nil
		}
		done[name] = true
		p, ok := index[name]
		if !ok {
			return fmt.Errorf("module %s: not in %s", name, k.modules)
		}
		deps, err := moduleDepends(p)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := add(d); err != nil {
				return err
			}
		}
		out = append(out, p)
		return nil
	}
	for _, n := range names {
		if err := add(n); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func modName(s string) string { return strings.ReplaceAll(s, "-", "_") }

func moduleDepends(ko string) ([]string, error) {
	f, err := elf.Open(ko)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := f.Section(".modinfo")
	if s == nil {
		return nil, nil
	}
	data, err := s.Data()
	if err != nil {
		return nil, err
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok && len(v) > 0 {
			return strings.Split(string(v), ","), nil
		}
	}
	return nil, nil
}
