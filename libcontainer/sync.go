package libcontainer

import (
	"encoding/json"
	"os"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/explain"
	"github.com/berth-project/berth/rootfs"
)

// initConfig is what `berth create` sends the init process over the init pipe.
type initConfig struct {
	Spec         *specs.Spec   `json:"spec"`
	Rootfs       rootfs.Config `json:"rootfs"`
	Explain      bool          `json:"explain,omitempty"`
	Detached     bool          `json:"detached,omitempty"`
	FifoFd       int           `json:"fifoFd"`
	PreserveFds  int           `json:"preserveFds,omitempty"`
	Setgroups    bool          `json:"setgroups"`
	NoNewKeyring bool          `json:"noNewKeyring,omitempty"`
	// Exec: a process joining a running container; there is no rootfs to build.
	Exec bool `json:"exec,omitempty"`
	// HookState is the container's state for the hooks the init runs (createContainer,
	// startContainer); its status is set per hook.
	HookState *specs.State `json:"hookState,omitempty"`
	// ConsoleFd is the socket the pty master is sent on (process.terminal), or -1.
	ConsoleFd int  `json:"consoleFd"`
	UserNS    bool `json:"userNS,omitempty"`
	// ExecRoot: for an exec into a container without a mount namespace, the root to chroot
	// into (/proc/INIT/root).
	ExecRoot string `json:"execRoot,omitempty"`

	// cwdAsUser: process.cwd was out of reach as root; the init enters it as the user.
	cwdAsUser bool
}

// Messages on the init pipe. The init's constructor, when it forks the real init, → parent:
// "pid" (the real init's pid; see namespaces.Plan.Forks). Init → parent: "step" (an explain step), "error" (init failed;
// it exits next), "hooks" (run prestart and createRuntime, then say "resume"), "seccomp" (take
// the NOTIFY listener to the agent, then say "seccompDone"), "ready" (everything is built,
// waiting for "go"), "handedOver" (init no longer dies with the parent). Parent → init: "go".
type syncMsg struct {
	Type string `json:"type"`
	Step string `json:"step,omitempty"`
	Msg  string `json:"msg,omitempty"`
	// At, on "step": when the init took it (Unix nanoseconds).
	At  int64 `json:"at,omitempty"`
	Pid int   `json:"pid,omitempty"`
	// SeccompFd, on "seccomp": the init's seccomp listener descriptor number.
	SeccompFd int `json:"seccompFd,omitempty"`
}

// initPipe is one end of the socketpair between `berth create` and the init process.
type initPipe struct {
	// onHooks runs berth's hooks when the init asks (parent side; see hooks.go).
	onHooks func() error
	// onSeccomp hands the init's NOTIFY listener (its descriptor number there) to the agent.
	onSeccomp func(fd int) error
	f         *os.File
	mu        sync.Mutex
	enc       *json.Encoder
	dec       *json.Decoder
}

func newInitPipe(f *os.File) *initPipe {
	return &initPipe{f: f, enc: json.NewEncoder(f), dec: json.NewDecoder(f)}
}

func (p *initPipe) send(v any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.enc.Encode(v)
}

func (p *initPipe) recv(v any) error { return p.dec.Decode(v) }

// forwardSteps makes the init process's explain steps travel to the parent, which prints them
// in order with its own.
func (p *initPipe) forwardSteps() {
	explain.SetSink(func(s explain.Step) {
		_ = p.send(syncMsg{Type: "step", Step: s.Name, Msg: s.Detail, At: s.At.UnixNano()})
	})
}
