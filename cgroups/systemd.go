package cgroups

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
)

// SystemdDriver is set by `--systemd-cgroup`: containers created from then on get their cgroup
// from systemd (a transient scope) instead of making the directory themselves.
var SystemdDriver bool

// systemd is a container's cgroup as a transient scope unit that systemd made over D-Bus
// (StartTransientUnit, Delegate=yes). Limits go to the unit's properties (systemd_props.go) and
// to the files; everything else (freeze, stats, pids, kill, exec's clone into the group) is
// the v2 group it embeds, whose directory is the scope's.
//
// How the init gets there: systemd only creates a scope around processes that exist, and berth
// clones its init straight into its group (clone3 CLONE_INTO_CGROUP, so that a new cgroup
// namespace is rooted there from birth). So Create starts the scope around berth itself, the
// init is cloned into the scope's directory, and LeaveGroup moves berth back where it was.
type systemd struct {
	*v2
	unit  systemdPath
	extra []sd.Property // from org.systemd.property.* annotations (UseAnnotations)
}

// origins maps a scope's group to berth's own group before Create moved berth into it, so that
// LeaveGroup (from any manager of that scope in this process, such as the one a failed
// create's cleanup rebuilds from the state) knows where to go back.
var origins = map[string]string{}

// NewSystemd returns the manager of the scope a "slice:prefix:name" cgroupsPath names. It
// touches nothing: Create asks systemd for the scope.
func NewSystemd(path, id string) (Manager, error) {
	p, err := parseSystemdPath(path, id)
	if err != nil {
		return nil, err
	}
	cg := p.cgroup()
	return &systemd{v2: &v2{path: cg, dir: filepath.Join(root, cg)}, unit: p}, nil
}

// IsSystemd says whether m is a scope that systemd manages (for the container's state).
func IsSystemd(m Manager) bool {
	_, ok := m.(*systemd)
	return ok
}

// Path is the "slice:prefix:name" form, which NewSystemd reads back from the state.
func (m *systemd) Path() string { return m.unit.String() }

// connect reaches systemd: its private socket first (root, no dbus-daemon needed), then the
// system bus. An unreachable systemd is one line that says so.
func connect(ctx context.Context) (*sd.Conn, error) {
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return nil, errors.New("--systemd-cgroup: systemd is not running on this host (no /run/systemd/system); use the cgroupfs driver (drop the flag)")
	}
	c, err := sd.NewSystemdConnectionContext(ctx)
	if err == nil {
		return c, nil
	}
	c, err2 := sd.NewWithContext(ctx)
	if err2 == nil {
		return c, nil
	}
	return nil, fmt.Errorf("--systemd-cgroup: cannot reach systemd over D-Bus (%v; system bus: %v)", err, err2)
}

// systemdVersion reads the manager's version number ("252.38-1~deb12u1" gives 252), 0 when
// unknown.
func systemdVersion(c *sd.Conn) int {
	v, err := c.GetManagerProperty("Version")
	if err != nil {
		return 0
	}
	v, _ = strconv.Unquote(v)
	v = strings.TrimPrefix(v, "v")
	end := 0
	for end < len(v) && v[end] >= '0' && v[end] <= '9' {
		end++
	}
	n, _ := strconv.Atoi(v[:end])
	return n
}

// waitJob waits for a unit job's result ("done" is success).
func waitJob(ch <-chan string, what string) error {
	select {
	case s := <-ch:
		if s != "done" {
			return fmt.Errorf("%s: systemd job result %q", what, s)
		}
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s: systemd did not finish the job within 30s", what)
	}
}

// ownGroup is the calling process's cgroup v2 path.
func ownGroup() (string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if g, ok := strings.CutPrefix(l, "0::"); ok {
			return g, nil
		}
	}
	return "", errors.New("/proc/self/cgroup has no cgroup v2 entry")
}

// Create asks systemd for the scope, around berth's own pid (see the type), with accounting
// on, Delegate=yes and no limits yet (Set writes them once the init is in, as on cgroupfs),
// then delegates every controller down to it as the cgroupfs driver does.
func (m *systemd) Create() error {
	origin, err := ownGroup()
	if err != nil {
		return err
	}
	ctx := context.Background()
	c, err := connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if DetectMode() != Unified {
		return errors.New("--systemd-cgroup: berth's systemd driver needs a cgroup v2 host (this one mounts cgroup v1)")
	}
	name := m.unit.unit()
	props := []sd.Property{
		sd.PropDescription("berth container " + m.unit.name),
		sd.PropSlice(m.unit.slice),
		prop("Delegate", true),
		sd.PropPids(uint32(os.Getpid())),
		prop("MemoryAccounting", true), prop("CPUAccounting", true),
		prop("IOAccounting", true), prop("TasksAccounting", true),
		prop("DefaultDependencies", false),
	}
	props = append(props, m.extra...)
	explain.Stepf("cgroups.systemd.Create", "D-Bus StartTransientUnit %s in %s (Delegate=yes, PIDs=[berth %d]): systemd makes %s", name, m.unit.slice, os.Getpid(), m.dir)
	for attempt := 0; ; attempt++ {
		ch := make(chan string, 1)
		_, err = c.StartTransientUnitContext(ctx, name, "replace", props, ch)
		if err == nil {
			err = waitJob(ch, "starting "+name)
			break
		}
		var derr dbus.Error
		if attempt == 0 && errors.As(err, &derr) && strings.HasSuffix(derr.Name, ".UnitExists") {
			// A unit of that name left failed or inactive by an earlier container is
			// cleared once; a live one is refused.
			if st, _ := c.GetUnitPropertyContext(ctx, name, "ActiveState"); st != nil && st.Value.Value() == "active" {
				return fmt.Errorf("systemd unit %s already exists and is active", name)
			}
			_ = c.ResetFailedUnitContext(ctx, name)
			continue
		}
		break
	}
	if err != nil {
		_ = c.ResetFailedUnitContext(ctx, name)
		return fmt.Errorf("systemd StartTransientUnit %s: %w", name, err)
	}
	origins[m.path] = origin
	if cur, _ := ownGroup(); cur != m.path {
		m.LeaveGroup()
		m.stop(c)
		return fmt.Errorf("systemd started %s but berth is in %s, not in %s", name, cur, m.path)
	}
	// systemd enables what its accounting needs; hugetlb, rdma and misc too, as on cgroupfs.
	if err := m.v2.Create(); err != nil {
		m.LeaveGroup()
		m.stop(c)
		return err
	}
	return nil
}

// LeaveGroup moves berth back to its own group once the init is cloned into the scope (the
// scope lives on around the init). It does nothing when berth is not in the scope.
func (m *systemd) LeaveGroup() {
	origin, ok := origins[m.path]
	if !ok {
		return
	}
	delete(origins, m.path)
	if cur, _ := ownGroup(); cur == m.path {
		explain.Stepf("cgroups.systemd.LeaveGroup", "berth goes back to %s: the init holds the scope now", origin)
		if err := writeFile(filepath.Join(root, origin), "cgroup.procs", strconv.Itoa(os.Getpid())); err != nil {
			logrus.Warnf("leaving %s: %v", m.path, err)
		}
	}
}

// Set writes the limits to the unit (SetUnitProperties, runtime only) and then to the files,
// which also carry what systemd cannot express.
func (m *systemd) Set(r *specs.LinuxResources) error {
	m.LeaveGroup()
	if r == nil {
		return nil
	}
	if err := checkV2(r); err != nil {
		return err
	}
	ctx := context.Background()
	c, err := connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	props, err := systemdProps(r, systemdVersion(c))
	if err != nil {
		return err
	}
	if len(props) > 0 {
		names := make([]string, len(props))
		for i, p := range props {
			names[i] = p.Name + "=" + p.Value.String()
		}
		explain.Stepf("cgroups.systemd.Set", "D-Bus SetUnitProperties %s %s", m.unit.unit(), strings.Join(names, " "))
		if err := c.SetUnitPropertiesContext(ctx, m.unit.unit(), true, props...); err != nil {
			return fmt.Errorf("systemd SetUnitProperties %s: %w", m.unit.unit(), err)
		}
	}
	return m.v2.Set(r)
}

// Destroy kills what is left, stops the unit and removes whatever directory remains.
func (m *systemd) Destroy() error {
	m.LeaveGroup()
	if _, err := os.Stat(m.dir); err == nil {
		// systemd removes an emptied scope by itself: a group that went away meanwhile
		// (ENODEV from a removed group's files) is not an error.
		if err := m.KillAll(); err != nil && !errors.Is(err, unix.ENODEV) && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	ctx := context.Background()
	c, err := connect(ctx)
	if err != nil {
		if _, serr := os.Stat(m.dir); serr != nil {
			return nil // nothing left, and nothing to ask
		}
		return err
	}
	defer c.Close()
	m.stop(c)
	return removeDir(m.dir)
}

// stop stops the unit (a unit already gone is fine) and clears a failed state it may keep.
func (m *systemd) stop(c *sd.Conn) {
	ctx := context.Background()
	name := m.unit.unit()
	explain.Stepf("cgroups.systemd.stop", "D-Bus StopUnit %s", name)
	ch := make(chan string, 1)
	if _, err := c.StopUnitContext(ctx, name, "replace", ch); err == nil {
		if err := waitJob(ch, "stopping "+name); err != nil {
			logrus.Warn(err)
		}
	}
	_ = c.ResetFailedUnitContext(ctx, name)
}
