package libcontainer

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
	"github.com/berth-project/berth/internal/rawfile"
)

// capByName knows every capability the kernel headers name.
var capByName = map[string]uint{
	"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
	"CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
	"CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
	"CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
	"CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
	"CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
	"CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
	"CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
	"CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
	"CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
	"CAP_CHECKPOINT_RESTORE": 40,
}

// dropUnknownCapabilities takes out of every set of c the names that berth does not know or
// the running kernel does not have, and warns about them once, as runc does ("ignoring
// unknown or unavailable capabilities: [...]"): a config written for a newer kernel still
// runs, without what this one cannot give. Names are matched exactly (runc's rule:
// "cap_chown" is unknown).
func dropUnknownCapabilities(c *specs.LinuxCapabilities) {
	if c == nil {
		return
	}
	last := lastCap()
	unknown := map[string]bool{}
	for _, set := range []*[]string{&c.Bounding, &c.Effective, &c.Inheritable, &c.Permitted, &c.Ambient} {
		var keep []string
		for _, n := range *set {
			if cp, ok := capByName[n]; ok && cp <= last {
				keep = append(keep, n)
			} else {
				unknown[n] = true
			}
		}
		if len(keep) < len(*set) {
			*set = keep
		}
	}
	if len(unknown) == 0 {
		return
	}
	names := make([]string, 0, len(unknown))
	for n := range unknown {
		names = append(names, n)
	}
	sort.Strings(names)
	logrus.Warnf("ignoring unknown or unavailable capabilities: [%s]", strings.Join(names, " "))
}

// capMask turns a list of names into the kernel's 64-bit mask (dropUnknownCapabilities has
// taken the unknown ones out).
func capMask(names []string) uint64 {
	var m uint64
	for _, n := range names {
		if cp, ok := capByName[n]; ok {
			m |= 1 << cp
		}
	}
	return m
}

// lastCap is the highest capability the running kernel knows (read once per process).
var lastCap = sync.OnceValue(func() uint {
	data, err := rawfile.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 40
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 40
	}
	return uint(n)
})

// dropBoundingSet removes from the bounding set every capability not listed, so that no
// later execve (of a setuid or file-capable binary) can gain it back.
func dropBoundingSet(c *specs.LinuxCapabilities, last uint) error {
	keep := capMask(c.Bounding)
	var dropped []string
	for cp := uint(0); cp <= last; cp++ {
		if keep&(1<<cp) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(cp), 0, 0, 0); err != nil {
			if err == unix.EINVAL {
				continue
			}
			return fmt.Errorf("process.capabilities.bounding: dropping capability %d: %w", cp, err)
		}
		dropped = append(dropped, capName(cp))
	}
	if explain.Enabled() {
		explain.Stepf("libcontainer.dropBoundingSet", "prctl(PR_CAPBSET_DROP) for %d capabilities: %s", len(dropped), strings.Join(dropped, " "))
	}
	return nil
}

// setCapabilities sets the effective, permitted and inheritable sets of this thread, then
// raises the ambient ones. It runs on the thread that will execve.
func setCapabilities(c *specs.LinuxCapabilities) error {
	eff, perm, inh := capMask(c.Effective), capMask(c.Permitted), capMask(c.Inheritable)
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(eff), Permitted: uint32(perm), Inheritable: uint32(inh)},
		{Effective: uint32(eff >> 32), Permitted: uint32(perm >> 32), Inheritable: uint32(inh >> 32)},
	}
	explain.Stepf("libcontainer.setCapabilities", "capset effective=%s permitted=%s inheritable=%s",
		capList(c.Effective), capList(c.Permitted), capList(c.Inheritable))
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("process.capabilities: capset: %w", err)
	}
	// The kernel raises an ambient capability only if it is permitted and inheritable too.
	// `runc spec` (1.1.x) lists ambient capabilities without inheritable ones, and runc raises
	// what it can and leaves the rest: so does berth, so that such bundles run.
	for _, n := range c.Ambient {
		cp, ok := capByName[n]
		if !ok {
			continue
		}
		if perm&inh&(1<<cp) == 0 {
			explain.Stepf("libcontainer.setCapabilities", "ambient %s left out: not both permitted and inheritable", n)
			continue
		}
		explain.Stepf("libcontainer.setCapabilities", "prctl(PR_CAP_AMBIENT_RAISE, %s)", n)
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(cp), 0, 0); err != nil {
			return fmt.Errorf("process.capabilities.ambient: %s: %w", n, err)
		}
	}
	return nil
}

func capName(cp uint) string {
	for n, v := range capByName {
		if v == cp {
			return n
		}
	}
	return "CAP_" + strconv.Itoa(int(cp))
}

func capList(l []string) string {
	if len(l) == 0 {
		return "(none)"
	}
	return strings.Join(l, ",")
}
