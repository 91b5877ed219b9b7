package libcontainer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/wire"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// loadState leaves the config undecoded until Spec asks for it; hooks reads only the hooks;
// a state saved again without decoding keeps its config; state.json stays what a plain
// json.Unmarshal into State reads whole.
func TestStateConfigDecodedOnUse(t *testing.T) {
	dir := t.TempDir()
	spec := DefaultSpec()
	spec.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "/bin/true"}}}
	st := &State{StateFields: wire.StateFields{ID: "c1", Pid: 42}, Config: spec}
	if err := st.save(dir); err != nil {
		t.Fatal(err)
	}
	loaded, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Config != nil || loaded.Pid != 42 || loaded.ID != "c1" {
		t.Fatalf("loaded: config decoded %v, pid %d, id %q", loaded.Config != nil, loaded.Pid, loaded.ID)
	}
	if h := loaded.hooks(); h == nil || len(h.Poststop) != 1 || h.Poststop[0].Path != "/bin/true" {
		t.Errorf("hooks: %+v", h)
	}
	if loaded.Config != nil {
		t.Error("hooks decoded the whole config")
	}
	// Saved again undecoded (a later command changing another field), then read whole.
	loaded.Pid = 43
	if err := loaded.save(dir); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	var plain State
	if err := json.Unmarshal(data, &plain); err != nil {
		t.Fatal(err)
	}
	if plain.Pid != 43 || !reflect.DeepEqual(plain.Config, spec) {
		t.Errorf("state.json after an undecoded save: pid %d, config equal %v", plain.Pid, reflect.DeepEqual(plain.Config, spec))
	}
	again, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := again.Spec()
	if err != nil || !reflect.DeepEqual(got, spec) {
		t.Errorf("Spec: %v, equal %v", err, reflect.DeepEqual(got, spec))
	}
}

// state.json is what json.Marshal writes for the State, byte for byte, now that its config is
// encoded by internal/specjson; and it reads back to the same config.
func TestStateSavedAsJSONMarshal(t *testing.T) {
	paths, _ := filepath.Glob("testdata/configs/*.json")
	var configs [][]byte
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		configs = append(configs, data)
	}
	configs = append(configs, []byte(`{"ociVersion":"1.0.2","hostname":"<a&b>\u2028\ud800","annotations":{"z":"","a":"\u00e9"},"process":{"args":[],"env":null,"cwd":"/"}}`))
	for i, data := range configs {
		var spec specs.Spec
		if err := json.Unmarshal(data, &spec); err != nil {
			t.Fatal(err)
		}
		st := &State{StateFields: wire.StateFields{OCIVersion: "1.2.0", ID: "c1", Pid: 42, Bundle: "/b<&>", Rootfs: "/b/rootfs",
			Created: time.Date(2026, 12, 6, 21, 0, 0, 123456789, time.UTC), Owner: "", Annotations: map[string]string{"x": "<"},
			Creating: i%2 == 0, CreatorPid: i, PidStart: 1 << 40, CgroupPath: "/berth/c1", SystemdCgroup: i%3 == 0,
			Image: "img:\u2028", HostMounts: i%2 == 1, HostMountTop: -i}, Config: &spec}
		dir := t.TempDir()
		if err := st.save(dir); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, stateFile))
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("config %d: state.json\n got %s\nwant %s", i, got, want)
		}
		loaded, err := loadState(dir)
		if err != nil {
			t.Fatal(err)
		}
		var plain State
		if err := json.Unmarshal(want, &plain); err != nil {
			t.Fatal(err)
		}
		if back, err := loaded.Spec(); err != nil || !reflect.DeepEqual(back, plain.Config) {
			t.Errorf("config %d: read back: %v, equal %v", i, err, reflect.DeepEqual(back, plain.Config))
		}
	}
}
