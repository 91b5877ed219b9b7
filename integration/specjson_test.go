package integration

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// berth reads config.json with internal/specjson's generated decoder and writes the config
// into state.json with its encoder, encoding/json being the fallback. state.json must hold
// what encoding/json writes for encoding/json's reading of config.json, byte for byte: for a
// config the fast path takes (runc spec's, with annotations that need escaping: HTML
// characters, U+2028, invalid UTF-8, a lone surrogate) and for one it leaves to encoding/json
// (a key in another case, which encoding/json folds onto hostname). exec then reads the
// config back from state.json.
func TestStateJSONConfigAsEncodingJSON(t *testing.T) {
	for _, c := range []struct{ name, extra string }{
		{"fast path", `"annotations": {"z": "<&>\u2028", "a": "` + "\xff" + `\u00e9\ud800", "m": "", "<": "1", "\u00e9": "2", "b.c/d": "3"}`},
		{"fallback", `"HOSTNAME": "folded", "annotations": {"a": "1"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			bundle := runcSpecBundle(t, "sleep", "100")
			path := filepath.Join(bundle, "config.json")
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			end := bytes.LastIndexByte(data, '}')
			data = append(data[:end:end], []byte(",\n"+c.extra+"\n}\n")...)
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			var spec specs.Spec
			if err := json.NewDecoder(bytes.NewReader(data)).Decode(&spec); err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(&spec)
			if err != nil {
				t.Fatal(err)
			}

			e := newEnv(t)
			e.bundle = bundle
			e.mustBerth("create", "--bundle", bundle, "c1")
			state, err := os.ReadFile(filepath.Join(e.root, "c1", "state.json"))
			if err != nil {
				t.Fatal(err)
			}
			var st struct {
				Config json.RawMessage `json:"config"`
			}
			if err := json.Unmarshal(state, &st); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(st.Config, want) {
				t.Errorf("state.json's config\n got %s\nwant %s", st.Config, want)
			}
			if c.name == "fallback" && spec.Hostname != "folded" {
				t.Errorf("encoding/json's reading: hostname %q", spec.Hostname)
			}
			e.mustBerth("start", "c1")
			e.mustBerth("exec", "c1", "true")
			var back specs.Spec
			if err := json.Unmarshal(st.Config, &back); err != nil || !reflect.DeepEqual(back.Annotations, spec.Annotations) {
				t.Errorf("annotations read back: %v, %q, want %q", err, back.Annotations, spec.Annotations)
			}
			e.mustBerth("delete", "--force", "c1")
		})
	}
}
