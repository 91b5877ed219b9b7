package libcontainer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/berth-project/berth/cgroups"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
)

// DefaultRoot is where state lives unless --root says otherwise (runc uses /run/runc).
const DefaultRoot = "/run/berth"

// Container is a handle on one container's state directory, <root>/<id>.
type Container struct {
	ID    string
	State *State
	// HookDir is where Start's poststart and Delete's poststop hooks run: "" is the caller's
	// working directory (runc's start and delete); `run` sets the bundle, where runc's run is.
	HookDir string
	dir     string
	lock    *os.File
}

// idAllowed is runc's rule for ids (^[\w+\-\.]+$, \w being ASCII letters, digits and '_'),
// as a loop rather than a regexp compiled in every berth process; ids starting with "." are
// kept for berth's own data (the image store lives in <root>/.images).
func idAllowed(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '_' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return id != ""
}

// ValidateID rejects ids that could name a path outside the root or clash with berth's data.
func ValidateID(id string) error {
	switch {
	case id == "":
		return errors.New("container id: must not be empty")
	case len(id) > 1024:
		return errors.New("container id: longer than 1024 bytes")
	case id[0] == '.':
		return fmt.Errorf("container id %q: must not start with '.'", id)
	case !idAllowed(id):
		return fmt.Errorf("container id %q: only letters, digits, '_', '+', '-' and '.' are allowed", id)
	}
	return nil
}

// lockDir takes an exclusive flock on <dir>/lock; every command that changes a container holds
// it, so concurrent commands cannot interleave their writes. Only create makes the file (in
// its staging directory, before publishDir): a command that found the container and waits
// while a delete removes it must not make the file again, which left the directory behind,
// not empty, with two `delete --force` racing.
func lockDir(dir string, create bool) (*os.File, error) {
	flags := os.O_RDWR | unix.O_CLOEXEC
	if create {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), flags, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ErrNotExist is returned for unknown ids. Its text is runc's: containerd's shim matches
// "does not exist" (no such container), and the id is on the caller's command line.
type ErrNotExist struct{ ID string }

func (e ErrNotExist) Error() string { return "container does not exist" }

// Load opens and locks an existing container. Callers must Close it.
func Load(root, id string) (*Container, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	dir := filepath.Join(root, id)
	if err := checkStateDir(dir); err != nil {
		return nil, err
	}
	lock, err := lockDir(dir, false)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, ErrNotExist{id}
		}
		return nil, err
	}
	s, err := loadState(dir)
	if err != nil {
		lock.Close()
		if errors.Is(err, os.ErrNotExist) {
			// Deleted while we waited for the lock, or a create that died before its
			// first write: either way there is no container to act on.
			return nil, ErrNotExist{id}
		}
		return nil, err
	}
	c := &Container{ID: id, State: s, dir: dir, lock: lock}
	if explain.Enabled() {
		explain.Stepf("libcontainer.Load", "flock %s, read state.json: %s, init pid %d, cgroup %s", filepath.Join(dir, "lock"), c.status(), s.Pid, s.CgroupPath)
	}
	return c, nil
}

// LoadUnlocked reads a container's state without taking its lock, for read-only commands
// (state, list) that must not wait behind a long create.
func LoadUnlocked(root, id string) (*Container, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	dir := filepath.Join(root, id)
	if err := checkStateDir(dir); err != nil {
		return nil, err
	}
	s, err := loadState(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, ErrNotExist{id}
		}
		return nil, err
	}
	return &Container{ID: id, State: s, dir: dir}, nil
}

// checkStateDir refuses, for root, a container directory that is a symlink or is not root's:
// only a user who owns the state root could have put it there, and its state decides what
// root signals, removes and runs (the CLI checks the state root itself: checkRootOwner).
func checkStateDir(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil // not there: the caller's lookup says so
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: not a directory (%s): root does not act on state another user made", dir, fi.Mode().Type())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
		return fmt.Errorf("%s: owned by uid %d: root does not act on state another user made", dir, st.Uid)
	}
	return nil
}

// Close releases the container's lock.
func (c *Container) Close() {
	if c.lock != nil {
		c.lock.Close()
		c.lock = nil
	}
}

// Dir is the container's state directory.
func (c *Container) Dir() string { return c.dir }

// List returns every container under root, sorted by id.
func List(root string) ([]*Container, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []*Container
	for _, e := range ents {
		if !e.IsDir() || ValidateID(e.Name()) != nil {
			continue
		}
		c, err := LoadUnlocked(root, e.Name())
		if err != nil {
			continue
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// cgroup rebuilds the container's cgroup manager from its recorded path.
func (c *Container) cgroup() (cgroups.Manager, error) {
	return cgroups.Open(c.State.CgroupPath, c.ID, c.State.SystemdCgroup)
}

func (c *Container) paused() bool {
	m, err := c.cgroup()
	if err != nil {
		return false
	}
	p, err := m.Paused()
	return err == nil && p
}

// newDirPrefix marks a container directory still being prepared by a create; the leading '.'
// keeps it out of List and out of the id namespace.
const newDirPrefix = ".new-"

// publishDir makes <root>/<id> appear atomically, already locked and already holding a
// state.json: the directory is prepared under a private name and renamed into place without
// replacing anything. So no command ever sees a container directory without a state, and a
// duplicate id fails here, before any resource exists.
func (c *Container) publishDir(root string) error {
	tmp, err := os.MkdirTemp(root, newDirPrefix+c.ID+"-")
	if err != nil {
		return rootError(root, err)
	}
	if err := os.Chmod(tmp, 0o711); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	lock, err := lockDir(tmp, true)
	if err == nil {
		err = c.State.save(tmp)
	}
	dir := filepath.Join(root, c.ID)
	if err == nil {
		err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dir, unix.RENAME_NOREPLACE)
		if errors.Is(err, unix.EEXIST) {
			err = fmt.Errorf("container with id %q already exists", c.ID)
		}
	}
	if err != nil {
		if lock != nil {
			lock.Close()
		}
		os.RemoveAll(tmp)
		return err
	}
	c.dir, c.lock = dir, lock
	return nil
}

// removeAbandonedDirs clears directories of creates killed before publishDir renamed them:
// they hold nothing but a lock and a state. A directory whose lock is still held belongs to a
// create in progress and is left alone.
func removeAbandonedDirs(root string) {
	dirs, _ := filepath.Glob(filepath.Join(root, newDirPrefix+"*"))
	for _, d := range dirs {
		// A live create renames its directory within microseconds; an old one was killed.
		// (Its lock alone cannot tell: it is taken a moment after the directory exists.)
		if st, err := os.Stat(d); err != nil || time.Since(st.ModTime()) < time.Minute {
			continue
		}
		f, err := os.OpenFile(filepath.Join(d, "lock"), os.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			os.RemoveAll(d)
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			os.RemoveAll(d)
		}
		f.Close()
	}
}

// RemoveAbandoned clears what is left of container id when Load finds no container: the
// directories that creates of id killed before publishDir left (<root>/.new-<id>-<digits>),
// whatever their age, and <root>/<id> itself if it lacks its lock or its state (a delete
// killed in its last step, the removal of the directory: a published directory always has
// both, from publishDir). `delete id` calls it, as runc removes the directory there. A
// staging directory whose lock is held belongs to a create still running and is left to it.
func RemoveAbandoned(root, id string) {
	if ValidateID(id) != nil {
		return
	}
	dir := filepath.Join(root, id)
	if _, err := os.Lstat(dir); err == nil {
		_, errLock := os.Lstat(filepath.Join(dir, "lock"))
		_, errState := os.Lstat(filepath.Join(dir, stateFile))
		if errors.Is(errLock, os.ErrNotExist) || errors.Is(errState, os.ErrNotExist) {
			os.RemoveAll(dir)
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(root, newDirPrefix+id+"-*"))
	for _, d := range dirs {
		suffix := strings.TrimPrefix(filepath.Base(d), newDirPrefix+id+"-")
		if suffix == "" || strings.Trim(suffix, "0123456789") != "" {
			continue // another id's (id-x), or not made by MkdirTemp
		}
		f, err := os.OpenFile(filepath.Join(d, "lock"), os.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			os.RemoveAll(d)
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			os.RemoveAll(d)
		}
		f.Close()
	}
}
