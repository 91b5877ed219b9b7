package libcontainer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
	"github.com/berth-project/berth/namespaces"
	"github.com/berth-project/berth/rootfs"
	"github.com/berth-project/berth/seccomp"
)

var rlimitByName = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE,
	"RLIMIT_LOCKS": unix.RLIMIT_LOCKS, "RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK,
	"RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC,
	"RLIMIT_RSS": unix.RLIMIT_RSS, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

func validateLinux(spec *specs.Spec) error {
	if _, err := namespaces.New(spec); err != nil {
		return err
	}
	if err := seccomp.Validate(spec.Linux.Seccomp); err != nil {
		return err
	}
	if err := validateHooks(spec.Hooks); err != nil {
		return err
	}
	if err := validateAttrs(spec.Process, spec.Linux); err != nil {
		return err
	}
	if p := spec.Linux.RootfsPropagation; p != "" {
		if _, err := rootfs.PropagationFlag(p); err != nil {
			return err
		}
	}
	for i, m := range spec.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return fmt.Errorf("mounts[%d].destination: %q must be an absolute path", i, m.Destination)
		}
		if len(m.UIDMappings)+len(m.GIDMappings) > 0 || hasOption(m.Options, "idmap") || hasOption(m.Options, "ridmap") {
			switch {
			case m.Type != "bind" && !hasBind(m.Options):
				return fmt.Errorf("mounts[%d] (%s): idmapped mounts must be bind mounts", i, oneLine(m.Destination))
			case len(m.UIDMappings) == 0 || len(m.GIDMappings) == 0:
				return fmt.Errorf("mounts[%d].uidMappings: an idmapped mount needs both uidMappings and gidMappings", i)
			}
		}
		if m.Type == "" && !hasBind(m.Options) {
			return fmt.Errorf("mounts[%d].type: must be set unless options hold bind or rbind", i)
		}
	}
	for i, d := range spec.Linux.Devices {
		if !filepath.IsAbs(d.Path) {
			return fmt.Errorf("linux.devices[%d].path: %q must be an absolute path", i, d.Path)
		}
		switch d.Type {
		case "c", "b", "u", "p":
		default:
			return fmt.Errorf("linux.devices[%d].type: %q must be c, b, u or p", i, d.Type)
		}
	}
	for k := range spec.Linux.Sysctl {
		for _, part := range strings.Split(namespaces.SysctlPath(k), "/") {
			if part == "" || part == "." || part == ".." {
				return fmt.Errorf("linux.sysctl: %q is not a sysctl name", k)
			}
		}
	}
	return nil
}

func hasOption(opts []string, want string) bool {
	for _, o := range opts {
		if o == want {
			return true
		}
	}
	return false
}

func hasBind(opts []string) bool {
	for _, o := range opts {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// setRlimits applies process.rlimits to the init process; they survive execve.
func setRlimits(rl []specs.POSIXRlimit) error {
	for i, r := range rl {
		explain.Stepf("libcontainer.setRlimits", "prlimit %s soft=%d hard=%d", r.Type, r.Soft, r.Hard)
		lim := unix.Rlimit{Cur: r.Soft, Max: r.Hard}
		if err := unix.Prlimit(0, rlimitByName[r.Type], &lim, nil); err != nil {
			return fmt.Errorf("process.rlimits[%d] (%s): %w", i, r.Type, err)
		}
	}
	return nil
}

// setUser switches to process.user. It runs on the thread that will execve, with raw
// syscalls: only that thread's credentials matter to execve, and glibc's all-thread setxid
// broadcast would only add work.
func setUser(u specs.User, allowSetgroups bool) error {
	groups := make([]uint32, len(u.AdditionalGids))
	copy(groups, u.AdditionalGids)
	if allowSetgroups {
		// A joined user namespace may have setgroups disabled (its owner wrote "deny", as
		// unprivileged ones must): then only an empty request can be honoured (runc's rule).
		if data, ok := procSetgroups(); ok && strings.TrimSpace(string(data)) == "deny" {
			if len(groups) > 0 {
				return fmt.Errorf("process.user.additionalGids: the user namespace denies setgroups")
			}
			allowSetgroups = false
		}
	}
	if allowSetgroups {
		explain.Stepf("libcontainer.setUser", "setgroups %v", groups)
		var p uintptr
		if len(groups) > 0 {
			p = uintptrOf(&groups[0])
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(groups)), p, 0); e != 0 {
			return fmt.Errorf("process.user.additionalGids: setgroups: %w", e)
		}
	}
	explain.Stepf("libcontainer.setUser", "setresgid %d, setresuid %d", u.GID, u.UID)
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return fmt.Errorf("process.user.gid: setresgid %d: %w", u.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return fmt.Errorf("process.user.uid: setresuid %d: %w", u.UID, e)
	}
	return nil
}

// procSetgroups reads /proc/self/setgroups from a procfs only: with no /proc mounted, the
// image's own file must not make the process keep berth's supplementary groups.
func procSetgroups() ([]byte, bool) {
	f, err := os.OpenFile("/proc/self/setgroups", os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	var fs unix.Statfs_t
	if unix.Fstatfs(int(f.Fd()), &fs) != nil || fs.Type != unix.PROC_SUPER_MAGIC {
		return nil, false
	}
	data, err := io.ReadAll(f)
	return data, err == nil
}

// lookPath finds args[0] the way execvp would, in the container's root and with its PATH, so
// that a missing program fails `create`, not `start`. The error text contains "executable file
// not found in", which podman maps to exit status 127.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		if err := checkExecutable(name); err != nil {
			return "", fmt.Errorf("process.args[0]: exec: %q: %w", name, err)
		}
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			path = e[5:]
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if checkExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("process.args[0]: exec: %q: executable file not found in $PATH", name)
}

func checkExecutable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err // "stat PATH: no such file or directory", as Go's exec.LookPath (and runc) say
	}
	if st.IsDir() {
		return errors.New("is a directory")
	}
	if st.Mode()&0o111 == 0 {
		return errors.New("permission denied")
	}
	return nil
}

// makeCwd creates process.cwd in the container's root when it is missing, as runc does for
// the init (not for exec), mode 0755 and root-owned. The path is resolved inside rootfs
// (openat2 RESOLVE_IN_ROOT, no magic links), so no symlink or /proc/PID/root in the image can
// make it land outside.
func makeCwd(rootfs, cwd string) error {
	root, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("root.path: %w", err)
	}
	defer root.Close()
	h, err := pathrs.OpenatInRoot(root, cwd)
	if err == nil {
		h.Close()
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil // enterCwd says what is wrong with it
	}
	explain.Stepf("libcontainer.makeCwd", "mkdir -p %s (process.cwd, inside the rootfs)", cwd)
	d, err := pathrs.MkdirAllHandle(root, cwd, 0o755)
	if err != nil {
		return fmt.Errorf("process.cwd: creating %s: %w", cwd, err)
	}
	return d.Close()
}

// enterCwd changes to process.cwd and checks that the result is inside the container: a cwd
// inherited through a leaked directory fd would sit outside the root, and getcwd then reports
// it as unreachable (CVE-2024-21626). With mayDefer, a permission error is not one yet: the
// directory may be the user's own (a volume chowned to it, out of reach of the user-namespaced
// root), so finalizeProcess tries again as the user (runc's order); deferred says so.
func enterCwd(cwd string, mayDefer bool) (deferred bool, err error) {
	explain.Stepf("libcontainer.enterCwd", "chdir %s", cwd)
	if err := unix.Chdir(cwd); err != nil {
		if mayDefer && (errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)) {
			return true, nil
		}
		return false, fmt.Errorf("process.cwd: chdir %s: %w", cwd, err)
	}
	got, err := unix.Getwd()
	if err != nil || !strings.HasPrefix(got, "/") {
		return false, fmt.Errorf("process.cwd: %s lies outside the container's root: possible container breakout detected", cwd)
	}
	return false, nil
}

// giveStdioTo makes uid the owner of the process's stdio before it becomes that user, as runc
// does: a terminal made by the runtime (or the pipes a caller such as containerd's shim
// passes) belongs to root, and the user could then not reopen it (/dev/stdout,
// /proc/self/fd/N) or set it up. Only the owner changes: the group stays, for a pty the tty
// group devpts gives it (gid=5 in runc's spec). /dev/null is left alone, and so is a
// descriptor the process may not chown (EPERM, EINVAL: not mapped in its user namespace;
// EROFS).
//
// inherited says the stdio is the caller's own, given to a foreground run or exec without a
// terminal: runc puts pipes of its own there, so only anonymous pipes and sockets (which
// stand in for them) change owner, never the caller's files, fifos or terminal.
func giveStdioTo(uid int, inherited bool) error {
	null := unix.Mkdev(1, 3)
	for fd := 0; fd < 3; fd++ {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return fmt.Errorf("stdio: fstat %d: %w", fd, err)
		}
		if int(st.Uid) == uid || st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == null {
			continue
		}
		if inherited {
			var fs unix.Statfs_t
			if unix.Fstatfs(fd, &fs) != nil || fs.Type != unix.PIPEFS_MAGIC && fs.Type != unix.SOCKFS_MAGIC {
				continue
			}
		}
		explain.Stepf("libcontainer.giveStdioTo", "fchown %d to uid %d (group kept)", fd, uid)
		if err := unix.Fchown(fd, uid, -1); err != nil {
			if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EROFS) {
				continue
			}
			return fmt.Errorf("stdio: fchown %d to uid %d: %w", fd, uid, err)
		}
	}
	return nil
}
