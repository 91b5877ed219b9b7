package image

import (
	"runtime"

	"github.com/berth-project/berth/libcontainer/nsenter"
)

// parallelWorkers is how many layers are worked on at once: the CPUs berth may run on, at
// least two. GOMAXPROCS is raised to them first: berth's Go runtime starts with one P (the
// process is pinned to one CPU while it starts, libcontainer/nsenter), and runtime.NumCPU
// still counts that one.
func parallelWorkers() int {
	n := nsenter.CPUs()
	if runtime.GOMAXPROCS(0) < n {
		runtime.GOMAXPROCS(n)
	}
	return max(n, 2)
}
