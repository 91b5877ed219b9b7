package libcontainer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/rawfile"
	"github.com/berth-project/berth/internal/specjson"
)

// LoadSpec reads and checks bundle/config.json. Errors name the field or path at fault, on one
// line, because containerd and podman show only the last line of our log to their users.
func LoadSpec(bundle string) (*specs.Spec, error) {
	path := filepath.Join(bundle, "config.json")
	data, err := rawfile.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such file or directory (is %s an OCI bundle?)", path, bundle)
		}
		return nil, err
	}
	// The generated decoder takes what tools write; anything else (errors included) is
	// decoded by encoding/json, whose results and errors are the contract.
	spec, ok := specjson.Decode(data)
	if !ok {
		spec = new(specs.Spec)
		dec := json.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(spec); err != nil {
			return nil, fmt.Errorf("%s: %s", path, describeJSONError(data, err))
		}
	}
	if err := ValidateSpec(spec, bundle); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return spec, nil
}

// describeJSONError turns encoding/json's errors into "field: problem" (or "line N: problem").
func describeJSONError(data []byte, err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "(top level)"
		}
		return fmt.Sprintf("%s: expected %s, got JSON %s", field, te.Type, te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + bytes.Count(data[:se.Offset], []byte("\n"))
		return fmt.Sprintf("line %d: malformed JSON: %s", line, se.Error())
	}
	return "malformed JSON: " + err.Error()
}

// ValidateSpec checks what berth needs before it creates anything, so that bad input leaves
// nothing behind.
func ValidateSpec(spec *specs.Spec, bundle string) error {
	if spec.Version == "" {
		return errors.New("ociVersion: must be set")
	}
	if spec.Root == nil || spec.Root.Path == "" {
		return errors.New("root.path: must be set")
	}
	rootfs := RootfsPath(spec, bundle)
	st, err := os.Stat(rootfs)
	if err != nil {
		return fmt.Errorf("root.path: %s: %s", oneLine(rootfs), errnoText(err))
	}
	if !st.IsDir() {
		return fmt.Errorf("root.path: %s: not a directory", oneLine(rootfs))
	}
	if err := ValidateProcess(spec.Process); err != nil {
		return err
	}
	if spec.Linux == nil {
		return errors.New("linux: must be set (berth runs Linux containers)")
	}
	return validateLinux(spec)
}

// ValidateProcess checks a process description: config.json's, or one given to exec.
func ValidateProcess(p *specs.Process) error {
	if p == nil {
		return errors.New("process: must be set")
	}
	if len(p.Args) == 0 || p.Args[0] == "" {
		return errors.New("process.args: must name the program to run")
	}
	if p.Cwd == "" || !filepath.IsAbs(p.Cwd) {
		return fmt.Errorf("process.cwd: %q: must be an absolute path", p.Cwd)
	}
	for i, e := range p.Env {
		if !strings.Contains(e, "=") {
			return fmt.Errorf("process.env[%d]: %q: must be NAME=VALUE", i, e)
		}
	}
	for i, r := range p.Rlimits {
		if _, ok := rlimitByName[r.Type]; !ok {
			return fmt.Errorf("process.rlimits[%d].type: unknown resource %q", i, r.Type)
		}
		if r.Soft > r.Hard {
			return fmt.Errorf("process.rlimits[%d]: soft limit %d is above hard limit %d", i, r.Soft, r.Hard)
		}
	}
	if p.OOMScoreAdj != nil && (*p.OOMScoreAdj < -1000 || *p.OOMScoreAdj > 1000) {
		return fmt.Errorf("process.oomScoreAdj: %d: must be within [-1000, 1000]", *p.OOMScoreAdj)
	}
	return nil
}

// RootfsPath is root.path made absolute against the bundle.
func RootfsPath(spec *specs.Spec, bundle string) string {
	if filepath.IsAbs(spec.Root.Path) {
		return filepath.Clean(spec.Root.Path)
	}
	return filepath.Join(bundle, spec.Root.Path)
}

func errnoText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// oneLine is s as it is, or quoted when it holds a character that would break the one-line
// error (a newline, a control character): a path or name from config.json goes in errors.
func oneLine(s string) string {
	if q := strconv.Quote(s); q[1:len(q)-1] != s {
		return q
	}
	return s
}
