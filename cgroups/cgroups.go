// Package cgroups owns a container's control group: it finds out how the host mounts cgroups
// (unified v2, hybrid or legacy v1), creates the container's group, writes every
// linux.resources limit into the right files, moves processes in, freezes, kills, reads stats and
// removes the group. Every file it writes is reported through explain as "cgroups.writeFile".
package cgroups

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Manager is one container's cgroup. Later commands rebuild it from the path kept in the
// container's state with New, so a Manager holds no state that is not on the filesystem.
type Manager interface {
	// Path is the cgroup path relative to the hierarchy root, e.g. "/berth/ID".
	Path() string
	// Create makes the group (in every v1 hierarchy, or with the needed controllers enabled
	// down the v2 tree). It is called before the init process exists.
	Create() error
	// Set writes resource limits; used by create and by `update`.
	Set(r *specs.LinuxResources) error
	// Apply moves a whole process (all its threads) into the group.
	Apply(pid int) error
	// JoinFiles lists the files a single-threaded process writes "0" to in order to join the
	// group itself (v1 "tasks" files: cheap, no RCU wait; v2 "cgroup.procs"). The init
	// process does this before the Go runtime starts threads.
	JoinFiles() []string
	// Freeze stops every process in the group; Thaw lets them run again.
	Freeze() error
	Thaw() error
	// Paused says whether the group is frozen.
	Paused() (bool, error)
	// Pids lists the host pids of every process in the group.
	Pids() ([]int, error)
	// Stats reads usage counters.
	Stats() (*Stats, error)
	// KillAll sends SIGKILL to every process in the group.
	KillAll() error
	// Sub is the group an exec'd process joins for `exec --cgroup` (see ParseSubPaths): one
	// below this one, which must exist.
	Sub(sub map[string]string) (Manager, error)
	// Destroy kills what is left and removes the group. Removing a group that does not
	// exist is not an error.
	Destroy() error
}
