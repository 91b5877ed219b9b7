package vm

import (
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckpointInVM boots the plain cgroup v2 VM with Debian's criu in it and runs the guest's
// checkpoint and restore tests (guest/checkpoint_test.go). criu 3.17.1, Debian 12's, refuses
// newer kernels than the one it was built for (`criu check` fails on 6.18 with "vdso:
// Unexpected rt vDSO area bounds"); the VM boots Debian's own kernel, on which it works. criu
// comes unpacked from its package with the libraries it links and the tools it runs while it
// dumps a network namespace (ip, iptables-save/-restore), like the kernel: from the cache that
// .ci/deps fills, else downloaded (criu-packages lists them).
//
// The guest also gets the host's runc (the reference runtime: the same tests run against it)
// and containerd with ctr, for the engine round trip.
func TestCheckpointInVM(t *testing.T) {
	runVMSuite(t, vmSuite{criu: true, run: "Checkpoint"})
}

// criuModules are the kernel's modules (=m in Debian's config) criu needs: the socket diag
// families it collects sockets through, tun and veth (its kernel probe tries both),
// nf_tables (the probe fails without it: criu is built with libnftables; it needs libcrc32c,
// which needs a crc32c the kernel cannot load by itself here: no modprobe),
// nf_conntrack_netlink (a network namespace's dump asks for its conntrack entries: without it
// nfnetlink answers EINVAL), and the legacy iptables it locks a network namespace with (a CRIU
// chain in the filter table, matching a mark).
var criuModules = []string{"unix_diag", "inet_diag", "tcp_diag", "udp_diag", "raw_diag",
	"netlink_diag", "af_packet_diag", "tun", "veth", "crc32c_generic", "nf_tables", "nf_conntrack_netlink", "ip_tables", "iptable_filter",
	"ip6_tables", "ip6table_filter", "xt_mark"}

// criuBinaries are checked to find every library they link inside the tree.
var criuBinaries = []string{"usr/sbin/criu", "bin/ip", "usr/sbin/xtables-legacy-multi", "bin/tar"}

// findCriuTree returns the unpacked criu-packages (cacheDir()/criu-guest-HASH, HASH naming
// the list's version), downloading them first when the cache has none, and checks that its
// binaries find their libraries in it.
func findCriuTree(logf func(string, ...any)) (string, error) {
	pkgs, err := packageList("criu-packages")
	if err != nil {
		return "", err
	}
	dir, err := findTree("criu-guest-"+listHash(pkgs), "criu-packages", "usr/sbin/criu", logf)
	if err != nil {
		return "", err
	}
	return dir, checkLibraries(dir, append(criuBinaries, criuHostBinaries...))
}

// checkLibraries follows the DT_NEEDED entries of bins (relative to tree, or absolute: a host
// binary copied in) and of the libraries they name inside tree, and fails naming any library
// the tree does not hold: criu-packages is then missing a package.
func checkLibraries(tree string, bins []string) error {
	dirs := []string{"lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"}
	seen := map[string]bool{}
	var missing []string
	var walk func(path, from string) error
	walk = func(path, from string) error {
		f, err := elf.Open(path)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		libs, err := f.ImportedLibraries()
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for _, l := range libs {
			if seen[l] {
				continue
			}
			seen[l] = true
			found := ""
			for _, d := range dirs {
				if p := filepath.Join(tree, d, l); exists(p) {
					found = p
					break
				}
			}
			if found == "" {
				missing = append(missing, l+" (for "+from+")")
				continue
			}
			// Libraries are symlinks, often absolute in Debian's packages: resolve in the tree.
			if err := walk(resolveIn(tree, found), l); err != nil {
				return err
			}
		}
		return nil
	}
	for _, b := range bins {
		p := b
		if !filepath.IsAbs(b) {
			p = filepath.Join(tree, b)
		}
		if err := walk(p, b); err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s lacks %s: add their packages to integration/vm/criu-packages (and rm -r the tree)", tree, strings.Join(missing, ", "))
	}
	return nil
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// resolveIn follows symlinks of a path inside tree, reading absolute targets as tree-relative.
func resolveIn(tree, p string) string {
	for i := 0; i < 16; i++ {
		target, err := os.Readlink(p)
		if err != nil {
			return p
		}
		if filepath.IsAbs(target) {
			p = filepath.Join(tree, target)
		} else {
			p = filepath.Join(filepath.Dir(p), target)
		}
	}
	return p
}

// criuHostBinaries go into the checkpoint guest from this machine's packages (runc, containerd,
// podman, conmon: .ci/deps installs them), each where the package has it.
var criuHostBinaries = []string{"/usr/sbin/runc", "/usr/bin/containerd", "/usr/bin/containerd-shim-runc-v2", "/usr/bin/ctr",
	"/usr/bin/podman", "/usr/bin/conmon"}

// iptablesLegacy are the names criu runs, which Debian's package leaves to update-alternatives
// (not run by dpkg -x): the guest gets them as links to the legacy (x_tables) flavour.
var iptablesLegacy = []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"}

// addCriu puts the criu tree under /cr (stage1 copies it over the new root), with the iptables
// links, the host's runc and containerd, and a busybox image for containerd (/ctr/busybox.tar).
func addCriu(c *cpioWriter, tree string) error {
	if err := addTree(c, "cr", tree); err != nil {
		return err
	}
	for _, n := range iptablesLegacy {
		c.symlink("cr/usr/sbin/"+n, "xtables-legacy-multi")
	}
	for _, src := range criuHostBinaries {
		data, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("%w (install it: bash .ci/deps)", err)
		}
		c.file("cr"+src, 0o755, data)
	}
	// The image the containerd round trip runs (guest/checkpoint_engine_test.go).
	busybox, err := busyboxImageArchive("docker.io/berth/busybox:1", []string{"sh"})
	if err != nil {
		return err
	}
	c.dir("cr/ctr")
	c.file("cr/ctr/busybox.tar", 0o644, busybox)
	return nil
}
