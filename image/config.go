package image

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/libcontainer"
)

// Annotations image-spec's conversion.md derives from the config.
const (
	AnnotationOS           = "org.opencontainers.image.os"
	AnnotationArch         = "org.opencontainers.image.architecture"
	AnnotationVariant      = "org.opencontainers.image.variant"
	AnnotationOSVersion    = "org.opencontainers.image.os.version"
	AnnotationOSFeatures   = "org.opencontainers.image.os.features"
	AnnotationAuthor       = "org.opencontainers.image.author"
	AnnotationCreated      = "org.opencontainers.image.created"
	AnnotationStopSignal   = "org.opencontainers.image.stopSignal"
	AnnotationExposedPorts = "org.opencontainers.image.exposedPorts"
)

// RuntimeSpec converts im's config into a runtime config, following image-spec's
// conversion.md over berth's default spec: args are Entrypoint+Cmd (args, when given, replace
// Cmd), the image's Env wins over the defaults by name, WorkingDir is the cwd, User is
// resolved against rootfs's /etc/passwd and /etc/group, Labels and the implicit annotations
// become annotations. The root is "rootfs", writable, and there is no terminal.
func RuntimeSpec(im *Image, rootfs string, args []string) (*specs.Spec, error) {
	c := im.Config.Config
	spec := libcontainer.DefaultSpec()
	spec.Root = &specs.Root{Path: "rootfs"}
	spec.Process.Terminal = false
	cmd := c.Cmd
	if len(args) > 0 {
		cmd = args
	}
	spec.Process.Args = append(append([]string{}, c.Entrypoint...), cmd...)
	if len(spec.Process.Args) == 0 {
		return nil, fmt.Errorf("image %s has neither Entrypoint nor Cmd: give a command after the container id", im.Ref)
	}
	spec.Process.Env = mergeEnv(spec.Process.Env, c.Env)
	if c.WorkingDir != "" {
		spec.Process.Cwd = c.WorkingDir
	}
	if c.User != "" {
		u, err := resolveUser(rootfs, c.User)
		if err != nil {
			return nil, fmt.Errorf("image config User %q: %w", c.User, err)
		}
		spec.Process.User = u
	}
	ann := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			ann[k] = v
		}
	}
	set(AnnotationOS, im.Config.OS)
	set(AnnotationArch, im.Config.Architecture)
	set(AnnotationVariant, im.Config.Variant)
	set(AnnotationOSVersion, im.Config.OSVersion)
	set(AnnotationOSFeatures, strings.Join(im.Config.OSFeatures, ","))
	set(AnnotationAuthor, im.Config.Author)
	if im.Config.Created != nil {
		set(AnnotationCreated, im.Config.Created.UTC().Format("2006-01-02T15:04:05.999999999Z07:00"))
	}
	set(AnnotationStopSignal, c.StopSignal)
	var ports []string
	for p := range c.ExposedPorts {
		ports = append(ports, p)
	}
	sort.Strings(ports)
	set(AnnotationExposedPorts, strings.Join(ports, ","))
	for k, v := range c.Labels { // labels win over the implicit annotations
		ann[k] = v
	}
	if len(ann) > 0 {
		spec.Annotations = ann
	}
	return spec, nil
}

func mergeEnv(defaults, image []string) []string {
	names := map[string]bool{}
	for _, e := range image {
		k, _, _ := strings.Cut(e, "=")
		names[k] = true
	}
	var out []string
	for _, e := range defaults {
		if k, _, _ := strings.Cut(e, "="); !names[k] {
			out = append(out, e)
		}
	}
	return append(out, image...)
}

// resolveUser parses user[:group] (names or ids) against the image's files, read inside
// rootfs (a symlinked /etc/passwd cannot point at the host's).
func resolveUser(rootfs, s string) (specs.User, error) {
	user, group, hasGroup := strings.Cut(s, ":")
	var u specs.User
	passwd, _ := readRootFile(rootfs, "/etc/passwd")
	groups, _ := readRootFile(rootfs, "/etc/group")
	uid, err := strconv.ParseUint(user, 10, 32)
	numericUser := err == nil
	found := false
	var userName string
	for _, f := range passwd {
		// name:password:uid:gid:gecos:home:shell
		if len(f) < 4 {
			continue
		}
		id, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		if numericUser && id == uid || !numericUser && f[0] == user {
			u.UID, u.GID, userName, found = uint32(id), uint32(gid), f[0], true
			break
		}
	}
	if !found {
		if !numericUser {
			return u, fmt.Errorf("no user %q in the image's /etc/passwd", user)
		}
		u.UID, u.GID = uint32(uid), 0 // an id with no entry: group root, as docker does
	}
	if hasGroup {
		gid, err := strconv.ParseUint(group, 10, 32)
		if err == nil {
			u.GID = uint32(gid)
		} else {
			ok := false
			for _, f := range groups {
				if len(f) >= 3 && f[0] == group {
					if g, err := strconv.ParseUint(f[2], 10, 32); err == nil {
						u.GID, ok = uint32(g), true
						break
					}
				}
			}
			if !ok {
				return u, fmt.Errorf("no group %q in the image's /etc/group", group)
			}
		}
		return u, nil // a group given: no supplementary groups (conversion.md)
	}
	if numericUser || userName == "" {
		return u, nil
	}
	for _, f := range groups {
		// name:password:gid:member,member
		if len(f) < 4 {
			continue
		}
		for _, m := range strings.Split(f[3], ",") {
			if m == userName {
				if g, err := strconv.ParseUint(f[2], 10, 32); err == nil && uint32(g) != u.GID {
					u.AdditionalGids = append(u.AdditionalGids, uint32(g))
				}
			}
		}
	}
	return u, nil
}

// readRootFile reads a colon-separated file inside rootfs, resolving symlinks within it.
func readRootFile(rootfs, p string) ([][]string, error) {
	h, err := pathrs.OpenInRoot(rootfs, p)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(io.LimitReader(f, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out, sc.Err()
}
