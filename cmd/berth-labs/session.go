package main

// session is the shell a page runs in: one bash for the whole page, as a student's terminal
// (cd and variables carry from one step to the next). Each step is sourced from a file with
// its output to a file of its own and stdin from /dev/null; an ERR trap stops the step at the
// first command that fails (as set -e would, without ending the shell).

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type session struct {
	dir   string // the runner's files: steps, outputs, exit statuses
	cmd   *exec.Cmd
	stdin *os.File
	n     int
}

// startSession starts bash in cwd with env; ctl is a directory for the runner's own files.
func startSession(ctl, cwd string, env []string) (*session, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(ctl, "shell.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command("bash", "--norc", "--noprofile")
	cmd.Dir, cmd.Env = cwd, env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = r, logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	r.Close()
	s := &session{dir: ctl, cmd: cmd, stdin: w}
	_, err = fmt.Fprintf(w, "set -o pipefail -E\n"+
		"trap '__rc=$?; echo \"command failed (exit $__rc): $BASH_COMMAND\" >&2; return $__rc 2>/dev/null' ERR\n")
	return s, err
}

// run sources script in the shell and waits for it: its output (stdout and stderr as one) and
// exit status, or an error when it took more than timeout.
func (s *session) run(script string, timeout time.Duration) (string, int, error) {
	s.n++
	base := filepath.Join(s.dir, fmt.Sprintf("step%d", s.n))
	if err := os.WriteFile(base+".sh", []byte(script), 0o644); err != nil {
		return "", 0, err
	}
	_, err := fmt.Fprintf(s.stdin, "source %q > %q 2>&1 < /dev/null; echo $? > %q; mv %q %q\n",
		base+".sh", base+".out", base+".rc.new", base+".rc.new", base+".rc")
	if err != nil {
		return "", 0, fmt.Errorf("the shell is gone: %v", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		if data, err := os.ReadFile(base + ".rc"); err == nil {
			code, _ := strconv.Atoi(strings.TrimSpace(string(data)))
			out, _ := os.ReadFile(base + ".out")
			return string(out), code, nil
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(base + ".out")
			return string(out), -1, fmt.Errorf("still running after %s", timeout)
		}
		if s.cmd.ProcessState != nil {
			out, _ := os.ReadFile(base + ".out")
			return string(out), -1, fmt.Errorf("the shell exited")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends the shell and everything in its process group.
func (s *session) kill() {
	s.stdin.Close()
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	s.cmd.Wait()
}

// killMarked SIGKILLs every process whose environment holds marker (KEY=VALUE): what a page
// started in the background, however far it wandered from the shell's process group.
func killMarked(marker string) int {
	n := 0
	for round := 0; round < 5; round++ {
		found := 0
		paths, _ := filepath.Glob("/proc/[0-9]*/environ")
		for _, p := range paths {
			pid, _ := strconv.Atoi(strings.Split(p, "/")[2])
			if pid == os.Getpid() {
				continue
			}
			data, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			for _, kv := range strings.Split(string(data), "\x00") {
				if kv == marker {
					syscall.Kill(pid, syscall.SIGKILL)
					found++
					break
				}
			}
		}
		n += found
		if found == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return n
}

// unmountUnder detaches every mount whose mount point is dir or below it, deepest first.
func unmountUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			points = append(points, mp)
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		syscall.Unmount(points[i], syscall.MNT_DETACH)
	}
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space, ...).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
