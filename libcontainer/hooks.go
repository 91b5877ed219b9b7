package libcontainer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	"github.com/berth-project/berth/internal/explain"
)

// Hooks run at the points runtime.md names (config.md "POSIX-platform Hooks"):
//
//	prestart, createRuntime  berth create, in the runtime's namespaces, once the init has
//	                         made its mounts and before pivot_root ("hooks" on the init pipe)
//	createContainer          the init, in the container's namespaces, before pivot_root
//	startContainer           the init, after `start` and before the user's program
//	poststart                berth start / run, once the program runs (failures only warn)
//	poststop                 berth delete, once the container is gone (failures only warn)
//
// Each gets the container's state on stdin; a failure of the first four fails the step and
// the container is destroyed.
//
// Working directory and environment follow runc 1.1.5 (runtime.md leaves both open): a hook
// with no env gets the environment of the process that runs it, which for the runtime's
// hooks is berth's own (the caller's) and, in the init, process.env as runc's init has it
// (startContainer also gets the HOME the init added). The working directory is the bundle for
// prestart and createRuntime (and poststart of a foreground run), the rootfs as the host sees
// it for createContainer, process.cwd for startContainer, and the caller's for the poststart
// of `start` and the poststop of `delete`.

// hookPlace is where one kind of hook runs.
type hookPlace struct {
	dir string   // working directory; "" keeps the caller's
	env []string // the environment of a hook without env; nil is berth's own
}

// validateHooks checks every hook's path and timeout before anything is made.
func validateHooks(h *specs.Hooks) error {
	if h == nil {
		return nil
	}
	for kind, list := range hookLists(h) {
		for i, hk := range list {
			if !filepath.IsAbs(hk.Path) {
				return fmt.Errorf("hooks.%s[%d].path: %q must be an absolute path", kind, i, hk.Path)
			}
			if hk.Timeout != nil && *hk.Timeout <= 0 {
				return fmt.Errorf("hooks.%s[%d].timeout: %d must be a positive number of seconds", kind, i, *hk.Timeout)
			}
		}
	}
	return nil
}

func hookLists(h *specs.Hooks) map[string][]specs.Hook {
	return map[string][]specs.Hook{
		"prestart": h.Prestart, "createRuntime": h.CreateRuntime, "createContainer": h.CreateContainer,
		"startContainer": h.StartContainer, "poststart": h.Poststart, "poststop": h.Poststop,
	}
}

// runHooks runs one kind of hook in order and stops at the first failure.
func runHooks(kind string, hooks []specs.Hook, st specs.State, at hookPlace) error {
	if len(hooks) == 0 {
		return nil
	}
	state, err := json.Marshal(st)
	if err != nil {
		return err
	}
	for i, h := range hooks {
		explain.Stepf("libcontainer.runHooks", "%s hook %d: %s %q (state %s on stdin)", kind, i, h.Path, h.Args, st.Status)
		if err := runHook(h, state, at); err != nil {
			return fmt.Errorf("hooks.%s[%d] (%s): %w", kind, i, h.Path, err)
		}
	}
	return nil
}

// warnHooks runs hooks whose failure must not stop the lifecycle (poststart, poststop): a
// failing one is logged as a warning and the remaining ones still run (runtime.md).
func warnHooks(kind string, hooks []specs.Hook, st specs.State, at hookPlace) {
	for i := range hooks {
		if err := runHooks(kind, hooks[i:i+1], st, at); err != nil {
			logrus.Warn(strings.Replace(err.Error(), kind+"[0]", fmt.Sprintf("%s[%d]", kind, i), 1))
		}
	}
}

func runHook(h specs.Hook, state []byte, at hookPlace) error {
	ctx := context.Background()
	if h.Timeout != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, h.Path)
	if len(h.Args) > 0 {
		cmd.Args = h.Args
	}
	cmd.Dir = at.dir
	cmd.Env = h.Env
	if cmd.Env == nil {
		cmd.Env = at.env // nil again for berth's own hooks: exec.Cmd passes os.Environ()
	}
	cmd.Stdin = bytes.NewReader(state)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("timed out after %ds", *h.Timeout)
	}
	if err != nil {
		msg := strings.TrimSpace(out.String())
		if len(msg) > 512 {
			msg = msg[len(msg)-512:]
		}
		// runc's words lead, which callers (and runc's tests) look for.
		if msg != "" {
			return fmt.Errorf("error running hook: %w: %s", err, msg)
		}
		return fmt.Errorf("error running hook: %w", err)
	}
	return nil
}

// errHooks is how the init reports that berth failed the createRuntime step.
var errHooks = errors.New("berth create did not resume the init after its hooks")
