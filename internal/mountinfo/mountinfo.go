// Package mountinfo reads /proc/self/mountinfo: the one parser berth's packages share.
package mountinfo

import (
	"strconv"
	"strings"
	"sync"

	"github.com/berth-project/berth/internal/rawfile"
)

// Mount is one line of mountinfo (proc(5)).
type Mount struct {
	ID, Parent   int
	Root         string   // the path inside the filesystem that is mounted
	Point        string   // where it is mounted
	Options      string   // per-mount options
	Optional     []string // propagation: shared:N, master:N, propagate_from:N, unbindable
	FSType       string
	Source       string
	SuperOptions string
}

// Read parses /proc/self/mountinfo.
func Read() ([]Mount, error) {
	data, err := rawfile.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return parse(data), nil
}

// Cgroups is Read's table as this process first read it, for the cgroup hierarchies, which no
// berth process mounts or unmounts: cgroups (the groups' directories) and rootfs (the
// container's /sys/fs/cgroup) both look them up in a create, and the kernel takes longer to
// write the table than berth to parse it. Other mounts in it may be out of date; the slice is
// shared, not to be changed.
var Cgroups = sync.OnceValues(Read)

// parse reads mountinfo lines; a line of another shape is skipped. A create reads mountinfo
// several times, so this allocates little: the text is copied into one string once, every
// field is a substring of it, and the fields of a line are split into one reused slice.
func parse(data []byte) []Mount {
	text := string(data)
	out := make([]Mount, 0, strings.Count(text, "\n")+1)
	var all []string
	for text != "" {
		var line string
		line, text, _ = strings.Cut(text, "\n")
		line = strings.TrimSuffix(line, "\r")
		// The optional fields end at the first field "-" after the sixth: found by field, not
		// as " - " in the line, since a root or mount point may itself be "-".
		all = fields(all[:0], line)
		sep := -1
		for i := 6; i < len(all); i++ {
			if all[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 {
			continue
		}
		pre, post := all[:sep], all[sep+1:]
		if len(post) < 2 {
			continue
		}
		m := Mount{Root: unescape(pre[3]), Point: unescape(pre[4]), Options: pre[5], FSType: post[0], Source: unescape(post[1])}
		m.Optional = append(make([]string, 0, len(pre)-6), pre[6:]...)
		m.ID, _ = strconv.Atoi(pre[0])
		m.Parent, _ = strconv.Atoi(pre[1])
		if len(post) > 2 {
			m.SuperOptions = post[2]
		}
		out = append(out, m)
	}
	return out
}

// fields appends the fields of a line to out, split only at spaces: the kernel escapes nothing
// but space, tab, newline and backslash in paths, so a path may hold a form feed, a carriage
// return or a no-break space, which strings.Fields would split at.
func fields(out []string, s string) []string {
	for s != "" {
		var f string
		f, s, _ = strings.Cut(s, " ")
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// unescape undoes mountinfo's octal escapes (\040 for a space, ...).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Containing returns the mount that holds path: the last-mounted one with the longest
// mount point that is path or one of its parents.
func Containing(mounts []Mount, path string) (Mount, bool) {
	best, found := Mount{}, false
	for _, m := range mounts {
		p := m.Point
		if path == p || p == "/" || strings.HasPrefix(path, p+"/") {
			if !found || len(p) >= len(best.Point) {
				best, found = m, true
			}
		}
	}
	return best, found
}

// Visible drops the mounts that a later mount covers: one made afterwards at the same point or
// at one of its parents. What is left is what a path lookup can reach (mountinfo lists mounts
// in the order they were made).
func Visible(mounts []Mount) []Mount {
	out := make([]Mount, 0, len(mounts))
	for i, m := range mounts {
		covered := false
		for _, later := range mounts[i+1:] {
			p := later.Point
			if p == m.Point || p == "/" || strings.HasPrefix(m.Point, p+"/") {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, m)
		}
	}
	return out
}
