package namespaces

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// SysctlName is a linux.sysctl key in its dotted form. A key may also be written as a path
// under /proc/sys ("net/ipv4/ip_forward"), which runc accepts: its first separator is then a
// slash, and dots and slashes trade places ("net/ipv4/conf/eth0.100/forwarding" is
// "net.ipv4.conf.eth0/100.forwarding", as sysctl.d(5) writes it).
func SysctlName(key string) string {
	if i := strings.IndexAny(key, "./"); i >= 0 && key[i] == '/' {
		return swapDotsSlashes(key)
	}
	return key
}

// SysctlPath is the file of a linux.sysctl key, relative to /proc/sys.
func SysctlPath(key string) string { return swapDotsSlashes(SysctlName(key)) }

func swapDotsSlashes(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, s)
}

// checkSysctls refuses sysctls that would change the host: each namespaced group of keys is
// only safe inside the container's own namespace of that kind, and the rest are not
// namespaced at all (runc's rules). In a uts namespace kernel.hostname is refused as runc
// refuses it, since the hostname field says the same thing, and kernel.domainname when the
// domainname field is set (as crun refuses it; runc 1.1.5 has no such field).
func checkSysctls(spec *specs.Spec, p Plan) error {
	for key := range spec.Linux.Sysctl {
		name := SysctlName(key)
		switch {
		case name == "kernel.msgmax" || name == "kernel.msgmnb" || name == "kernel.msgmni" || name == "kernel.sem" ||
			name == "kernel.shmall" || name == "kernel.shmmax" || name == "kernel.shmmni" || name == "kernel.shm_rmid_forced" ||
			strings.HasPrefix(name, "fs.mqueue."):
			if !p.Has(specs.IPCNamespace) {
				return fmt.Errorf("linux.sysctl[%s]: needs an ipc namespace in linux.namespaces", oneLine(key))
			}
		case strings.HasPrefix(name, "net."):
			if !p.Has(specs.NetworkNamespace) {
				return fmt.Errorf("linux.sysctl[%s]: needs a network namespace in linux.namespaces", oneLine(key))
			}
		case name == "kernel.hostname" || name == "kernel.domainname":
			if !p.Has(specs.UTSNamespace) {
				return fmt.Errorf("linux.sysctl[%s]: needs a uts namespace in linux.namespaces", oneLine(key))
			}
			if name == "kernel.hostname" {
				return fmt.Errorf("linux.sysctl[%s]: not allowed as it conflicts with the OCI \"hostname\" field", oneLine(key))
			}
			if spec.Domainname != "" {
				return fmt.Errorf("linux.sysctl[%s]: not allowed as it conflicts with the OCI \"domainname\" field", oneLine(key))
			}
		default:
			return fmt.Errorf("linux.sysctl[%s]: not namespaced, it would change the host", oneLine(key))
		}
	}
	return nil
}

// oneLine is s as it is, or quoted when it holds a character that would break a one-line
// error (a newline, a control character).
func oneLine(s string) string {
	if q := strconv.Quote(s); q[1:len(q)-1] != s {
		return q
	}
	return s
}
