package cgroups

import "errors"

// New returns the manager for the cgroup at path (from linux.cgroupsPath; "" picks
// "/berth/<id>") on whatever cgroup layout the host has.
func New(path, id string) (Manager, error) {
	return nil, errors.New("cgroups: not implemented yet")
}

// Stats are a group's usage counters, shaped like the "data" of runc's `events --stats`.
type Stats struct{}
