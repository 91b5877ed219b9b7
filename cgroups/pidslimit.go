package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// PidsLimitHit says, as "cgroup DIR: pids.max N reached", which pids.max refused a fork in
// m's pids group (DIR being the group on its path, itself or an ancestor, with a limit and
// the least room left), or "" if none did. It explains an init that died before it was
// ready: its Go runtime could not start its threads. A refused fork counts in the "max" of
// the forking group's pids.events (v1 and newer kernels) or in the limiting one's (older
// kernels): a count anywhere on the path of a group just made is this init's.
func PidsLimitHit(m Manager) string {
	var dir string
	switch g := m.(type) {
	case *v1:
		dir = g.dirs["pids"]
	case *v2:
		dir = g.dir
	}
	hit, best, bestRoom, bestLimit := false, "", int64(-1), ""
	for ; dir != "" && dir != "/"; dir = filepath.Dir(dir) {
		data, err := os.ReadFile(filepath.Join(dir, "pids.max"))
		if err != nil {
			break // the hierarchy's root has no pids.max
		}
		if readKeyed(dir, "pids.events")["max"] > 0 {
			hit = true
		}
		limit := strings.TrimSpace(string(data))
		n, err := strconv.ParseInt(limit, 10, 64)
		if err != nil {
			continue // "max"
		}
		cur, _ := os.ReadFile(filepath.Join(dir, "pids.current"))
		c, _ := strconv.ParseInt(strings.TrimSpace(string(cur)), 10, 64)
		if room := n - c; bestRoom < 0 || room < bestRoom {
			best, bestRoom, bestLimit = dir, max(room, 0), limit
		}
	}
	if !hit || best == "" {
		return ""
	}
	return fmt.Sprintf("cgroup %s: pids.max %s reached", best, bestLimit)
}
