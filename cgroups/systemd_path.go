package cgroups

import (
	"fmt"
	"strings"
)

// systemdPath is a linux.cgroupsPath in systemd's "slice:prefix:name" form, as the systemd
// driver reads it (runc's meaning): the container's cgroup is the scope unit
// "<prefix>-<name>.scope" inside the slice unit "slice" ("" means system.slice).
type systemdPath struct {
	slice  string // a slice unit name, e.g. "kubepods-besteffort.slice"
	prefix string
	name   string
}

// defaultSystemdPrefix is the scope prefix of a container whose cgroupsPath is empty (runc
// uses "runc" the same way).
const defaultSystemdPrefix = "berth"

// parseSystemdPath reads "slice:prefix:name"; an empty path gives system.slice:berth:<id>.
func parseSystemdPath(path, id string) (systemdPath, error) {
	if path == "" {
		return systemdPath{slice: "system.slice", prefix: defaultSystemdPrefix, name: id}, nil
	}
	parts := strings.Split(path, ":")
	if len(parts) != 3 {
		return systemdPath{}, fmt.Errorf("%q: the systemd cgroup driver expects \"slice:prefix:name\" (e.g. \"system.slice:berth:%s\")", path, id)
	}
	p := systemdPath{slice: parts[0], prefix: parts[1], name: parts[2]}
	if p.slice == "" {
		p.slice = "system.slice"
	}
	if _, err := expandSlice(p.slice); err != nil {
		return systemdPath{}, fmt.Errorf("%q: %w", path, err)
	}
	switch {
	case p.name == "":
		return systemdPath{}, fmt.Errorf("%q: the name part of \"slice:prefix:name\" is empty", path)
	case strings.HasSuffix(p.name, ".slice"):
		return systemdPath{}, fmt.Errorf("%q: a slice as the container's own unit is not supported (name it without .slice: the container gets a scope)", path)
	case strings.ContainsAny(p.prefix+p.name, "/\x00\n"):
		return systemdPath{}, fmt.Errorf("%q: prefix and name cannot hold '/'", path)
	}
	return p, nil
}

// String is the path as the state records it and parseSystemdPath reads it back.
func (p systemdPath) String() string { return p.slice + ":" + p.prefix + ":" + p.name }

// unit is the scope's unit name, as runc names it.
func (p systemdPath) unit() string { return p.prefix + "-" + p.name + ".scope" }

// cgroup is the scope's cgroup path below the v2 root, e.g.
// "/kubepods.slice/kubepods-burstable.slice/cri-containerd-ID.scope".
func (p systemdPath) cgroup() string {
	s, _ := expandSlice(p.slice)
	return strings.TrimSuffix(s, "/") + "/" + p.unit()
}

// expandSlice turns a slice unit name into its cgroup path: systemd nests "a-b-c.slice" in
// "a-b.slice" in "a.slice", so it lives at /a.slice/a-b.slice/a-b-c.slice; "-.slice" is the root.
func expandSlice(slice string) (string, error) {
	base, ok := strings.CutSuffix(slice, ".slice")
	if !ok || base == "" || strings.ContainsAny(slice, "/\x00\n") {
		return "", fmt.Errorf("slice %q is not a slice unit name (such as system.slice or a-b.slice)", slice)
	}
	if base == "-" {
		return "/", nil
	}
	for _, part := range strings.Split(base, "-") {
		if part == "" {
			return "", fmt.Errorf("slice %q is not a slice unit name (empty part between '-')", slice)
		}
	}
	return expandParts(base), nil
}

// expandParts builds "/a.slice/a-b.slice/a-b-c.slice" from "a-b-c" (parts already checked).
func expandParts(base string) string {
	var out, prefix string
	for _, part := range strings.Split(base, "-") {
		out += "/" + prefix + part + ".slice"
		prefix += part + "-"
	}
	return out
}
