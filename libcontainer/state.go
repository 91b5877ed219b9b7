package libcontainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/rawfile"
	"github.com/berth-project/berth/internal/specjson"
	"github.com/berth-project/berth/internal/wire"
)

// Status values, as runtime.md defines them plus runc's "paused".
const (
	Creating = "creating"
	Created  = "created"
	Running  = "running"
	Stopped  = "stopped"
	Paused   = "paused"
)

// State is what berth keeps in <root>/<id>/state.json. The status itself is never stored once
// the container exists: it is read from the kernel each time (is init alive, is it still
// waiting on the exec fifo, is its cgroup frozen), so no crash can leave it stale.
type State struct {
	wire.StateFields
	// Config is the spec the container was created from (exec and update need it). Read
	// through Spec: loadState keeps it undecoded (rawConfig) until then, since start and
	// delete need only its hooks (hooks). It is decoded and encoded by internal/specjson
	// (encoding/json's way without its reflection: ~0.7 ms a fresh process otherwise), as are
	// the other fields (wire.StateDoc).
	Config    *specs.Spec `json:"config"`
	rawConfig json.RawMessage
}

// Spec is the container's config (nil if its state has none).
func (s *State) Spec() (*specs.Spec, error) {
	if s.Config == nil && len(s.rawConfig) > 0 && string(s.rawConfig) != "null" {
		spec, ok := specjson.Unmarshal(s.rawConfig)
		if !ok {
			spec = new(specs.Spec)
			if err := json.Unmarshal(s.rawConfig, spec); err != nil {
				return nil, fmt.Errorf("container %s: corrupt config in its state: %w", s.ID, err)
			}
		}
		s.Config = spec
	}
	return s.Config, nil
}

// hooks is the config's hooks alone, without decoding the rest of it.
func (s *State) hooks() *specs.Hooks {
	if s.Config != nil {
		return s.Config.Hooks
	}
	// The whole config through the generated decoder costs less than encoding/json's caches
	// for the hooks' types alone (docs/performance.md); it is not kept, so that a save
	// writes the config back as it was read.
	if spec, ok := specjson.Unmarshal(s.rawConfig); ok {
		return spec.Hooks
	}
	var only struct {
		Hooks *specs.Hooks `json:"hooks"`
	}
	_ = json.Unmarshal(s.rawConfig, &only)
	return only.Hooks
}

// OCIState is what `berth state` prints: runtime.md's state plus runc's extra fields.
type OCIState struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

const (
	stateFile = "state.json"
	fifoName  = "exec.fifo"
)

// save writes state.json atomically: readers see the old or the new file, never half of one.
func (s *State) save(dir string) error {
	// The config goes in as JSON already written: loaded and never decoded, as it was read;
	// else by internal/specjson, which writes json.Marshal's bytes (encoding/json only if it
	// gives up), as it does the document around it.
	config := s.rawConfig
	if s.Config != nil || config == nil {
		config, _ = specjson.Marshal(s.Config)
	}
	doc := wire.StateDoc{StateFields: s.StateFields, Config: config}
	data, ok := specjson.MarshalState(&doc)
	if !ok {
		var err error
		if data, err = json.Marshal(&doc); err != nil {
			return err
		}
	}
	tmp := filepath.Join(dir, "."+stateFile)
	if err := rawfile.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, stateFile))
}

func loadState(dir string) (*State, error) {
	data, err := rawfile.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	// The config stays raw until Spec or hooks need it.
	var doc wire.StateDoc
	if !specjson.UnmarshalState(data, &doc) {
		if err := json.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("%s: corrupt state: %w", dir, err)
		}
	}
	return &State{StateFields: doc.StateFields, rawConfig: doc.Config}, nil
}

// processStartTime reads field 22 of /proc/PID/stat; ok is false when the process is gone or
// is a zombie (it has exited: as far as the container is concerned, it stopped).
func processStartTime(pid int) (start uint64, ok bool) {
	if pid <= 0 {
		return 0, false
	}
	data, err := rawfile.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name may hold spaces and parentheses: fields start after the last ')'.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0, false
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return start, err == nil
}

// initAlive says whether the recorded init is still the process with that pid.
func (s *State) initAlive() bool {
	start, ok := processStartTime(s.Pid)
	return ok && start == s.PidStart
}

// status reads the container's status from the kernel.
func (c *Container) status() string {
	s := c.State
	if s.Creating {
		return Creating
	}
	if !s.initAlive() {
		return Stopped
	}
	// Frozen first: a created container can be paused too (runc says paused then).
	if c.paused() {
		return Paused
	}
	if _, err := os.Lstat(filepath.Join(c.dir, fifoName)); err == nil {
		return Created
	}
	return Running
}

// OCI returns the state as `berth state` prints it.
func (c *Container) OCI() OCIState {
	s := c.State
	st := OCIState{
		OCIVersion: s.OCIVersion, ID: s.ID, Status: c.status(), Bundle: s.Bundle,
		Rootfs: s.Rootfs, Created: s.Created, Owner: s.Owner, Annotations: s.Annotations,
	}
	if st.Status != Stopped {
		st.Pid = s.Pid
	}
	return st
}

// OwnerName is who owns the container, as runc's list says it: the owner of its state
// directory, by name ("#UID" when the uid has none).
func (c *Container) OwnerName() string {
	var st unix.Stat_t
	if err := unix.Stat(c.dir, &st); err != nil {
		return ""
	}
	if u, err := user.LookupId(strconv.Itoa(int(st.Uid))); err == nil {
		return u.Username
	}
	return "#" + strconv.Itoa(int(st.Uid))
}

// specState is runtime-spec's state of the container with the given status and pid (what
// hooks and seccomp agents receive).
func (c *Container) specState(status string, pid int) specs.State {
	s := c.State
	return specs.State{Version: s.OCIVersion, ID: s.ID, Status: specs.ContainerState(status),
		Pid: pid, Bundle: s.Bundle, Annotations: s.Annotations}
}

// Status is the container's current status.
func (c *Container) Status() string { return c.status() }

// isErrno is errors.Is for an errno, spelled out for readability at call sites.
func isErrno(err error, e unix.Errno) bool { return errors.Is(err, e) }
