package rootfs

// The rootfs part of the init's plan: what Setup and Finish do, written as ops for the C stage
// (libcontainer/nsenter/plan_rootfs.c) instead of done, in the same order, with the same
// explain steps and errors. A config the plan does not cover gets ErrNoPlan and the Go init.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/initplan"
	"github.com/berth-project/berth/internal/mountinfo"
)

// ErrNoPlan says what of a config the init's C stage does not do (the Go init does it).
var ErrNoPlan = errors.New("not in the init's plan")

func noPlan(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrNoPlan, fmt.Sprintf(format, a...))
}

// Planner writes Setup's and Finish's ops. BeforePivot and AfterPivot write the ops of the
// config's callbacks at the same points.
type Planner struct {
	W           *initplan.Writer
	BeforePivot func(w *initplan.Writer)
	AfterPivot  func(w *initplan.Writer)
	// CgroupGroups are the container's own cgroup directories on the host (one per v1
	// hierarchy it joins, and a cgroup2 group it is cloned into): a v1 cgroup mount binds them.
	CgroupGroups []string

	readonlyLater []laterRO
}

// Check says whether c can be planned, without writing anything (before the init exists:
// the descriptors of c.SourceFds need only be present).
func Check(c *Config) error {
	p := Planner{W: &initplan.Writer{Discard: true}}
	return p.Setup(c)
}

// Setup writes Setup's ops.
func (p *Planner) Setup(c *Config) error {
	if c.HostMountNS {
		return noPlan("no mount namespace")
	}
	if c.NoPivot {
		return noPlan("--no-pivot")
	}
	w := p.W
	flag := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if c.Propagation != "" {
		f, err := PropagationFlag(c.Propagation)
		if err != nil {
			return noPlan("%v", err)
		}
		flag = f
	}
	w.Step("rootfs.setRootPropagation", "mount --make-%s / so nothing mounted here reaches the host", propagationName(flag))
	w.Op(initplan.OpMountRoot).U(uint64(flag)).Jf("making / %s", propagationName(flag))
	if c.Propagation == "shared" || c.Propagation == "rshared" {
		mounts, err := mountinfo.Read()
		if err != nil {
			return noPlan("mountinfo: %v", err)
		}
		if parent, ok := mountinfo.Containing(mounts, c.Rootfs); ok {
			// The Go init looks after its make-shared of /: rshared makes every mount
			// shared, shared makes / so.
			shared := c.Propagation == "rshared" || parent.Point == "/"
			for _, o := range parent.Optional {
				shared = shared || strings.HasPrefix(o, "shared:")
			}
			if shared {
				w.Step("rootfs.parentMountPrivate", "mount --make-private %s (pivot_root refuses a shared parent)", parent.Point)
				w.Op(initplan.OpMakePrivate).S(parent.Point).Jf("making %s private for pivot_root", parent.Point)
			}
		}
	}
	w.Step("rootfs.bindRootfs", "mount --rbind %s %s (pivot_root needs a mount point)", c.Rootfs, c.Rootfs)
	w.Op(initplan.OpBindRootfs).S(c.Rootfs).J("root.path")
	hasDev := false
	for i := range c.Mounts {
		srcFd, ok := c.SourceFds[i]
		if !ok {
			srcFd = -1
		}
		if err := p.mountEntry(c, i, &c.Mounts[i], srcFd); err != nil {
			return err
		}
		if c.Mounts[i].Destination == "/dev" {
			hasDev = true
		}
	}
	if hasDev {
		if err := p.createDevices(c.Devices, c.UserNS); err != nil {
			return err
		}
	} else if err := p.configDevices(c.Devices, c.UserNS); err != nil {
		return err
	}
	if p.BeforePivot != nil {
		p.BeforePivot(w)
	}
	w.Step("rootfs.pivotRoot", "pivot_root %s (the rootfs becomes /)", c.Rootfs)
	w.Op(initplan.OpPivotRoot).S(c.Rootfs).Jf("pivot_root %s", c.Rootfs).J("umount -l (old root): the host's filesystem is gone from the container")
	w.Op(initplan.OpReopenRoot)
	if p.AfterPivot != nil {
		p.AfterPivot(w)
	}
	for i, path := range c.MaskedPaths {
		w.Op(initplan.OpMask).S(path).Jf("linux.maskedPaths[%d] (%s)", i, path).
			Jf("mount -t tmpfs -o ro tmpfs %s (hide a directory)", path).Jf("mount --bind /dev/null %s (hide a file)", path)
	}
	for i, path := range c.ReadonlyPaths {
		w.Op(initplan.OpReadonlyPath).S(path).Jf("linux.readonlyPaths[%d] (%s)", i, path).
			Jf("mount --rbind %s %s && mount -o remount,bind,ro %s", path, path, path)
	}
	if c.Readonly {
		w.Step("rootfs.remountRootReadonly", "mount -o remount,bind,ro / (root.readonly)")
		w.Op(initplan.OpRootReadonly).J("root.readonly")
	}
	if c.Propagation != "" {
		w.Step("rootfs.Setup", "mount --make-%s / (linux.rootfsPropagation)", c.Propagation)
		w.Op(initplan.OpMountRoot).U(uint64(flag)).J("linux.rootfsPropagation")
	}
	return nil
}

// Finish writes Finish's ops: the read-only tmpfs mounts remounted once what is under them
// exists.
func (p *Planner) Finish() {
	for _, l := range p.readonlyLater {
		p.W.Step("rootfs.Finish", "mount -o remount,bind,ro %s (made read-only once what is under it exists)", l.dest)
		p.W.Op(initplan.OpRemountBind).S(l.dest).U(uint64(l.flags | unix.MS_RDONLY)).J("")
	}
}

func (p *Planner) mountEntry(c *Config, i int, m *specs.Mount, srcFd int) error {
	if !filepath.IsAbs(m.Destination) {
		return noPlan("mounts[%d]: relative destination", i)
	}
	w := p.W
	at := fmt.Sprintf("mounts[%d] (%s)", i, m.Destination)
	o := parseOptions(m.Options)
	isBind := o.flags&unix.MS_BIND != 0 || m.Type == "bind"
	if m.Type == "proc" || m.Type == "sysfs" {
		w.Op(initplan.OpRefuseSymlink).S(m.Destination).Jf("%s: destination %s is a symlink in the rootfs: refusing to mount there", at, m.Destination)
	}
	if o.tmpcopyup {
		return noPlan("%s: tmpcopyup", at)
	}
	switch {
	case isBind:
		if len(m.UIDMappings)+len(m.GIDMappings) > 0 {
			return noPlan("%s: an idmapped mount", at)
		}
		src := m.Source
		if !filepath.IsAbs(src) {
			src = filepath.Join(c.Bundle, src)
		}
		flags := unix.MS_BIND | (o.flags & unix.MS_REC)
		w.Op(initplan.OpBind).S(src).I(srcFd).U(uint64(o.flags&unix.MS_REC)).S(m.Destination).
			Jf("mount --bind %s %s (flags %s)", src, m.Destination, flagNames(uintptr(flags))).
			Jf("move_mount the clone of %s berth create made to %s", src, m.Destination).J(at)
		if extra := o.flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT); extra != 0 {
			p.remountBind(m.Destination, extra, at)
		}
		sysfsSrc := ""
		if flags&unix.MS_REC != 0 && o.flags&unix.MS_RDONLY != 0 {
			sysfsSrc = src // an rbind of the host's /sys: all read-only (CVE-2023-25809)
		}
		p.setAttrs(m.Destination, o.rec, sysfsSrc, at)
		p.propagate(m.Destination, o.propagation, at)
		return nil
	case m.Type == "sysfs":
		data := strings.Join(o.data, ",")
		w.Op(initplan.OpMkdirTarget).S(m.Destination).Jf("%s: destination", at)
		w.Step("rootfs.mountSysfs", "mount -t sysfs %s %s (flags %s%s)", m.Source, m.Destination, flagNames(o.flags), dataNote(data))
		w.Op(initplan.OpMount).S(m.Source).S("sysfs").U(uint64(o.flags)).S(data).S(m.Destination).I(srcFd).
			U(uint64(o.flags&^(unix.MS_BIND|unix.MS_REC|unix.MS_REMOUNT))).
			Jf("move_mount the read-only clone of the host's /sys (no submounts) to %s", m.Destination).Jf("%s: mount -t sysfs", at)
		p.setAttrs(m.Destination, o.rec, "", at)
		p.propagate(m.Destination, o.propagation, at)
		return nil
	case m.Type == "cgroup" || m.Type == "cgroup2":
		return p.mountCgroup(c, m, o, at)
	}
	if m.Type == "tmpfs" && o.flags&unix.MS_RDONLY != 0 {
		o.flags &^= unix.MS_RDONLY
		p.readonlyLater = append(p.readonlyLater, laterRO{m.Destination, o.flags &^ (unix.MS_REMOUNT | unix.MS_BIND | unix.MS_REC)})
	}
	data := strings.Join(o.data, ",")
	w.Op(initplan.OpMkdirTarget).S(m.Destination).Jf("%s: destination", at)
	w.Step("rootfs.mountEntry", "mount -t %s %s %s (flags %s%s)", m.Type, m.Source, m.Destination, flagNames(o.flags), dataNote(data))
	w.Op(initplan.OpMount).S(m.Source).S(m.Type).U(uint64(o.flags)).S(data).S(m.Destination).I(-1).U(0).J("").Jf("%s: mount -t %s", at, m.Type)
	p.setAttrs(m.Destination, o.rec, "", at)
	p.propagate(m.Destination, o.propagation, at)
	return nil
}

func (p *Planner) remountBind(dest string, flags uintptr, at string) {
	p.W.Step("rootfs.remountBind", "mount -o remount,bind %s (flags %s)", dest, flagNames(flags|unix.MS_BIND|unix.MS_REMOUNT))
	p.W.Op(initplan.OpRemountBind).S(dest).U(uint64(flags)).J(at)
}

func (p *Planner) setAttrs(dest string, r recAttr, sysfsSrc, at string) {
	if r.set == 0 && r.clr == 0 && sysfsSrc == "" {
		return
	}
	set := r.set
	if sysfsSrc != "" {
		set |= unix.MOUNT_ATTR_RDONLY // if it is a sysfs: the C stage checks
	}
	p.W.Op(initplan.OpSetAttr).S(dest).U(r.set).U(r.clr).S(sysfsSrc).
		Jf("mount_setattr %s AT_RECURSIVE set=%#x clear=%#x", dest, set, r.clr).Jf("%s: recursive mount options: mount_setattr", at)
}

func (p *Planner) propagate(dest string, props []uintptr, at string) {
	for _, f := range props {
		p.W.Step("rootfs.setPropagation", "mount --make-%s %s", propagationName(f), dest)
		p.W.Op(initplan.OpPropagate).S(dest).U(uint64(f)).Jf("%s: propagation %s", at, propagationName(f))
	}
}

// mountCgroup plans mountCgroup's cgroup2 mount, or bindCgroupTree's v1 tree (the container's
// own group of each hierarchy, read-only under a tmpfs).
func (p *Planner) mountCgroup(c *Config, m *specs.Mount, o mountOpts, at string) error {
	hier, err := planHierarchies()
	if err != nil {
		return noPlan("%s: %v", at, err)
	}
	w := p.W
	unified := len(hier) == 1 && hier[0].fstype == "cgroup2" && hier[0].mountpoint == "/sys/fs/cgroup"
	if m.Type == "cgroup2" || (unified && c.CgroupNS) {
		if c.UserNS {
			return noPlan("%s: cgroup2 in a user namespace", at)
		}
		w.Op(initplan.OpMkdirTarget).S(m.Destination).Jf("%s: destination", at)
		w.Step("rootfs.mountCgroup", "mount -t cgroup2 cgroup2 %s (flags %s)", m.Destination, flagNames(o.flags))
		w.Op(initplan.OpMount).S("cgroup2").S("cgroup2").U(uint64(o.flags)).S("").S(m.Destination).I(-1).U(0).J("").Jf("%s: mount -t cgroup2", at)
		return nil
	}
	w.Op(initplan.OpMkdirTarget).S(m.Destination).Jf("%s: destination", at)
	if c.CgroupNS {
		w.Step("rootfs.mountCgroup", "mount -t tmpfs tmpfs %s (a directory to hold the container's cgroups)", m.Destination)
	} else {
		w.Step("rootfs.bindCgroupTree", "mount -t tmpfs tmpfs %s (fsmount, attached by descriptor: a directory to hold the container's cgroups)", m.Destination)
	}
	source := "" // fsmount's, as bindCgroupTree makes it
	if c.CgroupNS {
		source = "tmpfs" // mount(2)'s, as mountCgroup makes it
	}
	w.Op(initplan.OpCgroupTree).U(uint64(mountAttrs(o.flags&^unix.MS_RDONLY))).S(source).Jf("%s: a tmpfs for the cgroups", at)
	attr := uint64(unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC)
	fresh := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if o.flags&unix.MS_RDONLY != 0 {
		attr |= unix.MOUNT_ATTR_RDONLY
		fresh |= unix.MS_RDONLY
	}
	for _, h := range hier {
		name := filepath.Base(h.mountpoint)
		if h.mountpoint == "/sys/fs/cgroup" {
			continue
		}
		if c.CgroupNS {
			// A fresh mount of each hierarchy, rooted by the kernel at the namespace's group.
			fstype, data := h.fstype, ""
			if fstype == "cgroup" {
				data = h.options
				if strings.HasPrefix(data, "name=") {
					data = "none," + data
				}
			}
			w.Op(initplan.OpCgroupFresh).S(name).S(fstype).U(uint64(fresh)).S(data).
				Jf("mount -t %s -o %s cgroup <cgroup mount>/%s (flags %s; rooted at the cgroup namespace)", fstype, data, name, flagNames(fresh)).
				Jf("%s: mount -t %s -o %s", at, fstype, data)
		} else {
			// The init's group in this hierarchy: the container's own where berth made one
			// (the init joins it in its constructor), berth's otherwise (inherited).
			src := filepath.Join(h.mountpoint, h.path)
			for _, g := range p.CgroupGroups {
				if strings.HasPrefix(g, h.mountpoint+"/") {
					src = g
				}
			}
			w.Op(initplan.OpCgroupBind).S(src).S(name).U(attr).
				Jf("mount --bind %s %s/%s (open_tree, mount_setattr %s, move_mount)", src, m.Destination, name, attrNames(attr)).J(at)
		}
		if strings.Contains(name, ",") {
			for _, alias := range strings.Split(name, ",") {
				w.Op(initplan.OpCgroupLink).S(name).S(alias).Jf("ln -s %s %s/%s", name, m.Destination, alias)
			}
		}
	}
	ro := o.flags&unix.MS_RDONLY != 0
	if ro {
		w.Step("rootfs.bindCgroupTree", "mount -o remount,ro %s (mount_setattr)", m.Destination)
	}
	b := uint64(0)
	if ro {
		b = 1
	}
	w.Op(initplan.OpCgroupReadonly).U(b).Jf("remount %s read-only", m.Destination)
	return nil
}

// planHierarchies is berth's own cgroup hierarchies, read once per process (Check and the
// plan itself both need them; berth's own groups do not change while it creates a container:
// the systemd driver, which moves berth, is v2 only, where there is one hierarchy).
var planHierarchies = sync.OnceValues(selfCgroupMounts)

func (p *Planner) createDevices(extra []specs.LinuxDevice, userNS bool) error {
	mode := os.FileMode(0o666)
	for _, d := range defaultDevices {
		d.FileMode = &mode
		if err := p.makeDevice(d, userNS, fmt.Sprintf("creating %s", d.Path)); err != nil {
			return err
		}
	}
	if err := p.configDevices(extra, userNS); err != nil {
		return err
	}
	for _, l := range devLinks {
		p.W.Op(initplan.OpDevLink).S(l[0]).S(l[1]).Jf("ln -s %s /dev/%s", l[0], l[1])
	}
	return nil
}

func (p *Planner) configDevices(devs []specs.LinuxDevice, userNS bool) error {
	for i, d := range devs {
		if filepath.Clean(d.Path) == "/dev/ptmx" {
			continue
		}
		if err := p.makeDevice(d, userNS, fmt.Sprintf("linux.devices[%d] (%s)", i, d.Path)); err != nil {
			return err
		}
	}
	return nil
}

func (p *Planner) makeDevice(d specs.LinuxDevice, userNS bool, what string) error {
	typ, perm, err := deviceMode(d)
	if err != nil {
		return noPlan("%s: %v", what, err) // the Go init reports it
	}
	parent, name := filepath.Dir(d.Path), filepath.Base(d.Path)
	if userNS {
		p.W.Op(initplan.OpBindDevice).S(parent).S(name).S(d.Path).U(uint64(d.Major)).U(uint64(d.Minor)).
			Jf("mount --bind %s %s (no mknod in a user namespace)", d.Path, d.Path).J(what)
		return nil
	}
	uid, gid := uint64(0), uint64(0)
	if d.UID != nil {
		uid = uint64(*d.UID)
	}
	if d.GID != nil {
		gid = uint64(*d.GID)
	}
	p.W.Op(initplan.OpMknod).S(parent).S(name).U(uint64(typ|perm)).U(uint64(d.Major)).U(uint64(d.Minor)).U(uid).U(gid).
		Jf("mknod %s %s %d %d (mode %o)", d.Path, d.Type, d.Major, d.Minor, perm).J(what)
	return nil
}
