package libcontainer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Seeds are config.json files other tools wrote (testdata/configs: berth spec, runc spec and
// runc spec --rootless, containerd's `ctr oci spec`, what podman run handed its runtime), with
// root.path set to "rootfs".
func configSeeds(f *testing.F) [][]byte {
	paths, _ := filepath.Glob("testdata/configs/*.json")
	var out [][]byte
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, data)
	}
	if len(out) == 0 {
		f.Fatal("no seeds in testdata/configs")
	}
	return out
}

// One bundle per fuzzing process: config.json is rewritten for each input.
var (
	fuzzBundleMu sync.Mutex
	fuzzBundle   string
)

func bundleFor(t *testing.T) string {
	fuzzBundleMu.Lock()
	defer fuzzBundleMu.Unlock()
	if fuzzBundle == "" {
		// Named by pid: a fuzzing worker is killed at the end, and the next run removes what
		// the dead ones left.
		olds, _ := filepath.Glob(filepath.Join(os.TempDir(), "berth-fuzz-bundle-*"))
		for _, d := range olds {
			pid, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(d), "berth-fuzz-bundle-"), "-")
			if n, err := strconv.Atoi(pid); err == nil && unix.Kill(n, 0) == unix.ESRCH {
				os.RemoveAll(d)
			}
		}
		dir, err := os.MkdirTemp("", fmt.Sprintf("berth-fuzz-bundle-%d-", os.Getpid()))
		if err != nil {
			panic(err)
		}
		if err := os.Mkdir(filepath.Join(dir, "rootfs"), 0o755); err != nil {
			panic(err)
		}
		fuzzBundle = dir
	}
	return fuzzBundle
}

func removeBundle() {
	fuzzBundleMu.Lock()
	defer fuzzBundleMu.Unlock()
	if fuzzBundle != "" {
		os.RemoveAll(fuzzBundle)
		fuzzBundle = ""
	}
}

// An error from LoadSpec is one line that starts with the file's path and then names where
// the problem is: a field (process.args, linux.seccomp.syscalls[2].action, mounts[0] ...),
// the top level, or a line of malformed JSON.
var fieldRe = regexp.MustCompile(`^(line \d+: |\(top level\)|[a-zA-Z][a-zA-Z0-9]*(\[\d+\]|\.[a-zA-Z][a-zA-Z0-9]*)*[ :.\[(])`)

func loadAndCheck(t *testing.T, data []byte) {
	bundle := bundleFor(t)
	path := filepath.Join(bundle, "config.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// A hang is a bug too: the worker dies with the input saved.
	timer := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("LoadSpec hung on %q", data)) })
	spec, err := LoadSpec(bundle)
	timer.Stop()
	if err == nil {
		if spec == nil || spec.Process == nil || spec.Linux == nil || spec.Root == nil {
			t.Fatalf("LoadSpec accepted a config without process, root or linux")
		}
		return
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\n\r") {
		t.Fatalf("error on more than one line: %q", msg)
	}
	rest, ok := strings.CutPrefix(msg, path+": ")
	if !ok {
		t.Fatalf("error does not start with the config's path: %q", msg)
	}
	if !fieldRe.MatchString(rest) {
		t.Fatalf("error names no field: %q", msg)
	}
	// Nothing is made in the bundle by loading it.
	ents, _ := os.ReadDir(bundle)
	if len(ents) != 2 {
		t.Fatalf("the bundle holds %d entries after LoadSpec", len(ents))
	}
}

// FuzzLoadSpec: whole config.json files, mutated as bytes.
func FuzzLoadSpec(f *testing.F) {
	for _, s := range configSeeds(f) {
		f.Add(s)
	}
	f.Cleanup(removeBundle)
	f.Fuzz(func(t *testing.T, data []byte) {
		loadAndCheck(t, data)
	})
}

// FuzzSpecField: one real config with one value replaced, so that the input gets past JSON
// decoding and exercises the checks. field is a dotted path (process.args.0, linux.seccomp),
// value any JSON.
func FuzzSpecField(f *testing.F) {
	seeds := configSeeds(f)
	for i := range seeds {
		f.Add(uint8(i), "process.args.0", []byte(`""`))
		f.Add(uint8(i), "linux.namespaces.0.type", []byte(`"cgroup"`))
		f.Add(uint8(i), "mounts.1.destination", []byte(`"dev"`))
		f.Add(uint8(i), "process.rlimits", []byte(`[{"type":"RLIMIT_NOFILE","hard":1,"soft":2}]`))
		f.Add(uint8(i), "linux.seccomp", []byte(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":7,"value":1,"op":"SCMP_CMP_EQ"}]}]}`))
		f.Add(uint8(i), "linux.devices", []byte(`[{"path":"/dev/x","type":"q","major":1,"minor":3}]`))
		f.Add(uint8(i), "hooks.prestart", []byte(`[{"path":"rel/hook"}]`))
		f.Add(uint8(i), "linux.uidMappings", []byte(`[{"containerID":0,"hostID":1000,"size":0}]`))
		f.Add(uint8(i), "linux.sysctl", []byte(`{"net/../x":"1"}`))
		f.Add(uint8(i), "process.capabilities.bounding.0", []byte(`"CAP_NOPE"`))
		f.Add(uint8(i), "linux.rootfsPropagation", []byte(`"sideways"`))
		f.Add(uint8(i), "linux.timeOffsets", []byte(`{"monotonic":{"secs":1}}`))
		f.Add(uint8(i), "process.ioPriority", []byte(`{"class":"IOPRIO_CLASS_X","priority":9}`))
		f.Add(uint8(i), "process.scheduler", []byte(`{"policy":"SCHED_X"}`))
		f.Add(uint8(i), "linux.intelRdt", []byte(`{"closID":"../x"}`))
		f.Add(uint8(i), "linux.personality", []byte(`{"domain":"LINUX32"}`))
		f.Add(uint8(i), "root.path", []byte(`"no/such"`))
		f.Add(uint8(i), "linux.sysctl", []byte(`{"kernel.shmmax":"1"}`))
		f.Add(uint8(i), "mounts.0", []byte(`{"destination":"/x","type":"tmpfs","uidMappings":[{"containerID":0,"hostID":1,"size":1}]}`))
		f.Add(uint8(i), "linux.namespaces.0", []byte(`{"type":"network","path":"/proc/1/ns/net"}`))
	}
	f.Cleanup(removeBundle)
	f.Fuzz(func(t *testing.T, seed uint8, field string, value []byte) {
		var doc any
		if err := json.Unmarshal(seeds[int(seed)%len(seeds)], &doc); err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(value, &v); err != nil {
			return
		}
		if !setPath(&doc, strings.Split(field, "."), v) {
			return
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(doc); err != nil {
			t.Fatal(err)
		}
		loadAndCheck(t, buf.Bytes())
	})
}

// setPath sets the value at a dotted path: a missing object key is added, a list index must
// exist or be one past the end.
func setPath(doc *any, keys []string, v any) bool {
	if len(keys) == 0 {
		*doc = v
		return true
	}
	switch d := (*doc).(type) {
	case map[string]any:
		child, ok := d[keys[0]]
		if !ok {
			if len(keys) > 1 {
				child = map[string]any{}
			}
		}
		if !setPath(&child, keys[1:], v) {
			return false
		}
		d[keys[0]] = child
		return true
	case []any:
		i, err := strconv.Atoi(keys[0])
		if err != nil || i < 0 || i > len(d) {
			return false
		}
		if i == len(d) {
			d = append(d, nil)
			*doc = d
		}
		return setPath(&d[i], keys[1:], v)
	}
	return false
}
