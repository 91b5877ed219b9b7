package libcontainer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// loadState leaves the config undecoded until Spec asks for it; hooks reads only the hooks;
// a state saved again without decoding keeps its config; state.json stays what a plain
// json.Unmarshal into State reads whole.
func TestStateConfigDecodedOnUse(t *testing.T) {
	dir := t.TempDir()
	spec := DefaultSpec()
	spec.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "/bin/true"}}}
	st := &State{ID: "c1", Pid: 42, Config: spec}
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
