package libcontainer

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/explain"
	"github.com/berth-project/berth/internal/specjson"
	"github.com/berth-project/berth/internal/wire"
	"github.com/berth-project/berth/rootfs"
)

// initConfig is what `berth create` sends the init process over the init pipe.
type initConfig struct {
	Spec    *specs.Spec   `json:"spec"`
	Rootfs  rootfs.Config `json:"rootfs"`
	Explain bool          `json:"explain,omitempty"`
	// Timing: the steps are drawn on a timeline (--explain=html): the init marks when it
	// waits, and narrates until its execve (berth reads the pipe to its end).
	Timing       bool `json:"timing,omitempty"`
	Detached     bool `json:"detached,omitempty"`
	FifoFd       int  `json:"fifoFd"`
	PreserveFds  int  `json:"preserveFds,omitempty"`
	Setgroups    bool `json:"setgroups"`
	NoNewKeyring bool `json:"noNewKeyring,omitempty"`
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
type syncMsg = wire.Msg

// initPipe is one end of the socketpair between `berth create` and the init process.
type initPipe struct {
	// onHooks runs berth's hooks when the init asks (parent side; see hooks.go).
	onHooks func() error
	// onSeccomp hands the init's NOTIFY listener (its descriptor number there) to the agent.
	onSeccomp func(fd int) error
	f         *os.File
	// lane and pid name the process at the other end, for the steps relayed from it.
	lane string
	pid  int
	mu   sync.Mutex
	r    *bufio.Reader
}

func newInitPipe(f *os.File) *initPipe {
	return &initPipe{f: f, r: bufio.NewReader(f)}
}

// send writes v as one line of JSON, as a json.Encoder writes it; a message through
// internal/specjson (encoding/json's bytes without its reflection, cold in every create).
func (p *initPipe) send(v any) error {
	var data []byte
	if m, ok := v.(*syncMsg); ok {
		v = *m
	}
	if m, ok := v.(syncMsg); ok {
		data, ok = specjson.MarshalMsg(&m)
		if !ok {
			data = nil
		}
	}
	if data == nil {
		var err error
		if data, err = json.Marshal(v); err != nil {
			return err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := p.f.Write(append(data, '\n'))
	return err
}

// recv reads the next line into v, as json.Unmarshal into a zero value does (every sender,
// berth's json and the C stage's, ends each message with a newline): io.EOF at the end of
// the pipe, io.ErrUnexpectedEOF if it ends within a message.
func (p *initPipe) recv(v any) error {
	line, err := p.r.ReadBytes('\n')
	if err != nil {
		if len(line) == 0 {
			return err
		}
		if json.Unmarshal(line, v) != nil {
			return io.ErrUnexpectedEOF
		}
		return nil
	}
	if m, ok := v.(*syncMsg); ok && specjson.UnmarshalMsg(line, m) {
		return nil
	}
	return json.Unmarshal(line, v)
}

// forwardSteps makes the init process's explain steps travel to the parent, which prints them
// in order with its own.
func (p *initPipe) forwardSteps() {
	explain.SetSink(func(s explain.Step) {
		_ = p.send(syncMsg{Type: "step", Step: s.Name, Msg: s.Detail, At: s.At, Where: s.Where, Dur: s.Dur})
	})
}

// relayStep passes on a step read from the pipe, in the lane of the process at the other end.
func (p *initPipe) relayStep(m syncMsg) {
	explain.Relay(explain.Step{Name: m.Step, Detail: m.Msg, At: m.At, Where: m.Where, Dur: m.Dur}, p.lane, p.pid)
}
