package cgroups

import (
	"fmt"

	"github.com/sirupsen/logrus"
)

// CheckPreexisting looks at the group before Create makes it, as runc does: a frozen group is
// refused (a process born there would stop before it could report back, and create would
// hang), a group that already holds processes only gets a warning.
func CheckPreexisting(m Manager) error {
	if frozen, err := m.Paused(); err == nil && frozen {
		return fmt.Errorf("cgroup %s: container's cgroup unexpectedly frozen", m.Path())
	}
	if pids, _ := m.Pids(); len(pids) > 0 {
		logrus.Warnf("cgroup %s: container's cgroup is not empty: %d process(es) found", m.Path(), len(pids))
	}
	return nil
}
