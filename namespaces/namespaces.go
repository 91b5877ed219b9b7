// Package namespaces owns the container's Linux namespaces: which ones config.json asks to
// create (turned into clone flags for the init process) and which existing ones it asks to join
// (by path), and the rules that make a combination valid.
package namespaces

import (
	"fmt"

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

// Plan is what the init process's namespaces will be.
type Plan struct {
	// CloneFlags are the namespaces created for the init process when it is cloned.
	CloneFlags uintptr
	// Join lists namespaces entered by path instead.
	Join []specs.LinuxNamespace
}

// Has says whether the container gets its own (new or joined) namespace of type t.
func (p Plan) Has(t specs.LinuxNamespaceType) bool {
	if p.CloneFlags&cloneFlag[t] != 0 {
		return true
	}
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
			p.CloneFlags |= flag
		} else {
			p.Join = append(p.Join, ns)
		}
	}
	if !p.Has(specs.MountNamespace) {
		return p, fmt.Errorf("linux.namespaces: a mount namespace is required (berth never builds a rootfs in the host's mount namespace)")
	}
	if len(p.Join) > 0 {
		return p, fmt.Errorf("linux.namespaces[%s].path: joining existing namespaces is not supported yet", p.Join[0].Type)
	}
	if spec.Hostname != "" && !p.Has(specs.UTSNamespace) {
		return p, fmt.Errorf("hostname: setting it needs a new uts namespace in linux.namespaces")
	}
	if spec.Domainname != "" && !p.Has(specs.UTSNamespace) {
		return p, fmt.Errorf("domainname: setting it needs a new uts namespace in linux.namespaces")
	}
	if !p.Has(specs.UserNamespace) && (len(spec.Linux.UIDMappings) > 0 || len(spec.Linux.GIDMappings) > 0) {
		return p, fmt.Errorf("linux.uidMappings: mappings need a user namespace in linux.namespaces")
	}
	if len(spec.Linux.TimeOffsets) > 0 && !p.Has(specs.TimeNamespace) {
		return p, fmt.Errorf("linux.timeOffsets: offsets need a time namespace in linux.namespaces")
	}
	return p, nil
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
