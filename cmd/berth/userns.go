package main

// An ordinary user's image commands (run and create with --image, image load, rm and prune)
// run in a user namespace of their own, as rootless podman does: berth runs the same command
// again in a new user and mount namespace, where the user's uid is 0 and the user's
// subordinate ids (/etc/subuid, /etc/subgid) are 1 and up. There, layers are applied with
// their owners (chown works), the overlay is mounted (userxattr), and the container is made
// by root of that namespace, as a runtime under rootless podman is; the mount namespace dies
// with that berth, so nothing of it stays on the host. Host root is never mapped, so no file
// of a layer becomes root's on the host (a setuid-root file of an image is setuid to the user).
//
// The child starts unmapped, waits on a pipe until namespaces.WriteIDMaps (newuidmap,
// newgidmap) has written its maps, then execs itself again: its first exec, by an unmapped
// uid, dropped every capability; the second, as uid 0 of the namespace, gets them all.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
	"github.com/berth-project/berth/namespaces"
)

// usernsSyncEnv names the descriptor on which a berth started in a new user namespace waits
// for its maps.
const usernsSyncEnv = "_BERTH_USERNS_SYNC"

// usernsChildStage is the first thing main does: in a berth just started in a new user
// namespace, wait for the maps, then exec again (with every capability there).
func usernsChildStage() {
	v := os.Getenv(usernsSyncEnv)
	if v == "" {
		return
	}
	os.Unsetenv(usernsSyncEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		os.Exit(1)
	}
	b := make([]byte, 1)
	n, _ := unix.Read(fd, b)
	unix.Close(fd)
	if n != 1 {
		os.Exit(1) // the parent failed to map us and says why
	}
	err = unix.Exec("/proc/self/exe", os.Args, os.Environ())
	fmt.Fprintf(os.Stderr, "berth: re-exec in the user namespace: %v\n", err)
	os.Exit(1)
}

// imageUserNS runs this command again in a user namespace of its own when an ordinary user
// (euid not 0) gives it. ran says it did; err is then its failure or exit status.
func imageUserNS(c *cli.Context) (ran bool, err error) {
	if os.Geteuid() == 0 {
		return false, nil // root: the host's, or already in a user namespace (mapped)
	}
	uids, gids, err := subIDMappings()
	if err != nil {
		return true, err
	}
	code, err := rerunInUserNS(os.Args, uids, gids, c.Int("preserve-fds"))
	if err != nil {
		return true, err
	}
	if code != 0 {
		return true, exitError{code}
	}
	return true, nil
}

// subIDMappings are the maps of an ordinary user's image namespace: the user's own uid (gid)
// as 0, then every range /etc/subuid (/etc/subgid) gives the user, in file order, from 1.
func subIDMappings() (uids, gids []specs.LinuxIDMapping, err error) {
	uid, gid := os.Geteuid(), os.Getegid()
	names := []string{strconv.Itoa(uid)}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		names = append([]string{u.Username}, names...)
	}
	if uids, err = subIDMapping("uid", "/etc/subuid", names, uid); err != nil {
		return nil, nil, err
	}
	if gids, err = subIDMapping("gid", "/etc/subgid", names, gid); err != nil {
		return nil, nil, err
	}
	return uids, gids, nil
}

// subIDMapping is the map of kind ("uid" or "gid") from file for the user of names, whose own
// id is own: own as 0, then the user's ranges from 1. A range holding host id 0 or own is
// refused: host root must never be mapped, and no id twice.
func subIDMapping(kind, file string, names []string, own int) ([]specs.LinuxIDMapping, error) {
	ranges, err := namespaces.SubIDRanges(file, names)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(ranges) == 0 {
		return nil, fmt.Errorf("no subordinate %s range for user %s in %s: an ordinary user's images are applied and run in a user namespace that maps the ids of their files to that range (add one, e.g. usermod --add-sub%ss 100000-165535 %s)", kind, strings.Join(names, " (")+")", file, kind, names[0])
	}
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(own), Size: 1}}
	next := uint64(1)
	for _, r := range ranges {
		if r[0] == 0 || r[0] <= uint64(own) && uint64(own) < r[0]+r[1] {
			return nil, fmt.Errorf("%s: the range %d-%d of user %s holds host %s 0 or the user's own: refused", file, r[0], r[0]+r[1]-1, names[0], kind)
		}
		m = append(m, specs.LinuxIDMapping{ContainerID: uint32(next), HostID: uint32(r[0]), Size: uint32(r[1])})
		next += r[1]
	}
	return m, nil
}

// rerunInUserNS runs berth with args (its own command line, or a hidden command) in a new
// user and mount namespace mapped by uids and gids, with the same stdio (and preserved
// descriptors), and returns its exit status. Terminal signals reach it through its process
// group; others are forwarded.
func rerunInUserNS(args []string, uids, gids []specs.LinuxIDMapping, preserve int) (int, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer w.Close()
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = args
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	for i := 0; i < preserve; i++ {
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(3+i), "preserved"))
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, r)
	cmd.Env = append(os.Environ(), usernsSyncEnv+"="+strconv.Itoa(3+preserve))
	// Pdeathsig follows the thread that started the child: keep this one.
	runtime.LockOSThread()
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWNS, Pdeathsig: unix.SIGKILL}
	explain.Stepf("main.rerunInUserNS", "run %s in a new user and mount namespace", strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		r.Close()
		return 0, fmt.Errorf("starting berth in a user namespace: %w", err)
	}
	r.Close()
	if err := namespaces.WriteIDMaps(cmd.Process.Pid, uids, gids); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return 0, fmt.Errorf("the user namespace for an ordinary user's images: %w", err)
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGHUP, unix.SIGUSR1, unix.SIGUSR2)
	// ^C and ^\ reach the child through the terminal's process group already.
	signal.Ignore(unix.SIGINT, unix.SIGQUIT)
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	if _, err := w.Write([]byte{1}); err != nil {
		_ = cmd.Process.Kill()
	}
	w.Close()
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return 0, err
}
