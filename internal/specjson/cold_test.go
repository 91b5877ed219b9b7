package specjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// What a spec costs in a fresh process, where encoding/json has no caches yet: the
// benchmark runs this test binary again once per iteration with SPECJSON_COLD=OP:FILE, and
// that process times OP once (TestMain) and prints the nanoseconds. The figure reported as
// ns/op is the median over the processes (docs/performance.md):
//
//	go test -run XXX -bench Cold -benchtime 100x ./internal/specjson/
func BenchmarkCold(b *testing.B) {
	files := []string{"../../libcontainer/testdata/configs/berth-spec.json", "../../integration/testdata/initpath/cri-container.json"}
	ops := []string{"json-decode", "fast-decode", "json-encode", "fast-encode", "json-both", "fast-both", "json-hooks", "fast-unmarshal"}
	for _, file := range files {
		name := strings.TrimSuffix(file[strings.LastIndexByte(file, '/')+1:], ".json")
		for _, op := range ops {
			b.Run(name+"/"+op, func(b *testing.B) {
				var ns []float64
				for range b.N {
					cmd := exec.Command(os.Args[0], "-test.run=XXX")
					cmd.Env = append(os.Environ(), "SPECJSON_COLD="+op+":"+file)
					out, err := cmd.Output()
					if err != nil {
						b.Fatalf("%s: %v", op, err)
					}
					v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
					if err != nil {
						b.Fatalf("%s: %q", op, out)
					}
					ns = append(ns, v)
				}
				slices.Sort(ns)
				b.ReportMetric(ns[len(ns)/2], "ns/op")
			})
		}
	}
}

func TestMain(m *testing.M) {
	if v := os.Getenv("SPECJSON_COLD"); v != "" {
		op, file, _ := strings.Cut(v, ":")
		fmt.Println(coldOnce(op, file))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// coldOnce times op once, in a process that has decoded and encoded nothing yet.
func coldOnce(op, file string) int64 {
	data, err := os.ReadFile(file)
	if err != nil {
		panic(err)
	}
	// The encoders need a spec: decoded by the fast path, which leaves encoding/json cold.
	var spec *specs.Spec
	if strings.HasSuffix(op, "-encode") {
		var ok bool
		if spec, ok = Decode(data); !ok {
			panic("fast path refused " + file)
		}
	}
	start := time.Now()
	switch op {
	case "json-decode":
		var s specs.Spec
		err = json.NewDecoder(bytes.NewReader(data)).Decode(&s)
	case "fast-decode":
		_, _ = Decode(data)
	case "json-encode":
		_, err = json.Marshal(spec)
	case "fast-encode":
		_, _ = Marshal(spec)
	case "json-both": // create: config.json decoded, state.json written
		var s specs.Spec
		if err = json.NewDecoder(bytes.NewReader(data)).Decode(&s); err == nil {
			_, err = json.Marshal(&s)
		}
	case "fast-both":
		s, _ := Decode(data)
		_, _ = Marshal(s)
	case "json-hooks": // start, delete: the hooks alone
		var only struct {
			Hooks *specs.Hooks `json:"hooks"`
		}
		err = json.Unmarshal(data, &only)
	case "fast-unmarshal":
		_, _ = Unmarshal(data)
	default:
		panic("unknown op " + op)
	}
	d := time.Since(start)
	if err != nil {
		panic(err)
	}
	return d.Nanoseconds()
}

// Warm: the same in a loop, caches built.
func BenchmarkWarm(b *testing.B) {
	data, err := os.ReadFile("../../integration/testdata/initpath/cri-container.json")
	if err != nil {
		b.Fatal(err)
	}
	spec, _ := Decode(data)
	b.Run("json-decode", func(b *testing.B) {
		for range b.N {
			var s specs.Spec
			_ = json.NewDecoder(bytes.NewReader(data)).Decode(&s)
		}
	})
	b.Run("fast-decode", func(b *testing.B) {
		for range b.N {
			Decode(data)
		}
	})
	b.Run("json-encode", func(b *testing.B) {
		for range b.N {
			_, _ = json.Marshal(spec)
		}
	})
	b.Run("fast-encode", func(b *testing.B) {
		for range b.N {
			Marshal(spec)
		}
	})
}
