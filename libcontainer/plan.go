package libcontainer

// The init's plan: when a container's config allows it, `berth create` writes everything the
// init would do as ops (internal/initplan) and the init's C stage (nsenter/plan*.c) does them
// before any Go runtime starts, then executes the user's program. No second Go runtime starts
// per container (docs/performance.md). Whatever the plan does not cover keeps the Go init
// (runInit), chosen per container by planReason; BERTH_GO_INIT=1 in berth's environment
// always chooses the Go init.

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/cgroups"
	"github.com/berth-project/berth/internal/explain"
	"github.com/berth-project/berth/internal/initplan"
	"github.com/berth-project/berth/namespaces"
	"github.com/berth-project/berth/rootfs"
	"github.com/berth-project/berth/seccomp"
)

// envPlan tells the init's constructor that a plan, not a JSON config, comes on the pipe.
const envPlan = "_BERTH_PLAN"

// planReason is why the Go init must build this container, or "" when the C stage can.
// rc is the rootfs config as the init would get it (its SourceFds need only name the mounts).
func planReason(spec *specs.Spec, o CreateOpts, plan namespaces.Plan, rc *rootfs.Config) string {
	if os.Getenv("BERTH_GO_INIT") == "1" {
		return "BERTH_GO_INIT=1"
	}
	p := spec.Process
	switch {
	case explain.Timing():
		return "--explain=html draws the Go init's timeline"
	case explain.Enabled() && len(spec.Linux.TimeOffsets) > 0:
		return "--explain in a time namespace with offsets"
	case p.Terminal:
		return "process.terminal"
	case spec.Hooks != nil && len(spec.Hooks.Prestart)+len(spec.Hooks.CreateRuntime)+len(spec.Hooks.CreateContainer)+len(spec.Hooks.StartContainer) > 0:
		return "hooks run by the init"
	case p.ApparmorProfile != "" || p.SelinuxLabel != "":
		return "an LSM label"
	case p.Scheduler != nil || p.IOPriority != nil || p.ExecCPUAffinity != nil:
		return "process.scheduler, ioPriority or execCPUAffinity"
	case spec.Linux.Personality != nil || spec.Linux.MemoryPolicy != nil:
		return "linux.personality or memoryPolicy"
	case o.Detach && !mountsProc(spec):
		return "no /proc mount (the exec fifo needs a private procfs)"
	case plan.WaitForMaps:
		return "a rootless user namespace"
	case spec.Linux.Seccomp != nil && seccompNotifies(spec.Linux.Seccomp):
		return "a seccomp NOTIFY action"
	case len(p.Args) == 0:
		return "no process.args"
	case specHasNUL(spec):
		// The C stage reads its texts as C strings: one would be cut short there, where the
		// Go init refuses it.
		return "a NUL byte in a text of the config"
	}
	if err := rootfs.Check(rc); err != nil {
		return strings.TrimPrefix(err.Error(), rootfs.ErrNoPlan.Error()+": ")
	}
	return ""
}

// execPlanReason is planReason for `berth exec`: why the exec'd process needs the Go init
// (runExec), or "". spec is execSpec's (the container's config with the exec'd process).
func execPlanReason(spec *specs.Spec, plan namespaces.Plan, execRoot string) string {
	if os.Getenv("BERTH_GO_INIT") == "1" {
		return "BERTH_GO_INIT=1"
	}
	p := spec.Process
	switch {
	case explain.Timing():
		return "--explain=html draws the Go init's timeline"
	case explain.Enabled() && plan.Has(specs.TimeNamespace):
		return "--explain in the container's time namespace"
	case p.Terminal:
		return "process.terminal"
	case p.ApparmorProfile != "" || p.SelinuxLabel != "":
		return "an LSM label"
	case p.Scheduler != nil || p.IOPriority != nil || p.ExecCPUAffinity != nil:
		return "process.scheduler, ioPriority or execCPUAffinity"
	case spec.Linux != nil && spec.Linux.Seccomp != nil && seccompNotifies(spec.Linux.Seccomp):
		return "a seccomp NOTIFY action"
	case execRoot != "":
		return "no mount namespace to join (chroot)"
	case len(p.Args) == 0:
		return "no process.args"
	}
	for _, t := range append(append([]string{p.Cwd}, p.Args...), p.Env...) {
		if strings.IndexByte(t, 0) >= 0 {
			return "a NUL byte in a text of the process"
		}
	}
	return ""
}

// specHasNUL says whether a text the plan carries holds a NUL byte.
func specHasNUL(spec *specs.Spec) bool {
	p := spec.Process
	l := append(append(append([]string{p.Cwd, spec.Hostname, spec.Domainname}, p.Args...), p.Env...),
		append(spec.Linux.MaskedPaths, spec.Linux.ReadonlyPaths...)...)
	for _, m := range spec.Mounts {
		l = append(append(l, m.Destination, m.Source, m.Type), m.Options...)
	}
	for _, d := range spec.Linux.Devices {
		l = append(l, d.Path)
	}
	for k, v := range spec.Linux.Sysctl {
		l = append(l, k, v)
	}
	if spec.Root != nil {
		l = append(l, spec.Root.Path)
	}
	for _, s := range l {
		if strings.IndexByte(s, 0) >= 0 {
			return true
		}
	}
	return false
}

func seccompNotifies(s *specs.LinuxSeccomp) bool {
	if s.DefaultAction == specs.ActNotify {
		return true
	}
	for _, r := range s.Syscalls {
		if r.Action == specs.ActNotify {
			return true
		}
	}
	return false
}

// buildPlan writes what runInit and dropAndHandOver do for cfg, in their order. initEnv is the
// init's environment (for the constructor's step), cgroupDirs the container's own groups.
func buildPlan(cfg *initConfig, initEnv []string, cgroupDirs []string) ([]byte, error) {
	spec := cfg.Spec
	proc := spec.Process
	w := &initplan.Writer{Explain: cfg.Explain}
	if cfg.Explain {
		w.Op(initplan.OpStepStart).J("libcontainer.runInit").Jf("nsexec container setup, done by the nsenter constructor: %s", summaryOf(initEnv))
		w.Op(initplan.OpStepPid).J("libcontainer.runInit").J("child process in init(): berth init, pid ").J(", builds the container in its C stage from berth's plan (no Go runtime)")
	}
	var filter *seccomp.Filter
	if spec.Linux != nil && spec.Linux.Seccomp != nil {
		f, err := seccomp.Compile(spec.Linux.Seccomp)
		if err != nil {
			return nil, err
		}
		filter = f
	}
	if !cfg.Exec {
		if err := planContainer(w, cfg, cgroupDirs); err != nil {
			return nil, err
		}
	} else {
		// runExec's part before the process's own: its rlimits.
		planRlimits(w, proc.Rlimits)
	}
	planProcess(w, cfg, filter)
	return w.Bytes(), nil
}

// planContainer writes what runInit does for a new container before the process's own setup:
// oom_score_adj, rlimits, the rootfs, sysctls, hostname, keyring.
func planContainer(w *initplan.Writer, cfg *initConfig, cgroupDirs []string) error {
	spec := cfg.Spec
	proc := spec.Process
	w.Op(initplan.OpUmask).U(0)
	if proc.OOMScoreAdj != nil {
		w.Step("libcontainer.runInit", "echo %d > /proc/self/oom_score_adj", *proc.OOMScoreAdj)
		w.Op(initplan.OpWriteFile).S("/proc/self/oom_score_adj").S(strconv.Itoa(*proc.OOMScoreAdj)).J("process.oomScoreAdj")
	}
	planRlimits(w, proc.Rlimits)
	rp := rootfs.Planner{W: w, CgroupGroups: cgroupDirs,
		BeforePivot: func(w *initplan.Writer) {
			w.Op(initplan.OpMakeCwd).S(proc.Cwd).Jf("mkdir -p %s (process.cwd, inside the rootfs)", proc.Cwd).Jf("process.cwd: creating %s", proc.Cwd)
		},
		AfterPivot: func(w *initplan.Writer) {
			for k, v := range spec.Linux.Sysctl {
				rel := namespaces.SysctlPath(k)
				w.Step("libcontainer.setSysctls", "echo %s > /proc/sys/%s", v, rel)
				w.Op(initplan.OpSysctl).S(rel).S(v).Jf("linux.sysctl[%q]", k)
			}
		},
	}
	if err := rp.Setup(&cfg.Rootfs); err != nil {
		return err
	}
	w.Op(initplan.OpReopenDevNull)
	rp.Finish()
	if spec.Hostname != "" {
		w.Step("libcontainer.setHostnames", "sethostname %q", spec.Hostname)
		w.Op(initplan.OpHostname).S(spec.Hostname).J("hostname")
	}
	if spec.Domainname != "" {
		w.Step("libcontainer.setHostnames", "setdomainname %q", spec.Domainname)
		w.Op(initplan.OpDomainname).S(spec.Domainname).J("domainname")
	}
	if !cfg.NoNewKeyring {
		w.Step("libcontainer.runInit", "keyctl(KEYCTL_JOIN_SESSION_KEYRING, \"_ses.berth\")")
		w.Op(initplan.OpKeyring).J("joining a new session keyring")
	}
	return nil
}

func planRlimits(w *initplan.Writer, rl []specs.POSIXRlimit) {
	for i, r := range rl {
		w.Step("libcontainer.setRlimits", "prlimit %s soft=%d hard=%d", r.Type, r.Soft, r.Hard)
		w.Op(initplan.OpRlimit).U(uint64(rlimitByName[r.Type])).U(r.Soft).U(r.Hard).Jf("process.rlimits[%d] (%s)", i, r.Type)
	}
}

// planProcess writes the process's own setup, common to the init and an exec'd process:
// HOME, the program's path, cwd, seccomp, the drop to the user's credentials, the hand-over,
// and the execve (after `berth start`, for a created container).
func planProcess(w *initplan.Writer, cfg *initConfig, filter *seccomp.Filter) {
	proc := cfg.Spec.Process
	w.Op(initplan.OpEnv).Strings(proc.Env)
	w.Op(initplan.OpHome).U(uint64(proc.User.UID))
	w.Op(initplan.OpArgs).Strings(proc.Args)
	w.Op(initplan.OpLookPath).S(proc.Args[0])
	w.Step("libcontainer.enterCwd", "chdir %s", proc.Cwd)
	w.Op(initplan.OpCwd).S(proc.Cwd)
	if cfg.FifoFd >= 0 {
		w.Op(initplan.OpFdDir)
		w.Step("libcontainer.waitForStart", "the init's C stage will block opening exec.fifo until `berth start` (no exec before it)")
	}
	installed := false
	install := func(why string) {
		if filter == nil || installed {
			return
		}
		installed = true
		w.Op(initplan.OpSeccomp).S(string(filterBytes(filter))).U(uint64(filter.Flags())).
			Jf("seccomp(SECCOMP_SET_MODE_FILTER): %d BPF instructions, flags %#x (%s)", len(filter.Instructions()), filter.Flags(), why)
	}
	if !proc.NoNewPrivileges {
		install("before capabilities drop: without no_new_privs it needs CAP_SYS_ADMIN")
	}
	caps := proc.Capabilities
	if caps != nil {
		last := lastCap()
		keep := capMask(caps.Bounding)
		if cfg.Explain {
			var dropped []string
			for cp := uint(0); cp <= last; cp++ {
				if keep&(1<<cp) == 0 {
					dropped = append(dropped, capName(cp))
				}
			}
			w.Step("libcontainer.dropBoundingSet", "prctl(PR_CAPBSET_DROP) for %d capabilities: %s", len(dropped), strings.Join(dropped, " "))
		}
		w.Op(initplan.OpCapBound).U(keep).U(uint64(last))
		w.Op(initplan.OpKeepCaps).U(1)
	}
	w.Op(initplan.OpStdio).U(uint64(proc.User.UID)).U(b2u(cfg.ConsoleFd < 0 && !cfg.Detached))
	w.Op(initplan.OpUser).U(uint64(proc.User.UID)).U(uint64(proc.User.GID)).U(b2u(cfg.Setgroups)).U(uint64(len(proc.User.AdditionalGids)))
	for _, g := range proc.User.AdditionalGids {
		w.U(uint64(g))
	}
	w.Op(initplan.OpCwdAsUser).S(proc.Cwd)
	if proc.User.Umask != nil {
		w.Op(initplan.OpUmask).U(uint64(*proc.User.Umask))
	} else {
		w.Op(initplan.OpUmask).U(0o022)
	}
	if caps != nil {
		w.Op(initplan.OpKeepCaps).U(0)
		eff, perm, inh := capMask(caps.Effective), capMask(caps.Permitted), capMask(caps.Inheritable)
		w.Step("libcontainer.setCapabilities", "capset effective=%s permitted=%s inheritable=%s", capList(caps.Effective), capList(caps.Permitted), capList(caps.Inheritable))
		w.Op(initplan.OpCapSet).U(eff).U(perm).U(inh)
		for _, n := range caps.Ambient {
			cp, ok := capByName[n]
			if !ok {
				continue
			}
			if perm&inh&(1<<cp) == 0 {
				w.Step("libcontainer.setCapabilities", "ambient %s left out: not both permitted and inheritable", n)
				continue
			}
			w.Step("libcontainer.setCapabilities", "prctl(PR_CAP_AMBIENT_RAISE, %s)", n)
			w.Op(initplan.OpAmbient).U(uint64(cp)).Jf("process.capabilities.ambient: %s", n)
		}
	}
	if proc.NoNewPrivileges {
		w.Step("libcontainer.finalizeProcess", "prctl(PR_SET_NO_NEW_PRIVS): setuid bits and file capabilities stop working")
		w.Op(initplan.OpNoNewPrivs)
	}
	if cfg.Explain {
		// The words before the colon are what runc's suite looks for.
		done := "init: closing the pipe to signal completion"
		if cfg.Exec {
			done = "setns_init: about to exec"
		}
		w.Op(initplan.OpStepPath).J("libcontainer.execUser").Jf("%s: close-on-exec every fd above %d, then execve ", done, 2+cfg.PreserveFds).Jf(" %q", proc.Args)
	}
	w.Op(initplan.OpReady).U(b2u(cfg.Detached))
	w.Op(initplan.OpCloexec).U(uint64(3 + cfg.PreserveFds))
	install("last step before exec")
	w.Op(initplan.OpExec).U(uint64(cfg.PreserveFds)).I(cfg.FifoFd)
}

// filterBytes is the BPF program as the kernel reads a struct sock_filter array.
func filterBytes(f *seccomp.Filter) []byte {
	ins := f.Instructions()
	out := make([]byte, 0, 8*len(ins))
	for _, i := range ins {
		out = binary.LittleEndian.AppendUint16(out, i.Code)
		out = append(out, i.Jt, i.Jf)
		out = binary.LittleEndian.AppendUint32(out, i.K)
	}
	return out
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// summaryOf is nsenterSummary for the environment berth gives the init.
func summaryOf(env []string) string {
	get := func(k string) string {
		for _, e := range env {
			if v, ok := strings.CutPrefix(e, k+"="); ok {
				return v
			}
		}
		return ""
	}
	var parts []string
	if v := get(envCgroupFds); v != "" {
		parts = append(parts, "joined its cgroups (wrote 0 to the tasks files on fds "+v+")")
	}
	if v := get(namespaces.EnvJoin); v != "" {
		parts = append(parts, "setns "+v)
	}
	if v := get(namespaces.EnvUnshare); v != "" {
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			v = fmt.Sprintf("%#x", n)
		}
		parts = append(parts, "unshare flags "+v)
	}
	if len(parts) == 0 {
		return "nothing to do (the clone made its namespaces)"
	}
	return strings.Join(parts, "; ")
}

// sendPlan sends the plan on the init pipe (its own framing: no JSON).
func (p *initPipe) sendPlan(b []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := p.f.Write(b)
	return err
}

// cgroupDirsOf lists the container's own cgroup directories on the host.
func cgroupDirsOf(cg cgroups.Manager) []string {
	var dirs []string
	for _, f := range cg.JoinFiles() {
		dirs = append(dirs, filepath.Dir(f))
	}
	if d, ok := cloneIntoDir(cg); ok {
		dirs = append(dirs, d)
	}
	return dirs
}
