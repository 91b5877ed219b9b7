package specjson

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/berth-project/berth/internal/specjson/gen"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The committed spec_gen.go is what the generator writes for the runtime-spec in go.mod: an
// upgrade that changes the types fails here until `go generate ./internal/specjson/`.
func TestGeneratedIsCurrent(t *testing.T) {
	want, err := gen.Generate()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("spec_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("spec_gen.go is not what internal/specjson/gen writes now: run go generate ./internal/specjson/")
	}
}

// check decodes data with the fast path and with encoding/json, as a json.Decoder and as
// json.Unmarshal, and fails when the fast path accepted something encoding/json decodes
// otherwise or refuses; every spec decoded is then encoded by both. It returns whether the
// fast path (as a Decoder) took the input.
func check(t *testing.T, data []byte) bool {
	t.Helper()
	var want specs.Spec
	errDec := json.NewDecoder(bytes.NewReader(data)).Decode(&want)
	got, ok := Decode(data)
	if ok {
		if errDec != nil {
			t.Fatalf("Decode took %q, which encoding/json refuses: %v", data, errDec)
		}
		if !reflect.DeepEqual(got, &want) {
			t.Fatalf("Decode of %q:\n got %#v\nwant %#v", data, got, &want)
		}
		checkMarshal(t, got)
	}
	if errDec == nil {
		checkMarshal(t, &want)
	}

	var wantU specs.Spec
	errU := json.Unmarshal(data, &wantU)
	gotU, okU := Unmarshal(data)
	if okU {
		if errU != nil {
			t.Fatalf("Unmarshal took %q, which encoding/json refuses: %v", data, errU)
		}
		if !reflect.DeepEqual(gotU, &wantU) {
			t.Fatalf("Unmarshal of %q:\n got %#v\nwant %#v", data, gotU, &wantU)
		}
	}
	if okU && !ok {
		t.Fatalf("Unmarshal took %q but Decode did not", data)
	}
	return ok
}

func checkMarshal(t *testing.T, spec *specs.Spec) {
	t.Helper()
	want, err := json.Marshal(spec)
	got, ok := Marshal(spec)
	if !ok {
		if err == nil {
			t.Fatalf("Marshal gave up on a spec json.Marshal encodes: %s", want)
		}
		return
	}
	if err != nil {
		t.Fatalf("Marshal encoded a spec json.Marshal refuses (%v): %s", err, got)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Marshal:\n got %s\nwant %s", got, want)
	}
	for _, pi := range [][2]string{{"", "\t"}, {"> ", "  "}} {
		want, err := json.MarshalIndent(spec, pi[0], pi[1])
		got, err2 := MarshalIndent(spec, pi[0], pi[1])
		if err != nil || err2 != nil || !bytes.Equal(got, want) {
			t.Fatalf("MarshalIndent(%q, %q): %v, %v:\n got %s\nwant %s", pi[0], pi[1], err2, err, got, want)
		}
	}
}

// fixtures are config.json files other tools wrote, kept in the repository.
func fixtures(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	for _, glob := range []string{
		"../../libcontainer/testdata/configs/*.json", // berth spec, runc spec (--rootless), ctr oci spec, podman
		"../../integration/testdata/initpath/*.json", // a config as containerd's CRI writes it
	} {
		paths, _ := filepath.Glob(glob)
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			out[p] = data
		}
	}
	if len(out) < 6 {
		t.Fatalf("only %d config fixtures found", len(out))
	}
	return out
}

// runcSpecs is `runc spec` and `runc spec --rootless` as the installed runc writes them.
func runcSpecs(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	runc, err := exec.LookPath("runc")
	if err != nil {
		return out
	}
	for _, args := range [][]string{{"spec"}, {"spec", "--rootless"}} {
		dir := t.TempDir()
		cmd := exec.Command(runc, args...)
		cmd.Dir = dir
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("runc %v: %v: %s", args, err, msg)
		}
		data, err := os.ReadFile(filepath.Join(dir, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		out["runc "+args[len(args)-1]] = data
	}
	return out
}

// The fast path takes the configs that tools write, so that its speed-up does not quietly
// go to the fallback.
func TestFastPathTakesToolConfigs(t *testing.T) {
	all := fixtures(t)
	for k, v := range runcSpecs(t) {
		all[k] = v
	}
	for name, data := range all {
		if !check(t, data) {
			t.Errorf("%s: the fast path did not take it", name)
		}
		if _, ok := Unmarshal(data); !ok {
			t.Errorf("%s: Unmarshal's fast path did not take it", name)
		}
		// And what berth writes back (state.json's config) is taken too.
		spec, _ := Decode(data)
		out, _ := Marshal(spec)
		if again, ok := Unmarshal(out); !ok || !reflect.DeepEqual(again, spec) {
			t.Errorf("%s: Marshal's output not taken back (ok %v)", name, ok)
		}
	}
}

// Inputs at the edges of the subset: each is checked against encoding/json, and whether the
// fast path takes it is fixed here.
var edgeCases = []struct {
	in   string
	fast bool
}{
	{`{}`, true},
	{`null`, true},
	{` {"ociVersion":"1.0.2"} trailing garbage`, true}, // a Decoder reads the first value only
	{``, false},
	{`   `, false},
	{`[]`, false},
	{`"x"`, false},
	{`{"ociVersion":1}`, false},
	{`{"ociVersion":null,"process":null,"mounts":null,"annotations":null}`, true},
	{`{"process":{"user":null,"terminal":null,"args":null}}`, true},
	{`{"process":{"cwd":"/a"},"process":{"args":["x"]}}`, true},                      // merged into one Process
	{`{"mounts":[{"destination":"/a","type":"t"}],"mounts":[{"source":"s"}]}`, true}, // merged elements
	{`{"mounts":[{"type":"a"},{"type":"b"},{"type":"c"}],"mounts":[{}],"mounts":[{},{},{}]}`, true},
	{`{"mounts":[]}`, true},
	{`{"annotations":{}}`, true},
	{`{"annotations":{"a":"1"},"annotations":{"b":"2","a":null}}`, true},
	{`{"linux":{"resources":{"rdma":{"x":{"hcaHandles":1}},"rdma":{"x":{"hcaObjects":2}}}}}`, true},
	{`{"OCIVERSION":"1"}`, false}, // encoding/json folds case
	{`{"ociversion":"1"}`, false},
	{`{"ociVersio":"1","unknown":{"a":[1,2,{"b":null}],"c":-1.5e+10}}`, true},
	{`{"ociVersion":"\u00e9\ud83d\ude00\/\b\f\n\r\t\"\\"}`, true},
	{`{"ociVersion":"\ud800"}`, true},        // lone surrogate: U+FFFD
	{`{"ociVersion":"\udc00\ud800x"}`, true}, // two invalid
	{`{"ociVersion":"\ud800\u0041"}`, true},  // high surrogate, then an ordinary escape
	{`{"ociVersion":"\ud83d\ude00\ud83d"}`, true},
	{"{\"ociVersion\":\"\xff\xfe\xed\xa0\x80\"}", true}, // invalid UTF-8: U+FFFD per byte
	{`{"ociVersion":"\'"}`, false},
	{`{"ociVersion":"\u12"}`, false},
	{"{\"ociVersion\":\"a\tb\"}", false}, // control character in a string
	{`{"\u006fciVersion":"1"}`, true},    // an escaped key matches exactly
	{`{"h\u00f6stname":"x"}`, false},     // a non-ASCII unknown key
	{`{"process":{"oomScoreAdj":-1000,"user":{"uid":4294967295,"gid":0}}}`, true},
	{`{"process":{"user":{"uid":4294967296}}}`, false},
	{`{"process":{"user":{"uid":-1}}}`, false},
	{`{"process":{"user":{"uid":-0}}}`, false},
	{`{"process":{"oomScoreAdj":-0}}`, true},
	{`{"process":{"user":{"uid":1.0}}}`, false},
	{`{"process":{"user":{"uid":1e2}}}`, false},
	{`{"process":{"user":{"uid":01}}}`, false},
	{`{"process":{"oomScoreAdj":9223372036854775807}}`, true},
	{`{"process":{"oomScoreAdj":9223372036854775808}}`, false},
	{`{"linux":{"resources":{"blockIO":{"weight":65535,"weightDevice":[{"major":8,"minor":0,"weight":10}]}}}}`, true},
	{`{"linux":{"resources":{"blockIO":{"weight":65536}}}}`, false},
	{`{"process":{"terminal":true,"noNewPrivileges":false}}`, true},
	{`{"process":{"terminal":"true"}}`, false},
	{`{"process":{"args":["a",]}}`, false},
	{`{"process":{"args":["a"],}}`, false},
	{`{"process":{"args":["a"]}`, false},
	{`{"windows":{"credentialSpec":{"a":[1.5,"x",true,null]},"layerFolders":null}}`, true},
	{`{"windows":{"credentialSpec":{"a":1},"credentialSpec":null}}`, true},
	{`{"windows":{"credentialSpec":1e999}}`, false},
	{`{"linux":{"devices":[{"path":"/dev/x","type":"c","major":1,"minor":3,"fileMode":438}]}}`, true},
	{`{"vm":{"hypervisor":{"path":"/h"},"kernel":{"path":"/k"}}}`, true},
	{`{"process":{"capabilities":{"bounding":["CAP_CHOWN"]}},"process":null}`, true},
}

func TestEdgeCases(t *testing.T) {
	for _, c := range edgeCases {
		if got := check(t, []byte(c.in)); got != c.fast {
			t.Errorf("%q: taken by the fast path %v, want %v", c.in, got, c.fast)
		}
	}
}

// Encoding specs with every field filled at random, strings with what needs escaping.
func TestMarshalFilled(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for range 300 {
		var spec specs.Spec
		fill(r, reflect.ValueOf(&spec).Elem(), 0)
		checkMarshal(t, &spec)
		data, err := json.Marshal(&spec)
		if err != nil {
			t.Fatal(err)
		}
		if !check(t, data) {
			t.Fatalf("the fast path did not take json.Marshal's output: %s", data)
		}
	}
}

var stringPieces = []string{"", "a", "/dev/null", "<", ">", "&", "\u2028", "\u2029", "\xff", "\xed\xa0\x80",
	"é", "\x00", "\x1f", "\"", "\\", "\t", "\n", "\b", "\f", "\r", "\x7f", "😀", "\u212a", "CAP_SYS_ADMIN"}

func randString(r *rand.Rand) string {
	var s string
	for range r.Intn(4) {
		s += stringPieces[r.Intn(len(stringPieces))]
	}
	return s
}

func fill(r *rand.Rand, v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.Pointer:
		if r.Intn(5) > 0 {
			v.Set(reflect.New(v.Type().Elem()))
			fill(r, v.Elem(), depth+1)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(r, v.Field(i), depth+1)
			}
		}
	case reflect.Slice:
		switch r.Intn(4) {
		case 0: // nil
		case 1:
			v.Set(reflect.MakeSlice(v.Type(), 0, r.Intn(2)))
		default:
			n := 1 + r.Intn(3)
			v.Set(reflect.MakeSlice(v.Type(), n, n))
			for i := range n {
				fill(r, v.Index(i), depth+1)
			}
		}
	case reflect.Map:
		switch r.Intn(4) {
		case 0:
		case 1:
			v.Set(reflect.MakeMap(v.Type()))
		default:
			v.Set(reflect.MakeMap(v.Type()))
			for range 1 + r.Intn(4) {
				k := reflect.New(v.Type().Key()).Elem()
				fill(r, k, depth+1)
				e := reflect.New(v.Type().Elem()).Elem()
				fill(r, e, depth+1)
				v.SetMapIndex(k, e)
			}
		}
	case reflect.String:
		v.SetString(randString(r))
	case reflect.Bool:
		v.SetBool(r.Intn(2) == 0)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		bits := v.Type().Bits()
		switch r.Intn(4) {
		case 0:
		case 1:
			v.SetInt(-1 << (bits - 1))
		case 2:
			v.SetInt(1<<(bits-1) - 1)
		default:
			v.SetInt(r.Int63n(2000) - 1000)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		bits := v.Type().Bits()
		switch r.Intn(3) {
		case 0:
		case 1:
			v.SetUint(math.MaxUint64 >> (64 - bits))
		default:
			v.SetUint(uint64(r.Intn(100000)))
		}
	case reflect.Interface:
		switch r.Intn(4) {
		case 0:
		case 1:
			v.Set(reflect.ValueOf(randString(r)))
		case 2:
			v.Set(reflect.ValueOf(map[string]any{randString(r): []any{1.5, -0.0, 1e21, true, nil, "<x>"}}))
		default:
			v.Set(reflect.ValueOf(float64(r.Intn(100)) / 7))
		}
	}
}

// UnmarshalProcess (berth exec --process) gives json.Unmarshal's process for every config's
// process object, and its own edge cases, and takes those tools write.
func TestUnmarshalProcess(t *testing.T) {
	all := fixtures(t)
	for k, v := range runcSpecs(t) {
		all[k] = v
	}
	inputs := map[string][]byte{
		"empty object": []byte(`{}`), "null": []byte(`null`), "trailing": []byte(`{} x`),
		"bad type": []byte(`{"args":"sh"}`), "folded key": []byte(`{"ARGS":["sh"]}`),
		"rlimits": []byte(`{"args":["sh"],"rlimits":[{"type":"RLIMIT_NOFILE","hard":1024,"soft":1024}]}`),
	}
	for name, data := range all {
		var doc struct {
			Process json.RawMessage `json:"process"`
		}
		if json.Unmarshal(data, &doc) == nil && len(doc.Process) > 0 {
			inputs[name] = doc.Process
		}
	}
	for name, data := range inputs {
		var want specs.Process
		werr := json.Unmarshal(data, &want)
		got, ok := UnmarshalProcess(data)
		if ok && (werr != nil || !reflect.DeepEqual(*got, want)) {
			t.Errorf("%s: fast %+v, encoding/json %+v (%v)", name, got, want, werr)
		}
		if _, fixture := all[name]; fixture && !ok {
			t.Errorf("%s: the fast path did not take its process", name)
		}
	}
}

// MarshalIndent writes json.MarshalIndent's bytes (image containers' config.json).
func TestMarshalIndentIsJSONs(t *testing.T) {
	for name, data := range fixtures(t) {
		spec, ok := Decode(data)
		if !ok {
			continue
		}
		got, err := MarshalIndent(spec, "", "\t")
		want, werr := json.MarshalIndent(spec, "", "\t")
		if err != nil || werr != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: MarshalIndent differs from json.MarshalIndent (%v, %v)", name, err, werr)
		}
	}
}
