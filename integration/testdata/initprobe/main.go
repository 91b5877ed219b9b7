// Command initprobe prints what a container's process sees of itself and of its container, in
// sections ("## name"), so that two runs of the same config can be compared line by line
// (integration/initpath_test.go). It prints raw values: what differs legitimately between two
// runs (mount ids, pipe inodes...) is normalised by the test, not here.
//
// Built static (CGO_ENABLED=0) and copied into the rootfs as /bin/initprobe. Arguments, each
// "kind:value", add to the fixed checks:
//
//	sysctl:NAME   print /proc/sys/NAME (dots as slashes)
//	cat:PATH      print PATH
//	write:PATH    read PATH, then write back exactly what was read (never anything new), and
//	              print both results; if the read fails, only open it for writing
//	create:PATH   create PATH (O_EXCL), print the result, remove it again
//	stat:PATH     print PATH's type, mode, owner and device numbers
//	ls:DIR        list DIR as stat: does
//	syscall:NR    make system call NR with all arguments 0 and print its errno (seccomp)
//	exit:N        exit with status N (default 0)
package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

var out = bufio.NewWriter(os.Stdout)

func section(name string) { fmt.Fprintf(out, "## %s\n", name) }

func main() {
	// First, before the Go runtime or this program opens anything: the descriptors the
	// process was given.
	fds := inheritedFds()
	exit := 0
	var extra [][2]string
	for _, a := range os.Args[1:] {
		kind, val, _ := strings.Cut(a, ":")
		if kind == "exit" {
			exit, _ = strconv.Atoi(val)
			continue
		}
		extra = append(extra, [2]string{kind, val})
	}

	section("status")
	statusLines("/proc/self/status", "Umask", "Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff",
		"CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Seccomp_filters")
	section("process")
	process()
	section("fds")
	for _, l := range fds {
		fmt.Fprintln(out, l)
	}
	section("cwd")
	if cwd, err := os.Getwd(); err != nil {
		fmt.Fprintln(out, errText(err))
	} else {
		fmt.Fprintln(out, cwd)
	}
	section("uname")
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		fmt.Fprintln(out, errText(err))
	}
	fmt.Fprintf(out, "hostname=%s domainname=%s\n", unix.ByteSliceToString(u.Nodename[:]), unix.ByteSliceToString(u.Domainname[:]))
	section("environ")
	for _, e := range os.Environ() {
		fmt.Fprintln(out, e)
	}
	for _, f := range []string{"/proc/self/limits", "/proc/self/oom_score_adj", "/proc/self/attr/current",
		"/proc/self/cgroup", "/proc/self/mountinfo"} {
		section(f)
		cat(f)
	}
	for _, d := range []string{"/dev", "/dev/pts", "/sys/fs/cgroup"} {
		section("ls " + d)
		ls(d)
	}
	section("stat")
	for _, p := range []string{"/dev/null", "/dev/pts/ptmx", "/dev/ptmx", "/dev/console"} {
		stat(p, p)
	}
	for _, x := range extra {
		section(x[0] + " " + x[1])
		switch x[0] {
		case "sysctl":
			cat("/proc/sys/" + strings.ReplaceAll(x[1], ".", "/"))
		case "cat":
			cat(x[1])
		case "write":
			tryWrite(x[1])
		case "create":
			tryCreate(x[1])
		case "stat":
			stat(x[1], x[1])
		case "ls":
			ls(x[1])
		case "syscall":
			nr, _ := strconv.Atoi(x[1])
			_, _, errno := unix.Syscall6(uintptr(nr), 0, 0, 0, 0, 0, 0)
			fmt.Fprintf(out, "errno %d (%v)\n", int(errno), errno)
		default:
			fmt.Fprintln(out, "unknown probe argument")
		}
	}
	out.Flush()
	os.Exit(exit)
}

// inheritedFds lists /proc/self/fd with raw system calls (no Go file, so no poller
// descriptor appears), each with its target and the open flags from fdinfo. A descriptor
// that is close-on-exec did not come through the execve: the Go runtime opened it before
// main (since Go 1.25 it keeps its cgroup's CPU limit files open), so it is left out.
func inheritedFds() []string {
	dir, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return []string{"open /proc/self/fd: " + err.Error()}
	}
	var names []string
	buf := make([]byte, 4096)
	for {
		n, err := unix.ReadDirent(dir, buf)
		if err != nil || n == 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	var lines []string
	for _, name := range names {
		if name == strconv.Itoa(dir) {
			continue
		}
		target := make([]byte, 4096)
		n, err := unix.Readlink("/proc/self/fd/"+name, target)
		t := errText(err)
		if err == nil {
			t = string(target[:n])
		}
		flags := fdFlags(name)
		if f, err := strconv.ParseUint(strings.TrimPrefix(flags, "flags="), 8, 64); err == nil && f&unix.O_CLOEXEC != 0 {
			continue
		}
		lines = append(lines, name+" -> "+t+" "+flags)
	}
	unix.Close(dir)
	sort.Slice(lines, func(i, j int) bool { return fdNum(lines[i]) < fdNum(lines[j]) })
	return lines
}

func fdNum(line string) int {
	n, _ := strconv.Atoi(strings.Fields(line)[0])
	return n
}

// fdFlags reads the "flags:" line of /proc/self/fdinfo/N with raw calls as well.
func fdFlags(name string) string {
	fd, err := unix.Open("/proc/self/fdinfo/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "fdinfo: " + err.Error()
	}
	defer unix.Close(fd)
	buf := make([]byte, 4096)
	n, _ := unix.Read(fd, buf)
	for _, l := range strings.Split(string(buf[:max(n, 0)]), "\n") {
		if strings.HasPrefix(l, "flags:") {
			return "flags=" + strings.TrimSpace(strings.TrimPrefix(l, "flags:"))
		}
	}
	return "flags=?"
}

func statusLines(file string, keys ...string) {
	data, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintln(out, errText(err))
		return
	}
	have := map[string]string{}
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			have[k] = strings.TrimSpace(v)
		}
	}
	for _, k := range keys {
		fmt.Fprintf(out, "%s: %s\n", k, have[k])
	}
}

// process prints the ids and the session: whether the process leads its session and its
// process group, and its controlling terminal; then how many processes its /proc shows.
func process() {
	pid := os.Getpid()
	sid, _ := unix.Getsid(0)
	pgid := unix.Getpgrp()
	tty := "?"
	if data, err := os.ReadFile("/proc/self/stat"); err == nil {
		if i := strings.LastIndexByte(string(data), ')'); i > 0 {
			if f := strings.Fields(string(data[i+1:])); len(f) > 4 {
				tty = f[4]
			}
		}
	}
	fmt.Fprintf(out, "pid=%d ppid=%d sid=%d pgid=%d session-leader=%t group-leader=%t tty_nr=%s\n",
		pid, os.Getppid(), sid, pgid, sid == pid, pgid == pid, tty)
	ents, err := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			n++
		}
	}
	fmt.Fprintf(out, "processes in /proc: %d\n", n)
	if err != nil {
		fmt.Fprintln(out, errText(err))
	}
}

func cat(file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintln(out, errText(err))
		return
	}
	out.Write(data)
	if len(data) > 0 && data[len(data)-1] != '\n' {
		fmt.Fprintln(out)
	}
}

// ls prints the directory itself as ".", then each entry, sorted by name.
func ls(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		fmt.Fprintln(out, errText(err))
		return
	}
	stat(dir, ".")
	for _, e := range ents {
		stat(filepath.Join(dir, e.Name()), e.Name())
	}
}

// stat prints type and permission bits as ls does, owner, device numbers for devices, size
// for regular files and the target for symlinks. Never times or inode numbers.
func stat(path, name string) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		fmt.Fprintf(out, "%s: %s\n", name, errText(err))
		return
	}
	line := fmt.Sprintf("%s %s %d:%d", name, modeString(st.Mode), st.Uid, st.Gid)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR, unix.S_IFBLK:
		line += fmt.Sprintf(" dev=%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	case unix.S_IFREG:
		line += fmt.Sprintf(" size=%d", st.Size)
	case unix.S_IFLNK:
		t, err := os.Readlink(path)
		line += " -> " + t + errText(err)
	}
	fmt.Fprintln(out, line)
}

func modeString(m uint32) string {
	types := map[uint32]byte{unix.S_IFDIR: 'd', unix.S_IFCHR: 'c', unix.S_IFBLK: 'b', unix.S_IFLNK: 'l',
		unix.S_IFIFO: 'p', unix.S_IFSOCK: 's', unix.S_IFREG: '-'}
	b := []byte{types[m&unix.S_IFMT]}
	if b[0] == 0 {
		b[0] = '?'
	}
	for i, c := range "rwxrwxrwx" {
		if m&(1<<(8-i)) != 0 {
			b = append(b, byte(c))
		} else {
			b = append(b, '-')
		}
	}
	special := []struct {
		bit  uint32
		pos  int
		x, n byte
	}{{unix.S_ISUID, 3, 's', 'S'}, {unix.S_ISGID, 6, 's', 'S'}, {unix.S_ISVTX, 9, 't', 'T'}}
	for _, s := range special {
		if m&s.bit != 0 {
			if b[s.pos] == 'x' {
				b[s.pos] = s.x
			} else {
				b[s.pos] = s.n
			}
		}
	}
	return string(b)
}

func tryWrite(path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(out, "read: %s\n", errText(err))
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err == nil {
			f.Close()
		}
		fmt.Fprintf(out, "open for writing: %s\n", okOr(err))
		return
	}
	fmt.Fprintf(out, "read: %d bytes\n", len(data))
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err == nil {
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	fmt.Fprintf(out, "write back: %s\n", okOr(err))
}

func tryCreate(path string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	fmt.Fprintf(out, "create: %s\n", okOr(err))
	if err == nil {
		f.Close()
		fmt.Fprintf(out, "remove: %s\n", okOr(os.Remove(path)))
	}
}

func okOr(err error) string {
	if err == nil {
		return "ok"
	}
	return errText(err)
}

// errText is the error's errno text alone when it has one (the path is the caller's).
func errText(err error) string {
	if err == nil {
		return ""
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		return "error: " + errno.Error()
	}
	return "error: " + err.Error()
}
