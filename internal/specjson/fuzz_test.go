package specjson

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// FuzzSpec: arbitrary bytes decoded by the fast path and by encoding/json (as a Decoder and
// as json.Unmarshal). Whenever the fast path takes an input, its result must be encoding/json's
// and encoding/json must not have refused it; every spec decoded must encode to json.Marshal's
// bytes. The input is also put raw (any bytes, invalid UTF-8 included) into strings and keys
// of a spec, for the encoder.
func FuzzSpec(f *testing.F) {
	for _, data := range fixtures(f) {
		f.Add(data)
	}
	for _, data := range runcSpecs(f) {
		f.Add(data)
	}
	// Other JSON of the repository: update's resources, a seccomp profile (mostly unknown keys).
	for _, glob := range []string{"../../cmd/berth/testdata/resources/*.json", "../../seccomp/testdata/profiles/*.json"} {
		paths, _ := filepath.Glob(glob)
		for _, p := range paths {
			if data, err := os.ReadFile(p); err == nil {
				f.Add(data)
			}
		}
	}
	for _, c := range edgeCases {
		f.Add([]byte(c.in))
	}
	f.Add([]byte(`{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0,"additionalGids":[0,1,2]},` +
		`"args":["sh","-c","echo \"<&>\" \u2028 \ud83d\ude00"],"env":["A=\u00e9","B=\\n"],"cwd":"/",` +
		`"rlimits":[{"type":"RLIMIT_NOFILE","hard":18446744073709551615,"soft":1024}],"oomScoreAdj":-999},` +
		`"root":{"path":"rootfs","readonly":true},"linux":{"resources":{"memory":{"limit":-1,"swap":9223372036854775807},` +
		`"cpu":{"quota":-1,"period":100000,"cpus":"0-1"},"devices":[{"allow":false,"access":"rwm"},` +
		`{"allow":true,"type":"c","major":1,"minor":-1,"access":"rwm"}]},"sysctl":{"net.ipv4.ip_forward":"1"},` +
		`"timeOffsets":{"monotonic":{"secs":-100,"nanosecs":5}},"netDevices":{"eth0":{"name":"x"}}},` +
		`"annotations":{"b":"2","a":"1","<":">"},"Hostname":"case","hostname":"h","hostname":"h2"}`))
	f.Add([]byte(`{"process":{"args":["a","b","c"]},"process":{"args":["d"]},"process":{"args":[]},"process":{"args":["e","f"]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		check(t, data)
		var spec specs.Spec
		s := string(data)
		spec.Hostname = s
		spec.Annotations = map[string]string{s: s, "": s, s + "x": ""}
		spec.Process = &specs.Process{Args: []string{s}, Env: []string{}, Cwd: s}
		spec.Linux = &specs.Linux{Sysctl: map[string]string{}, MaskedPaths: []string{s, s}}
		checkMarshal(t, &spec)
	})
}
