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
func runHooks(kind string, hooks []specs.Hook, st specs.State) error {
	if len(hooks) == 0 {
		return nil
	}
	state, err := json.Marshal(st)
	if err != nil {
		return err
	}
	for i, h := range hooks {
		explain.Stepf("libcontainer.runHooks", "%s hook %d: %s %q (state %s on stdin)", kind, i, h.Path, h.Args, st.Status)
		if err := runHook(h, state); err != nil {
			return fmt.Errorf("hooks.%s[%d] (%s): %w", kind, i, h.Path, err)
		}
	}
	return nil
}

// warnHooks runs hooks whose failure must not stop the lifecycle (poststart, poststop): a
// failing one is logged as a warning and the remaining ones still run (runtime.md).
func warnHooks(kind string, hooks []specs.Hook, st specs.State) {
	for i := range hooks {
		if err := runHooks(kind, hooks[i:i+1], st); err != nil {
			logrus.Warn(strings.Replace(err.Error(), kind+"[0]", fmt.Sprintf("%s[%d]", kind, i), 1))
		}
	}
}

func runHook(h specs.Hook, state []byte) error {
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
	cmd.Env = h.Env
	if cmd.Env == nil {
		cmd.Env = []string{} // the hook's env is exactly hooks[].env, never berth's
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
		if msg != "" {
			return fmt.Errorf("%w: %s", err, msg)
		}
		return err
	}
	return nil
}

// errHooks is how the init reports that berth failed the createRuntime step.
var errHooks = errors.New("berth create did not resume the init after its hooks")
