// Command start measures container start-up: berth against runc and crun on the same bundle,
// interleaved so that every runtime sees the same machine state. See bench/run.sh.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

type runtime struct {
	name, bin, root string
}

func (r runtime) cmd(args ...string) *exec.Cmd {
	return exec.Command(r.bin, append([]string{"--root", r.root}, args...)...)
}

func must(err error, what string) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", what, err)
		os.Exit(1)
	}
}

// usage is what one `run` cost in CPU, from wait4's rusage: the runtime's process and the
// descendants it reaped (its init, the container's program), user and system time together,
// and their minor page faults. Load barely moves it, unlike the elapsed time.
type usage struct {
	cpu    time.Duration
	faults int64
}

func runOnce(r runtime, bundle, id string) (time.Duration, usage) {
	cmd := r.cmd("run", "--bundle", bundle, id)
	t := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(t)
	must(errIf(err, out), r.name+" run")
	var u usage
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		u = usage{cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), faults: ru.Minflt}
	}
	return d, u
}

func errIf(err error, out []byte) error {
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// split is the containerd-shim sequence: create, start, wait (for the reparented init), delete.
func split(r runtime, bundle, id string, rss *[]float64) [4]time.Duration {
	var d [4]time.Duration
	pidFile := filepath.Join(os.TempDir(), "bench-"+id+".pid")
	t := time.Now()
	// No pipes for create: the container inherits its stdio, so a pipe would stay open.
	out, err := []byte(nil), r.cmd("create", "--bundle", bundle, "--pid-file", pidFile, id).Run()
	d[0] = time.Since(t)
	must(errIf(err, out), r.name+" create")
	data, err := os.ReadFile(pidFile)
	must(err, "pid file")
	os.Remove(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if rss != nil {
		// Measured once the init has settled into its waiting state.
		time.Sleep(20 * time.Millisecond)
		*rss = append(*rss, vmRSS(pid))
	}
	t = time.Now()
	out, err = r.cmd("start", id).CombinedOutput()
	d[1] = time.Since(t)
	must(errIf(err, out), r.name+" start")
	t = time.Now()
	var ws unix.WaitStatus
	_, err = unix.Wait4(pid, &ws, 0, nil)
	d[2] = time.Since(t)
	must(err, "wait")
	t = time.Now()
	out, err = r.cmd("delete", id).CombinedOutput()
	d[3] = time.Since(t)
	must(errIf(err, out), r.name+" delete")
	return d
}

func vmRSS(pid int) float64 {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.Atoi(strings.Fields(l)[1])
			return float64(kb) / 1024
		}
	}
	return 0
}

func pct(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration{}, ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(p*float64(len(s)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%6.2f", float64(d.Microseconds())/1000) }

func median(f []float64) float64 {
	s := append([]float64{}, f...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func main() {
	n := flag.Int("n", 50, "containers per runtime and measurement")
	bundle := flag.String("bundle", "", "bundle whose program is `true`")
	berth := flag.String("berth", "./berth", "berth binary")
	baseBin := flag.String("base", "", "another berth binary (an older build), measured in the same interleaved run as \"base\"")
	flag.Parse()
	// The init of a created container comes back to us once create exits, for wait4.
	must(unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "subreaper")
	tmp, err := os.MkdirTemp("", "berth-bench-")
	must(err, "tmp")
	defer os.RemoveAll(tmp)
	rts := []runtime{{"berth", *berth, tmp + "/berth"}}
	if *baseBin != "" {
		rts = append(rts, runtime{"base", *baseBin, tmp + "/base"})
	}
	for _, name := range []string{"runc", "crun"} {
		if p, err := exec.LookPath(name); err == nil {
			rts = append(rts, runtime{name, p, tmp + "/" + name})
		}
	}
	runs := map[string][]time.Duration{}
	cpus := map[string][]time.Duration{}
	faults := map[string][]float64{}
	splits := map[string][][4]time.Duration{}
	rss := map[string][]float64{}
	for i := 0; i < *n; i++ {
		for _, r := range rts {
			d, u := runOnce(r, *bundle, fmt.Sprintf("r%d", i))
			runs[r.name] = append(runs[r.name], d)
			cpus[r.name] = append(cpus[r.name], u.cpu)
			faults[r.name] = append(faults[r.name], float64(u.faults))
		}
		for _, r := range rts {
			v := rss[r.name]
			splits[r.name] = append(splits[r.name], split(r, *bundle, fmt.Sprintf("s%d", i), &v))
			rss[r.name] = v
		}
	}
	fmt.Printf("%d containers each, busybox `true`, interleaved; times in ms\n\n", *n)
	fmt.Printf("%-6s | %-15s | %-15s | %-31s | %s\n", "", "run median/p90", "split med/p90", "create / start / wait / delete", "waiting init RSS")
	base := map[string]time.Duration{}
	for _, r := range rts {
		var tot []time.Duration
		var parts [4][]time.Duration
		for _, s := range splits[r.name] {
			tot = append(tot, s[0]+s[1]+s[2]+s[3])
			for k := range s {
				parts[k] = append(parts[k], s[k])
			}
		}
		base[r.name+"run"] = pct(runs[r.name], 0.5)
		base[r.name+"split"] = pct(tot, 0.5)
		fmt.Printf("%-6s | %s / %s | %s / %s | %s / %s / %s / %s | %.1f MiB\n", r.name,
			ms(pct(runs[r.name], 0.5)), ms(pct(runs[r.name], 0.9)), ms(pct(tot, 0.5)), ms(pct(tot, 0.9)),
			ms(pct(parts[0], 0.5)), ms(pct(parts[1], 0.5)), ms(pct(parts[2], 0.5)), ms(pct(parts[3], 0.5)), median(rss[r.name]))
	}
	fmt.Println()
	// What 4-worker throughput on a small machine comes down to.
	for _, r := range rts {
		fmt.Printf("%-6s CPU a run (user+sys of the runtime and what it reaped, median): %s ms, %.0f minor faults\n",
			r.name, ms(pct(cpus[r.name], 0.5)), median(faults[r.name]))
	}
	fmt.Println()
	// Parallel throughput: 4 workers, containers per second. In rounds of 20 containers,
	// runtime after runtime, so that a change in the machine's load falls on all of them.
	// 8n containers a runtime (400 at make bench's 50): with 2n, about half a second of each
	// runtime's work, the ratio moved by 10% from one run to the next.
	rate := map[string]float64{}
	spent := map[string]time.Duration{}
	total := *n * 8
	const round = 20
	for start := 0; start < total; start += round {
		for _, r := range rts {
			end := min(start+round, total)
			var wg sync.WaitGroup
			t := time.Now()
			for w := 0; w < 4; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := start + w; i < end; i += 4 {
						_, _ = runOnce(r, *bundle, fmt.Sprintf("p%d", i))
					}
				}(w)
			}
			wg.Wait()
			spent[r.name] += time.Since(t)
		}
	}
	for _, r := range rts {
		rate[r.name] = float64(total) / spent[r.name].Seconds()
		fmt.Printf("%-6s 4 parallel workers: %.1f containers/s\n", r.name, rate[r.name])
	}
	fmt.Println()
	for _, o := range rts[1:] {
		fmt.Printf("berth/%s: run %.2fx, split %.2fx, throughput %.2fx, CPU a run %.2fx (below 1 = berth faster; throughput above 1 = berth faster)\n", o.name,
			float64(base["berthrun"])/float64(base[o.name+"run"]), float64(base["berthsplit"])/float64(base[o.name+"split"]),
			rate["berth"]/rate[o.name], float64(pct(cpus["berth"], 0.5))/float64(pct(cpus[o.name], 0.5)))
	}
}
