// Package namespaces owns the container's Linux namespaces: which ones config.json asks to
// create and which existing ones it asks to join (by path), the rules that make a combination
// valid, and who does each step (see Plan).
package namespaces

import (
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// cloneFlag maps each namespace type to the flag that creates it.
var cloneFlag = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// procName is each type's name under /proc/PID/ns.
var procName = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace:     "pid",
	specs.NetworkNamespace: "net",
	specs.MountNamespace:   "mnt",
	specs.IPCNamespace:     "ipc",
	specs.UTSNamespace:     "uts",
	specs.UserNamespace:    "user",
	specs.CgroupNamespace:  "cgroup",
	specs.TimeNamespace:    "time",
}

// Plan is what the init process's namespaces will be, and who makes each one:
//
//   - CloneFlags: created by clone(2) when `berth create` starts the init.
//   - Join (net, uts, ipc, pid): entered by the thread of `berth create` that clones
//     the init, just before the clone; these setns calls only change that thread (pid and
//     time only its children's), so they are safe in a multi-threaded Go process and the
//     init inherits them.
//   - Join (user, mnt, time, cgroup): entered by the init's C constructor (libcontainer/nsenter),
//     before the Go runtime starts a second thread; the kernel refuses the first three to a
//     multi-threaded process, and cgroup is entered once the process is in its group (see
//     byInit).
//   - UnshareFlags: created by that constructor after it joined a user namespace, so that
//     the joined user namespace owns them (as runc does); and a new cgroup namespace always,
//     after the constructor joined the container's cgroup, so that it is rooted there.
//     New pid and time namespaces hold only the unsharer's children, so the constructor then
//     forks (CLONE_PARENT: the child is `berth create`'s own) and that child becomes the init.
//   - NewTime: a time namespace takes its offsets only before any process is in it, so the
//     cloning thread unshares it and writes the offsets; the init is its first member.
//   - WaitForMaps (rootless: berth's euid is not 0): the constructor unshares the new user
//     namespace itself (CLONE_NEWUSER is in UnshareFlags, with every other new namespace,
//     which must belong to it), asks `berth create` on the init pipe to write its maps
//     (WriteIDMaps, through newuidmap/newgidmap beyond the caller's own ids), waits, becomes
//     root there and unshares the rest. Go's clone can only write a map itself, which an
//     ordinary user may do for its own id alone. Root does the same when the constructor
//     joins a time or cgroup namespace: it joins them first, with the host's privilege, which
//     it would not hold over them once in the new user namespace (as runc's nsexec does).
//   - ByInit (rootless exec): every joined namespace is entered by the constructor, user
//     first: a thread of an unprivileged berth holds no CAP_SYS_ADMIN for setns(net, pid...)
//     until it is in the container's user namespace. A joined pid namespace then makes the
//     constructor fork too.
//   - PidByInit (every exec that joins a pid namespace): the pid namespace is entered by the
//     constructor too, not by the cloning thread, and the constructor forks once it has
//     joined the rest (mnt first of all): the process that comes into the container's pid
//     namespace is that fork. Were it cloned into the pid namespace, the container's processes
//     would see it while it still has the host's root, cwd and files (/proc/PID/root), until
//     its constructor joined the mount namespace; one with CAP_SYS_PTRACE could open them.
type Plan struct {
	CloneFlags   uintptr
	UnshareFlags uintptr
	Join         []specs.LinuxNamespace
	NewTime      bool
	TimeOffsets  map[string]specs.LinuxTimeOffset // for a new time namespace, either way
	WaitForMaps  bool
	UIDMappings  []specs.LinuxIDMapping // with WaitForMaps: what WriteIDMaps writes
	GIDMappings  []specs.LinuxIDMapping
	ByInit       bool
	PidByInit    bool
}

// Forks says whether the init's constructor forks the real init (see Plan).
func (p Plan) Forks() bool {
	return p.UnshareFlags&(unix.CLONE_NEWPID|unix.CLONE_NEWTIME) != 0 || (p.pidByInit() && p.Joins(specs.PIDNamespace))
}

// pidByInit says whether a joined pid namespace is entered by the constructor, which then forks.
func (p Plan) pidByInit() bool {
	return p.ByInit || p.PidByInit
}

// Has says whether the container gets its own (new or joined) namespace of type t.
func (p Plan) Has(t specs.LinuxNamespaceType) bool {
	if (p.CloneFlags|p.UnshareFlags)&cloneFlag[t] != 0 || (t == specs.TimeNamespace && p.NewTime) {
		return true
	}
	return p.Joins(t)
}

// Joins says whether the namespace of type t is an existing one, entered by path.
func (p Plan) Joins(t specs.LinuxNamespaceType) bool {
	for _, j := range p.Join {
		if j.Type == t {
			return true
		}
	}
	return false
}

// New reads linux.namespaces and checks it against the rest of the config.
func New(spec *specs.Spec) (Plan, error) {
	var p Plan
	seen := map[specs.LinuxNamespaceType]bool{}
	var newFlags uintptr
	for i, ns := range spec.Linux.Namespaces {
		flag, ok := cloneFlag[ns.Type]
		if !ok {
			return p, fmt.Errorf("linux.namespaces[%d].type: unknown namespace type %q", i, ns.Type)
		}
		if seen[ns.Type] {
			return p, fmt.Errorf("linux.namespaces[%d]: namespace %q listed twice", i, ns.Type)
		}
		seen[ns.Type] = true
		if ns.Path == "" {
			newFlags |= flag
		} else {
			p.Join = append(p.Join, ns)
		}
	}
	if newFlags&unix.CLONE_NEWTIME != 0 {
		p.NewTime, p.TimeOffsets = true, spec.Linux.TimeOffsets
		newFlags &^= unix.CLONE_NEWTIME
	}
	// A new cgroup namespace is rooted at the group its creator is in when it is made, so
	// it must be made after the init joined the container's group: the constructor does
	// both, in that order (runc does the same).
	cgroupNS := newFlags & unix.CLONE_NEWCGROUP
	newFlags &^= unix.CLONE_NEWCGROUP
	// Rootless: a user namespace with mappings an ordinary user cannot write through clone
	// (see Plan.WaitForMaps); the constructor makes it, then the rest inside it. Root too when
	// the constructor joins a time or cgroup namespace (byInit): cloned into the new user
	// namespace, it would hold no privilege over them (they belong to another), so it joins
	// them first and makes the user namespace after.
	newUser := newFlags&unix.CLONE_NEWUSER != 0 && !p.Joins(specs.UserNamespace)
	p.WaitForMaps = newUser && (os.Geteuid() != 0 || p.Joins(specs.TimeNamespace) || p.Joins(specs.CgroupNamespace))
	if p.WaitForMaps {
		p.UIDMappings, p.GIDMappings = spec.Linux.UIDMappings, spec.Linux.GIDMappings
		if len(p.Join) > 0 && os.Geteuid() != 0 {
			// A thread of an unprivileged berth may not setns (net, uts, ipc, pid) before
			// the init, and the init, in a user namespace of its own, may not either.
			return p, fmt.Errorf("linux.namespaces[%s].path: joining a namespace is not supported for a rootless container with a new user namespace", p.Join[0].Type)
		}
	}
	if p.Joins(specs.UserNamespace) || p.WaitForMaps {
		// Namespaces made after the join belong to the joined user namespace. New pid and
		// time namespaces only hold the unsharer's children: the constructor forks (Forks).
		p.UnshareFlags = newFlags
		if p.NewTime {
			p.UnshareFlags |= unix.CLONE_NEWTIME
			p.NewTime = false
		}
	} else {
		p.CloneFlags = newFlags
	}
	if newUser && p.Joins(specs.MountNamespace) {
		return p, fmt.Errorf("linux.namespaces: joining a mount namespace from a new user namespace is not possible (it would hold no privilege there)")
	}
	p.UnshareFlags |= cgroupNS
	// No mount namespace: the container inherits the host's (runtime.md), and rootfs builds
	// it under the rootfs on the host and chroots (see rootfs.Config.HostMountNS).
	if spec.Hostname != "" && !p.Has(specs.UTSNamespace) {
		return p, fmt.Errorf("hostname: setting it needs a new uts namespace in linux.namespaces")
	}
	if spec.Domainname != "" && !p.Has(specs.UTSNamespace) {
		return p, fmt.Errorf("domainname: setting it needs a new uts namespace in linux.namespaces")
	}
	if os.Geteuid() != 0 && newFlags&unix.CLONE_NEWUSER == 0 && !p.Joins(specs.UserNamespace) {
		return p, fmt.Errorf("linux.namespaces: a rootless container (berth runs as uid %d) needs a user namespace (see berth spec --rootless)", os.Geteuid())
	}
	if len(spec.Linux.UIDMappings) > 0 || len(spec.Linux.GIDMappings) > 0 {
		if newFlags&unix.CLONE_NEWUSER == 0 || p.Joins(specs.UserNamespace) {
			return p, fmt.Errorf("linux.uidMappings: mappings need a new user namespace in linux.namespaces")
		}
	}
	if newFlags&unix.CLONE_NEWUSER != 0 && !p.Joins(specs.UserNamespace) {
		if len(spec.Linux.UIDMappings) == 0 || len(spec.Linux.GIDMappings) == 0 {
			return p, fmt.Errorf("linux.uidMappings: a new user namespace needs uidMappings and gidMappings")
		}
	}
	if len(spec.Linux.TimeOffsets) > 0 && !p.NewTime && p.UnshareFlags&unix.CLONE_NEWTIME == 0 {
		return p, fmt.Errorf("linux.timeOffsets: offsets need a new time namespace in linux.namespaces")
	}
	for clock := range spec.Linux.TimeOffsets {
		if clock != "monotonic" && clock != "boottime" {
			return p, fmt.Errorf("linux.timeOffsets: unknown clock %q (monotonic or boottime)", clock)
		}
	}
	if err := checkSysctls(spec, p); err != nil {
		return p, err
	}
	return p, nil
}

// ForExec plans how a process joins every namespace of a running container whose init is
// pid: each type the config lists is entered through /proc/PID/ns.
// An unprivileged caller has every namespace entered by the init's constructor, after the
// user namespace (Plan.ByInit).
func ForExec(spec *specs.Spec, pid int) Plan {
	var p Plan
	for _, ns := range spec.Linux.Namespaces {
		p.Join = append(p.Join, specs.LinuxNamespace{Type: ns.Type, Path: fmt.Sprintf("/proc/%d/ns/%s", pid, procName[ns.Type])})
	}
	// A container made by root of a user namespace its config does not list (an ordinary
	// user's run --image, made in a user namespace of its own) is joined through that
	// namespace first: its other namespaces belong to it. That namespace is the owner of the
	// init's pid namespace, which is fixed at its creation, and not the init's own user
	// namespace: the init may unshare one of its own (whose maps and members the container
	// controls), which root's exec must not join (runc joins only what the config lists) and
	// which owns none of the container's other namespaces.
	if !p.Joins(specs.UserNamespace) {
		if owner := pidNSOwner(pid); owner != "" {
			p.Join = append([]specs.LinuxNamespace{{Type: specs.UserNamespace, Path: owner}}, p.Join...)
		}
	}
	p.ByInit = os.Geteuid() != 0 && p.Joins(specs.UserNamespace)
	// The exec'd process must not be in the container's pid namespace before it is in its
	// mount namespace (see Plan.PidByInit).
	p.PidByInit = p.Joins(specs.PIDNamespace)
	return p
}

// Names spells a set of clone flags out for --explain.
func Names(flags uintptr) []string {
	var out []string
	for _, t := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.MountNamespace, specs.UTSNamespace, specs.IPCNamespace, specs.NetworkNamespace, specs.UserNamespace, specs.CgroupNamespace, specs.TimeNamespace} {
		if flags&cloneFlag[t] != 0 {
			out = append(out, string(t))
		}
	}
	return out
}

// pidNSOwner is a path to the user namespace that owns process pid's pid namespace when it
// is not the caller's (a descriptor of this process, open close-on-exec for the rest of the
// command), "" when it is the caller's or cannot be told.
func pidNSOwner(pid int) string {
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/pid", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return ""
	}
	defer unix.Close(fd)
	owner, err := unix.IoctlRetInt(fd, unix.NS_GET_USERNS)
	if err != nil {
		return "" // EPERM: the owner is an ancestor of the caller's (not joinable anyway)
	}
	var st unix.Stat_t
	if unix.Fstat(owner, &st) != nil || st.Ino == nsInode("/proc/self/ns/user") {
		unix.Close(owner)
		return ""
	}
	return fmt.Sprintf("/proc/self/fd/%d", owner)
}

// nsInode is the inode of a namespace file (0 if it cannot be read).
func nsInode(p string) uint64 {
	var st unix.Stat_t
	if unix.Stat(p, &st) != nil {
		return 0
	}
	return st.Ino
}
