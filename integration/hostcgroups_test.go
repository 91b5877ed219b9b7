package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runcSpec is the config `runc spec` writes, as a spec to change, with the shared rootfs,
// no terminal and args as the program.
func runcSpec(t *testing.T, args ...string) *specs.Spec {
	t.Helper()
	needTools(t, "runc")
	dir := t.TempDir()
	cmd := exec.Command("runc", "spec")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v: %s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	s.Root.Path = rootfs
	s.Process.Terminal = false
	s.Process.Args = args
	return &s
}

// hostMountCheck reads every line of /proc/self/mountinfo, covered mounts included, and prints
// BAD for a mount under /sys or /proc that hands the container something of the host's it
// could write to or uncover: anything under /sys not read-only, a cgroup mount not
// read-only or rooted at a hierarchy's root (the host's whole tree, where the v1
// release_agent lives), a procfs below /proc not read-only, or any other filesystem there
// than a tmpfs or the null device masking a path.
const hostMountCheck = `cgns=$1
while read id parent dev root point opts rest; do
  fstype=${rest#*- }; fstype=${fstype%% *}
  first=${opts%%,*}
  case "$point" in /sys|/sys/*|/proc/*) ;; *) continue ;; esac
  case "$fstype" in cgroup|cgroup2)
    [ "$first" = ro ] || echo "BAD writable cgroup: $point $root"
    if [ "$cgns" = no ] && [ "$root" = / ]; then echo "BAD host cgroup root: $point"; fi
    case "$root" in /..*) echo "BAD cgroup above the namespace: $point $root" ;; esac
    continue ;;
  esac
  case "$point" in
  /sys|/sys/*) [ "$first" = ro ] || echo "BAD writable under /sys: $point $fstype" ;;
  /proc/*)
    case "$fstype" in
    proc) [ "$first" = ro ] || echo "BAD writable procfs: $point" ;;
    tmpfs) ;;
    devtmpfs) [ "$root" = /null ] || echo "BAD host devtmpfs under /proc: $point $root" ;;
    *) echo "BAD host filesystem under /proc: $point $fstype" ;;
    esac ;;
  esac
done < /proc/self/mountinfo
echo checked`

// SECURITY: whatever the namespaces, nothing of the host's cgroup trees (nor anything else of
// the host's under /sys or /proc) is mounted writable in the container, not even covered by
// the container's own mounts. Without a network namespace berth used to bind the host's /sys
// recursively: the host's cgroup hierarchies, roots included, stayed mounted read-write under
// the container's read-only cgroup mount, one umount away (v1 release_agent escape).
func TestNoHostCgroupTreeInContainer(t *testing.T) {
	type combo struct {
		name                   string
		net, user, cgroup, mnt bool
	}
	var combos []combo
	for _, net := range []bool{true, false} {
		for _, user := range []bool{false, true} {
			for _, cg := range []bool{false, true} {
				n := map[bool]string{true: "+", false: "-"}
				combos = append(combos, combo{n[net] + "net" + n[user] + "user" + n[cg] + "cgroup", net, user, cg, true})
			}
		}
	}
	// No mount namespace: the mounts are made on the host under the rootfs.
	combos = append(combos, combo{"-net-mnt", false, false, false, false}, combo{"+net-mnt+cgroup", true, false, true, false})
	for i, c := range combos {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.spec = runcSpec(t, "sh", "-c", hostMountCheck+"; umount /sys/fs/cgroup 2>/dev/null; cat /proc/self/mountinfo", "check", map[bool]string{true: "yes", false: "no"}[c.cgroup])
			var ns []specs.LinuxNamespace
			for _, n := range e.spec.Linux.Namespaces {
				if (n.Type == specs.NetworkNamespace && !c.net) || (n.Type == specs.MountNamespace && !c.mnt) {
					continue
				}
				ns = append(ns, n)
			}
			e.spec.Linux.Namespaces = ns
			if c.cgroup {
				e.spec.Linux.Namespaces = append(e.spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
			}
			if c.user {
				withUserNS(e.spec)
			}
			// CAP_SYS_ADMIN, so that the container's own umount of /sys/fs/cgroup is tried.
			caps := append(e.spec.Process.Capabilities.Bounding, "CAP_SYS_ADMIN")
			e.spec.Process.Capabilities.Bounding, e.spec.Process.Capabilities.Effective, e.spec.Process.Capabilities.Permitted = caps, caps, caps
			r := e.run("hostcg-" + string(rune('a'+i)))
			if r.code != 0 || !strings.Contains(r.stdout, "checked") {
				t.Fatalf("run: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
			for _, l := range strings.Split(r.stdout, "\n") {
				if strings.HasPrefix(l, "BAD") {
					t.Errorf("%s", l)
				}
			}
			// After the container's umount of its cgroup mount, no host hierarchy is left.
			after := r.stdout[strings.Index(r.stdout, "checked"):]
			for _, l := range strings.Split(after, "\n") {
				f := strings.Fields(l)
				if len(f) > 8 && strings.HasPrefix(f[4], "/sys/fs/cgroup/") && f[3] == "/" && !c.cgroup {
					t.Errorf("a host cgroup root is reachable after umount: %s", l)
				}
			}
			if t.Failed() {
				t.Logf("mountinfo:\n%s", r.stdout)
			}
		})
	}
}
