package namespaces

// Writing a user namespace's id mappings, for a caller that may not be root (rootless).
//
// How to call it: make a process with a new user namespace and no mappings yet (it must wait,
// doing nothing that needs an id, until the maps are written), then
//
//	err := namespaces.WriteIDMaps(pid, spec.Linux.UIDMappings, spec.Linux.GIDMappings)
//
// from a process of the namespace's owner (the same euid that created it). On failure, kill
// the waiting process: its namespace goes with it, nothing else was made. The error names the
// mapping and what is missing (no uidmap package, no /etc/subuid range for the user, ...).
//
// The kernel's rules (user_namespaces(7)): a process with CAP_SETUID (CAP_SETGID) in the
// parent namespace writes any map of ids it has; anyone else may write only one line that maps
// their own euid (egid), and for gid_map only after writing "deny" to /proc/PID/setgroups (so
// that a user cannot drop a group that denies them access). Beyond their own ids, an ordinary
// user goes through the setuid helpers newuidmap/newgidmap (Debian package uidmap), which
// check the ranges against /etc/subuid and /etc/subgid.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/explain"
	"github.com/berth-project/berth/internal/rawfile"
)

// WriteIDMaps writes /proc/PID/uid_map and gid_map: directly when the caller may (root, or a
// single mapping of its own id), through newuidmap/newgidmap otherwise. gid_map is written
// after uid_map; with a direct write by an unprivileged caller, setgroups is denied first, as
// the kernel requires (the process then cannot call setgroups: /proc/PID/setgroups says so).
func WriteIDMaps(pid int, uids, gids []specs.LinuxIDMapping) error {
	if err := writeMap(pid, "uid", uids, os.Geteuid()); err != nil {
		return err
	}
	return writeMap(pid, "gid", gids, os.Getegid())
}

// NeedsHelper says whether a mapping of kind "uid" or "gid" must go through newuidmap or
// newgidmap for this caller: it is not root and the mapping is more than its own id.
func NeedsHelper(m []specs.LinuxIDMapping, own int) bool {
	if os.Geteuid() == 0 {
		return false // root in its user namespace: CAP_SETUID there (rootful, or `unshare -r`)
	}
	return !(len(m) == 1 && m[0].Size == 1 && int(m[0].HostID) == own)
}

func writeMap(pid int, kind string, m []specs.LinuxIDMapping, own int) error {
	field := "linux." + kind + "Mappings"
	if len(m) == 0 {
		return fmt.Errorf("%s: a new user namespace needs a %s mapping", field, kind)
	}
	if NeedsHelper(m, own) {
		return writeMapHelper(pid, kind, m, own)
	}
	procDir := "/proc/" + strconv.Itoa(pid)
	if kind == "gid" && os.Geteuid() != 0 {
		// Unprivileged: the kernel takes a gid_map only once setgroups is denied.
		explain.Stepf("namespaces.WriteIDMaps", "echo deny > %s/setgroups (an unprivileged gid_map needs it)", procDir)
		if err := os.WriteFile(procDir+"/setgroups", []byte("deny"), 0); err != nil {
			return fmt.Errorf("%s: writing deny to %s/setgroups: %w", field, procDir, err)
		}
	}
	text := mapText(m)
	explain.Stepf("namespaces.WriteIDMaps", "write %q to %s/%s_map", strings.TrimSpace(text), procDir, kind)
	if err := os.WriteFile(procDir+"/"+kind+"_map", []byte(text), 0); err != nil {
		return fmt.Errorf("%s: writing %s to %s/%s_map: %w", field, describe(m), procDir, kind, err)
	}
	return nil
}

// writeMapHelper runs newuidmap or newgidmap PID inside outside count... for the mapping.
func writeMapHelper(pid int, kind string, m []specs.LinuxIDMapping, own int) error {
	field := "linux." + kind + "Mappings"
	helper := "new" + kind + "map"
	path, err := exec.LookPath(helper)
	if err != nil {
		return fmt.Errorf("%s: mapping %s beyond your own %s %d needs %s (Debian package uidmap), which is not installed", field, describe(m), kind, own, helper)
	}
	args := []string{strconv.Itoa(pid)}
	for _, x := range m {
		args = append(args, strconv.FormatUint(uint64(x.ContainerID), 10), strconv.FormatUint(uint64(x.HostID), 10), strconv.FormatUint(uint64(x.Size), 10))
	}
	explain.Stepf("namespaces.WriteIDMaps", "%s %s (checked against /etc/sub%s)", helper, strings.Join(args, " "), kind)
	cmd := exec.Command(path, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		msg := strings.Join(strings.Fields(out.String()), " ")
		if msg == "" {
			msg = err.Error()
		}
		if hint := subidHint(kind, m, own); hint != "" {
			msg += " (" + hint + ")"
		}
		return fmt.Errorf("%s: %s refused %s: %s", field, helper, describe(m), msg)
	}
	return nil
}

// subidHint explains a refusal from the helper when /etc/subuid (subgid) shows why: the
// caller has no range there, or the mapping's host ids lie outside the ranges it has. ""
// when the file does not explain it (the helper's own message then stands alone).
func subidHint(kind string, m []specs.LinuxIDMapping, own int) string {
	file := "/etc/sub" + kind
	names := []string{strconv.Itoa(own)}
	if kind == "uid" {
		if u, err := user.LookupId(strconv.Itoa(own)); err == nil {
			names = append(names, u.Username)
		}
	} else if g, err := user.LookupGroupId(strconv.Itoa(own)); err == nil {
		names = append(names, g.Name)
		if u, err := user.LookupId(strconv.Itoa(os.Geteuid())); err == nil {
			names = append(names, u.Username) // newgidmap matches the user's name too
		}
	}
	ranges, err := SubIDRanges(file, names)
	if err != nil {
		return fmt.Sprintf("%s: %v", file, err)
	}
	if len(ranges) == 0 {
		return fmt.Sprintf("%s has no range for %s %s", file, kind, strings.Join(names, "/"))
	}
	for _, x := range m {
		if x.Size == 1 && int(x.HostID) == own {
			continue
		}
		inside := false
		for _, r := range ranges {
			if uint64(x.HostID) >= r[0] && uint64(x.HostID)+uint64(x.Size) <= r[0]+r[1] {
				inside = true
			}
		}
		if !inside {
			return fmt.Sprintf("host %ss %d-%d are outside the ranges %s gives %s", kind, x.HostID, uint64(x.HostID)+uint64(x.Size)-1, file, strings.Join(names, "/"))
		}
	}
	return ""
}

// SubIDRanges reads the [start, count] ranges of /etc/subuid or /etc/subgid for any of names
// (a user's name or uid, as newuidmap and newgidmap match them); empty ranges are left out.
func SubIDRanges(file string, names []string) ([][2]uint64, error) {
	f, err := os.Open(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	var out [][2]uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(parts) != 3 {
			continue
		}
		for _, n := range names {
			if parts[0] != n {
				continue
			}
			start, err1 := strconv.ParseUint(parts[1], 10, 32)
			count, err2 := strconv.ParseUint(parts[2], 10, 32)
			if err1 == nil && err2 == nil && count > 0 {
				out = append(out, [2]uint64{start, count})
			}
		}
	}
	return out, sc.Err()
}

// mapText is a mapping as /proc/PID/uid_map takes it: "inside outside count" per line.
func mapText(m []specs.LinuxIDMapping) string {
	var b strings.Builder
	for _, x := range m {
		fmt.Fprintf(&b, "%d %d %d\n", x.ContainerID, x.HostID, x.Size)
	}
	return b.String()
}

// describe spells a mapping out for an error: "[0->1000 (1), 1->100000 (65536)]".
func describe(m []specs.LinuxIDMapping) string {
	var parts []string
	for _, x := range m {
		parts = append(parts, fmt.Sprintf("%d->%d (%d)", x.ContainerID, x.HostID, x.Size))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// InUserNS says whether the caller is in a user namespace other than the initial one (whose
// uid_map maps every id: "0 0 4294967295").
// It is read once per process: berth never changes its own user namespace.
func InUserNS() bool { return inUserNS() }

var inUserNS = sync.OnceValue(func() bool {
	data, err := rawfile.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	f := strings.Fields(string(data))
	return !(len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295")
})

// SetgroupsAllowed says whether the caller's user namespace allows setgroups (an unprivileged
// namespace's maker denies it, and the namespaces made inside inherit that).
func SetgroupsAllowed() bool {
	data, err := os.ReadFile("/proc/self/setgroups")
	return err != nil || strings.TrimSpace(string(data)) != "deny"
}
