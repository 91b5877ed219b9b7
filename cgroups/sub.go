package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ParseSubPaths reads `exec --cgroup` arguments as runc 1.1 does: "PATH" alone (the only
// argument then) names a group below the container's in every hierarchy, and
// "CONTROLLER[,CONTROLLER...]:PATH" one in the named v1 hierarchies. The result maps each
// controller ("" for all of them) to its path.
func ParseSubPaths(args []string) (map[string]string, error) {
	if len(args) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(args))
	for _, a := range args {
		parts := strings.SplitN(a, ":", 3)
		switch len(parts) {
		case 1:
			if len(args) != 1 {
				return nil, fmt.Errorf("invalid --cgroup argument: %s (missing <controller>: prefix)", a)
			}
			out[""] = a
		case 2:
			for _, ctrl := range strings.Split(parts[0], ",") {
				out[ctrl] = parts[1]
			}
		default:
			return nil, fmt.Errorf("invalid --cgroup argument: %s", a)
		}
	}
	return out, nil
}

// subDir is dir/add, refused unless it is dir or a group below it.
func subDir(dir, add string) (string, error) {
	p := filepath.Join(dir, add)
	if p != dir && !strings.HasPrefix(p, dir+"/") {
		return "", fmt.Errorf("%s is not a sub cgroup path", add)
	}
	return p, nil
}

// mustExist checks that each directory is a group a process can be added to.
func mustExist(dirs []string) error {
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "cgroup.procs")); err != nil {
			return err
		}
	}
	return nil
}

// Sub is the group an exec'd process joins for `exec --cgroup`: the container's group with
// the paths of ParseSubPaths below it ("" for every hierarchy, including a hybrid host's
// cgroup2 group; otherwise per v1 controller, the others staying at the container's group).
// The groups must exist: the container makes them (a v1 controller it does not have is
// "unknown").
func (m *v1) Sub(sub map[string]string) (Manager, error) {
	n := &v1{path: m.path, dirs: make(map[string]string, len(m.dirs)), unified: m.unified}
	for c, d := range m.dirs {
		n.dirs[c] = d
	}
	if add, ok := sub[""]; ok {
		for c, d := range m.dirs {
			p, err := subDir(d, add)
			if err != nil {
				return nil, err
			}
			n.dirs[c] = p
		}
		if m.unified != "" {
			p, err := subDir(m.unified, add)
			if err != nil {
				return nil, err
			}
			n.unified = p
		}
		n.path = filepath.Join(m.path, add)
	} else {
		ctrls := make([]string, 0, len(sub))
		for c := range sub {
			ctrls = append(ctrls, c)
		}
		sort.Strings(ctrls)
		for _, c := range ctrls {
			d, ok := m.dirs[c]
			if !ok {
				return nil, fmt.Errorf("unknown controller %s in --cgroup", c)
			}
			p, err := subDir(d, sub[c])
			if err != nil {
				return nil, err
			}
			// Co-mounted controllers share a directory: naming one moves them all.
			for c2, d2 := range m.dirs {
				if d2 == d {
					n.dirs[c2] = p
				}
			}
		}
	}
	dirs := n.uniqueDirs()
	if n.unified != "" {
		dirs = append(dirs, n.unified)
	}
	if err := mustExist(dirs); err != nil {
		return nil, fmt.Errorf("error adding pid to cgroups: %w", err)
	}
	return n, nil
}

// Sub on cgroup v2: one hierarchy, so only a path without a controller.
func (m *v2) Sub(sub map[string]string) (Manager, error) {
	add, ok := sub[""]
	if !ok {
		ctrls := make([]string, 0, len(sub))
		for c := range sub {
			ctrls = append(ctrls, c)
		}
		sort.Strings(ctrls)
		return nil, fmt.Errorf("unknown controller %s in --cgroup", ctrls[0])
	}
	p, err := subDir(m.dir, add)
	if err != nil {
		return nil, err
	}
	if err := mustExist([]string{p}); err != nil {
		return nil, fmt.Errorf("error adding pid to cgroups: %w", err)
	}
	return &v2{path: filepath.Join(m.path, add), dir: p}, nil
}
