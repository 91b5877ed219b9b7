package namespaces

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
)

// byInit are the types the init's C constructor joins (user first, so that it holds
// privilege over the others, but for those it does not own: orderInit): user, mnt and time,
// which only a single-threaded process may enter; and cgroup, which must be entered once the
// process is in its group. With cgroup2 mounted nsdelegate (as systemd mounts it), clone3
// CLONE_INTO_CGROUP from a thread already in the container's cgroup namespace fails with
// ENOENT, since the cloner's own group lies outside that namespace.
var byInit = map[specs.LinuxNamespaceType]bool{
	specs.UserNamespace: true, specs.MountNamespace: true, specs.TimeNamespace: true,
	specs.CgroupNamespace: true,
}

// Handle is an open namespace file to be entered.
type Handle struct {
	Type specs.LinuxNamespaceType
	Path string
	File *os.File
	// BeforeUser: entered by the constructor before the joined user namespace, because that
	// namespace does not own it (see orderInit).
	BeforeUser bool
}

// Handles are a plan's namespace files, opened by the caller in the host's mount namespace
// (so that a path is resolved where the user wrote it) and checked to be of the right type.
type Handles struct {
	plan   Plan
	Thread []Handle // entered by EnterThread
	Init   []Handle // passed to the init's constructor (see InitEnv)
}

// Open opens every namespace a plan joins.
func (p Plan) Open() (*Handles, error) {
	h := &Handles{plan: p}
	for _, j := range p.Join {
		f, err := os.OpenFile(j.Path, os.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("linux.namespaces[%s].path: %w", j.Type, err)
		}
		t, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
		if err != nil || uintptr(t) != cloneFlag[j.Type] {
			f.Close()
			h.Close()
			return nil, fmt.Errorf("linux.namespaces[%s].path: %s is not a %s namespace", j.Type, oneLine(j.Path), j.Type)
		}
		hd := Handle{Type: j.Type, Path: j.Path, File: f}
		if byInit[j.Type] || p.ByInit || (j.Type == specs.PIDNamespace && p.PidByInit) {
			if j.Type == specs.UserNamespace {
				h.Init = append([]Handle{hd}, h.Init...)
			} else {
				h.Init = append(h.Init, hd)
			}
		} else {
			h.Thread = append(h.Thread, hd)
		}
	}
	h.orderInit()
	return h, nil
}

// orderInit moves ahead of a joined user namespace the constructor's namespaces that this user
// namespace does not own (neither it nor one of its descendants owns them). setns asks for
// CAP_SYS_ADMIN in the owner of the namespace joined, and once in the user namespace the
// process has privilege only there and below: a namespace owned by the caller's own user
// namespace must be entered before. So is the time namespace of a container that root made
// with a user namespace, which the cloning thread unshared to write its offsets (Plan.NewTime),
// and a pid namespace joined from the host by such a container. The rest (those the
// container's user namespace owns, all of them for a rootless caller, and a mount namespace)
// still come after it.
func (h *Handles) orderInit() {
	if len(h.Init) == 0 || h.Init[0].Type != specs.UserNamespace {
		return
	}
	var user unix.Stat_t
	if unix.Fstat(int(h.Init[0].File.Fd()), &user) != nil {
		return
	}
	var before, after []Handle
	for _, x := range h.Init[1:] {
		// A mount namespace stays after: the process could do nothing in one its user
		// namespace does not own, and setns then says so at once.
		if x.Type == specs.MountNamespace || ownedWithin(x.File, user) {
			after = append(after, x)
		} else {
			x.BeforeUser = true
			before = append(before, x)
		}
	}
	h.Init = append(append(before, h.Init[0]), after...)
}

// ownedWithin says whether the user namespace user, or one below it, owns the namespace
// file f. An owner the caller may not see (above its own user namespace) is not.
func ownedWithin(f *os.File, user unix.Stat_t) bool {
	fd, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_USERNS)
	if err != nil {
		return false
	}
	// User namespaces nest at most 32 deep.
	for depth := 0; depth <= 33; depth++ {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil {
			break
		}
		if st.Dev == user.Dev && st.Ino == user.Ino {
			unix.Close(fd)
			return true
		}
		parent, err := unix.IoctlRetInt(fd, unix.NS_GET_PARENT)
		if err != nil {
			break // EPERM: the caller's own user namespace, or above it
		}
		unix.Close(fd)
		fd = parent
	}
	unix.Close(fd)
	return false
}

// Close closes the namespace files (once the init has them, or on failure).
func (h *Handles) Close() {
	for _, l := range [][]Handle{h.Thread, h.Init} {
		for _, x := range l {
			x.File.Close()
		}
	}
}

// EnterThread joins the thread-level namespaces and creates a new time namespace with its
// offsets, on the calling OS thread only. The caller must hold that thread
// (runtime.LockOSThread) and never give it back to the Go scheduler: it now lives partly in
// the container's namespaces. Children cloned from it start there.
// ThreadBound says whether EnterThread has anything to do: if not, any thread may clone the
// init, and the caller's own will do.
func (h *Handles) ThreadBound() bool { return len(h.Thread) > 0 || h.plan.NewTime }

func (h *Handles) EnterThread() error {
	for _, x := range h.Thread {
		explain.Stepf("namespaces.EnterThread", "setns %s (%s): the init is cloned into it", x.Type, x.Path)
		if err := unix.Setns(int(x.File.Fd()), int(cloneFlag[x.Type])); err != nil {
			return fmt.Errorf("linux.namespaces[%s].path: joining %s: %w", x.Type, oneLine(x.Path), err)
		}
	}
	if h.plan.NewTime {
		explain.Stepf("namespaces.EnterThread", "unshare time namespace (for the init, its first member)")
		if err := unix.Unshare(unix.CLONE_NEWTIME); err != nil {
			return fmt.Errorf("linux.namespaces[time]: %w", err)
		}
		if offs := h.plan.offsets(); offs != "" {
			// The thread's own /proc/TID entry: its time_for_children is the new namespace.
			path := "/proc/" + strconv.Itoa(unix.Gettid()) + "/timens_offsets"
			explain.Stepf("namespaces.EnterThread", "write %q to %s", strings.TrimSpace(offs), path)
			if err := os.WriteFile(path, []byte(offs), 0); err != nil {
				return fmt.Errorf("linux.timeOffsets: %w", err)
			}
		}
	}
	return nil
}

// offsets is linux.timeOffsets in the form /proc/PID/timens_offsets takes.
func (p Plan) offsets() string {
	var b strings.Builder
	for _, clock := range []string{"monotonic", "boottime"} {
		if off, ok := p.TimeOffsets[clock]; ok {
			fmt.Fprintf(&b, "%s %d %d\n", clock, off.Secs, off.Nanosecs)
		}
	}
	return b.String()
}

// Environment through which the init's C constructor learns what to join and unshare.
const (
	EnvJoin    = "_BERTH_NS_JOIN"    // "user:5,mnt:6": type and inherited fd, in order
	EnvUnshare = "_BERTH_NS_UNSHARE" // clone flags, decimal
	EnvOffsets = "_BERTH_NS_OFFSETS" // timens_offsets to write after unsharing a time namespace
	EnvForkPid = "_BERTH_NS_FORKPID" // "1": fork after joining a pid namespace (Plan.PidByInit, Plan.ByInit)
)

// InitEnv describes the constructor's work; firstFd is the descriptor number the first of
// InitFiles will have in the init.
func (h *Handles) InitEnv(firstFd int) []string {
	var env []string
	if len(h.Init) > 0 {
		var parts []string
		for i, x := range h.Init {
			if x.BeforeUser {
				explain.Stepf("namespaces.InitEnv", "setns %s (%s): done by the init before Go starts, before the user namespace (which does not own it)", x.Type, x.Path)
			} else {
				explain.Stepf("namespaces.InitEnv", "setns %s (%s): done by the init before Go starts", x.Type, x.Path)
			}
			parts = append(parts, procName[x.Type]+":"+strconv.Itoa(firstFd+i))
		}
		env = append(env, EnvJoin+"="+strings.Join(parts, ","))
	}
	if h.plan.pidByInit() && h.plan.Joins(specs.PIDNamespace) {
		explain.Stepf("namespaces.InitEnv", "fork once every namespace is joined: the joined pid namespace holds only the joiner's children, so its child is the process (never in that pid namespace with the host's mounts)")
		env = append(env, EnvForkPid+"=1")
	}
	if h.plan.WaitForMaps {
		explain.Stepf("namespaces.InitEnv", "unshare user: done by the init, which waits for its maps (WriteIDMaps) and becomes root there before it unshares the rest")
	}
	if h.plan.UnshareFlags != 0 {
		explain.Stepf("namespaces.InitEnv", "unshare [%s]: done by the init once it is in its cgroup (and any joined user namespace)", strings.Join(Names(h.plan.UnshareFlags), " "))
		env = append(env, EnvUnshare+"="+strconv.FormatUint(uint64(h.plan.UnshareFlags), 10))
		if h.plan.UnshareFlags&unix.CLONE_NEWTIME != 0 && h.plan.offsets() != "" {
			env = append(env, EnvOffsets+"="+h.plan.offsets())
		}
		if h.plan.Forks() {
			explain.Stepf("namespaces.InitEnv", "fork: the new pid/time namespace holds only the unsharer's children, so its child is the init")
		}
	}
	return env
}

// InitFiles are the namespace files the init inherits, in InitEnv's order.
func (h *Handles) InitFiles() []*os.File {
	var out []*os.File
	for _, x := range h.Init {
		out = append(out, x.File)
	}
	return out
}
