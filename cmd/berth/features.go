package main

import (
	"encoding/json"
	"errors"
	"sort"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/libcontainer"
	"github.com/berth-project/berth/namespaces"
	"github.com/berth-project/berth/seccomp"
)

// featuresCommand prints runtime-spec's features.md document. containerd runs it without
// global flags and reads mountOptions ("rro") and linux.namespaces + mountExtensions.idmap
// (user namespaces) from it. Every list says what berth does, not what the spec allows:
// namespaces, capabilities and the seccomp lists are found by asking the code that checks
// config.json whether it accepts each value the spec names.
var featuresCommand = &cli.Command{
	Name:  "features",
	Usage: "show the enabled features",
	Description: `Prints a JSON object (runtime-spec features.md): the OCI versions, mount options,
namespaces, capabilities, cgroup and seccomp support of this berth. An empty list means none
is supported; a missing field means unknown.`,
	Action: func(c *cli.Context) error {
		if c.NArg() != 0 {
			return errors.New(`"features" takes no arguments`)
		}
		data, err := featuresJSON(c.String("criu"))
		if err != nil {
			return err
		}
		_, err = c.App.Writer.Write(append(data, '\n'))
		return err
	},
}

// mountOptions are the options rootfs turns into mount flags, mount_setattr attributes or
// propagation (rootfs/options.go: mountFlags, recursiveAttrs, propagationFlags); any other
// option is passed to the filesystem as data.
var mountOptions = []string{
	// mount(2) flags
	"async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "iversion",
	"lazytime", "loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "noiversion",
	"nolazytime", "nomand", "norelatime", "nostrictatime", "nosuid", "nosymfollow", "rbind",
	"relatime", "remount", "ro", "rw", "silent", "strictatime", "suid", "symfollow", "sync",
	// recursive, through mount_setattr(2)
	"rro", "rrw", "rnosuid", "rsuid", "rnodev", "rdev", "rnoexec", "rexec", "rnodiratime",
	"rdiratime", "rnosymfollow", "rsymfollow", "rrelatime", "rnoatime", "rstrictatime",
	// propagation
	"private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable",
	// runc's: a tmpfs filled with what the image had at its destination
	"tmpcopyup",
}

// allCapabilities are the kernel's capabilities in number order.
var allCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
	"CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
	"CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

func featuresJSON(criuPath string) ([]byte, error) {
	tru, fals := true, false
	// runc's key, which crun also sets: "true" when a working criu is found here.
	ckpt := "false"
	if _, err := criuStatus(criuPath); err == nil {
		ckpt = "true"
	}
	// Applied when the host has the LSM, refused (naming the field) when it does not.
	apparmor, selinux := libcontainer.LSMs()
	sortedMounts := append([]string(nil), mountOptions...)
	sort.Strings(sortedMounts)
	f := features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		MountOptions:  sortedMounts,
		Annotations: map[string]string{
			"io.github.berth-project.berth.version":      version,
			"org.opencontainers.runc.checkpoint.enabled": ckpt,
		},
		// Annotations that change what berth does beyond the config's fields: systemd unit
		// properties (with --systemd-cgroup) and criu's configuration file for checkpoint and
		// restore (a prefix ends in ".", as runc lists them).
		PotentiallyUnsafeConfigAnnotations: []string{"org.systemd.property.", "org.criu.config"},
		Linux: &features.Linux{
			Namespaces:   supportedNamespaces(),
			Capabilities: supportedCapabilities(),
			Cgroup: &features.Cgroup{
				V1: &tru, V2: &tru, Systemd: &tru, SystemdUser: &fals, Rdma: &tru,
			},
			Seccomp:         supportedSeccomp(),
			Apparmor:        &features.Apparmor{Enabled: &apparmor},
			Selinux:         &features.Selinux{Enabled: &selinux},
			IntelRdt:        &features.IntelRdt{Enabled: &fals},
			MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: &tru}},
			NetDevices:      &features.NetDevices{Enabled: &fals},
		},
	}
	// features.Features has no memoryPolicy yet: it is added by hand.
	var doc map[string]any
	data, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	doc["hooks"] = []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}
	doc["linux"].(map[string]any)["memoryPolicy"] = map[string]any{
		"modes": []string{"MPOL_DEFAULT", "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE", "MPOL_PREFERRED", "MPOL_PREFERRED_MANY", "MPOL_LOCAL"},
		"flags": []string{"MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"},
	}
	return json.MarshalIndent(doc, "", "    ")
}

// supportedNamespaces asks namespaces.New which types it accepts beside a mount namespace.
func supportedNamespaces() []string {
	var out []string
	for _, t := range []specs.LinuxNamespaceType{specs.CgroupNamespace, specs.IPCNamespace,
		specs.MountNamespace, specs.NetworkNamespace, specs.PIDNamespace, specs.TimeNamespace,
		specs.UserNamespace, specs.UTSNamespace} {
		spec := &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.MountNamespace}}}}
		if t != specs.MountNamespace {
			spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: t})
		}
		if t == specs.UserNamespace {
			m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
			spec.Linux.UIDMappings, spec.Linux.GIDMappings = m, m
		}
		if _, err := namespaces.New(spec); err == nil {
			out = append(out, string(t))
		}
	}
	return out
}

// supportedCapabilities asks the process validator which names it knows.
func supportedCapabilities() []string {
	var out []string
	for _, c := range allCapabilities {
		p := &specs.Process{Args: []string{"true"}, Cwd: "/", Capabilities: &specs.LinuxCapabilities{Bounding: []string{c}}}
		if libcontainer.ValidateProcess(p) == nil {
			out = append(out, c)
		}
	}
	return out
}

// supportedSeccomp asks the seccomp compiler which actions, operators, architectures and
// flags it accepts; supportedFlags are the known flags this kernel also takes.
func supportedSeccomp() *features.Seccomp {
	tru := true
	s := &features.Seccomp{Enabled: &tru, Actions: []string{}, Operators: []string{}, Archs: []string{},
		KnownFlags: []string{}, SupportedFlags: []string{}}
	rule := func(a specs.LinuxSeccompAction, args ...specs.LinuxSeccompArg) *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: a, Args: args}}}
	}
	for _, a := range []specs.LinuxSeccompAction{specs.ActAllow, specs.ActErrno, specs.ActKill,
		specs.ActKillProcess, specs.ActKillThread, specs.ActLog, specs.ActNotify, specs.ActTrace, specs.ActTrap} {
		cfg := rule(a)
		if a == specs.ActNotify {
			cfg.ListenerPath = "/run/probe.sock"
		}
		if seccomp.Validate(cfg) == nil {
			s.Actions = append(s.Actions, string(a))
		}
	}
	for _, op := range []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpGreaterEqual, specs.OpGreaterThan,
		specs.OpLessEqual, specs.OpLessThan, specs.OpMaskedEqual, specs.OpNotEqual} {
		if seccomp.Validate(rule(specs.ActErrno, specs.LinuxSeccompArg{Index: 0, Value: 1, ValueTwo: 1, Op: op})) == nil {
			s.Operators = append(s.Operators, string(op))
		}
	}
	for _, a := range []specs.Arch{specs.ArchAARCH64, specs.ArchARM, specs.ArchLOONGARCH64, specs.ArchM68K,
		specs.ArchMIPS, specs.ArchMIPS64, specs.ArchMIPS64N32, specs.ArchMIPSEL, specs.ArchMIPSEL64,
		specs.ArchMIPSEL64N32, specs.ArchPARISC, specs.ArchPARISC64, specs.ArchPPC, specs.ArchPPC64,
		specs.ArchPPC64LE, specs.ArchRISCV64, specs.ArchS390, specs.ArchS390X, specs.ArchSH, specs.ArchSHEB,
		specs.ArchX32, specs.ArchX86, specs.ArchX86_64} {
		cfg := rule(specs.ActErrno)
		cfg.Architectures = []specs.Arch{a}
		if seccomp.Validate(cfg) == nil {
			s.Archs = append(s.Archs, string(a))
		}
	}
	for _, fl := range []struct {
		name specs.LinuxSeccompFlag
		bit  uintptr
	}{
		{"SECCOMP_FILTER_FLAG_TSYNC", unix.SECCOMP_FILTER_FLAG_TSYNC},
		{specs.LinuxSeccompFlagLog, unix.SECCOMP_FILTER_FLAG_LOG},
		{specs.LinuxSeccompFlagSpecAllow, unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW},
		{specs.LinuxSeccompFlagWaitKillableRecv, unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV},
	} {
		cfg := rule(specs.ActErrno)
		cfg.Flags = []specs.LinuxSeccompFlag{fl.name}
		if seccomp.Validate(cfg) != nil {
			continue
		}
		s.KnownFlags = append(s.KnownFlags, string(fl.name))
		if kernelSeccompFlag(fl.bit) {
			s.SupportedFlags = append(s.SupportedFlags, string(fl.name))
		}
	}
	return s
}

// kernelSeccompFlag says whether the kernel knows a filter flag: seccomp(2) with it and no
// program fails with EFAULT when the flag is known, EINVAL when not; nothing is installed.
func kernelSeccompFlag(bit uintptr) bool {
	flags := bit
	if bit == unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV {
		flags |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER // it is only valid with a listener
	}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(nil)))
	return errno == unix.EFAULT
}
