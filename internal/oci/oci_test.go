package oci_test

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	imagespecs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/oci"
)

// pairs are each of our documents and image-spec's type for it.
var pairs = []struct{ ours, theirs reflect.Type }{
	{reflect.TypeFor[oci.Index](), reflect.TypeFor[v1.Index]()},
	{reflect.TypeFor[oci.Manifest](), reflect.TypeFor[v1.Manifest]()},
	{reflect.TypeFor[oci.Image](), reflect.TypeFor[v1.Image]()},
	{reflect.TypeFor[oci.Descriptor](), reflect.TypeFor[v1.Descriptor]()},
	{reflect.TypeFor[oci.Platform](), reflect.TypeFor[v1.Platform]()},
	{reflect.TypeFor[oci.ImageConfig](), reflect.TypeFor[v1.ImageConfig]()},
	{reflect.TypeFor[oci.RootFS](), reflect.TypeFor[v1.RootFS]()},
	{reflect.TypeFor[oci.History](), reflect.TypeFor[v1.History]()},
}

// The image-spec in go.mod is the release the types were checked against: a new one fails
// here until they are checked again (and ImageSpecVersion, which names it in specjson's
// generated file, is changed).
func TestImageSpecVersion(t *testing.T) {
	if oci.ImageSpecVersion != imagespecs.Version {
		t.Errorf("oci.ImageSpecVersion is %s, go.mod's image-spec is %s", oci.ImageSpecVersion, imagespecs.Version)
	}
}

func TestConstants(t *testing.T) {
	for _, c := range []struct{ ours, theirs string }{
		{oci.MediaTypeImageIndex, v1.MediaTypeImageIndex},
		{oci.MediaTypeImageManifest, v1.MediaTypeImageManifest},
		{oci.MediaTypeImageConfig, v1.MediaTypeImageConfig},
		{oci.MediaTypeImageLayer, v1.MediaTypeImageLayer},
		{oci.MediaTypeImageLayerGzip, v1.MediaTypeImageLayerGzip},
		{oci.MediaTypeImageLayerZstd, v1.MediaTypeImageLayerZstd},
		{oci.MediaTypeImageLayerNonDistributable, v1.MediaTypeImageLayerNonDistributable},         //nolint:staticcheck
		{oci.MediaTypeImageLayerNonDistributableGzip, v1.MediaTypeImageLayerNonDistributableGzip}, //nolint:staticcheck
		{oci.MediaTypeImageLayerNonDistributableZstd, v1.MediaTypeImageLayerNonDistributableZstd}, //nolint:staticcheck
		{oci.AnnotationRefName, v1.AnnotationRefName},
	} {
		if c.ours != c.theirs {
			t.Errorf("%q, image-spec's is %q", c.ours, c.theirs)
		}
	}
}

// jsonField is one key of a struct's JSON object.
type jsonField struct {
	name      string
	omitEmpty bool
	typ       reflect.Type
}

// jsonFields lists t's JSON keys in encoding/json's order: exported fields by their tag's
// name (or the Go name), an embedded struct without a tag name inlined where it is. (These
// documents have no conflicting names, the one case encoding/json's rules go further.)
func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" || !sf.IsExported() && !sf.Anonymous {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if sf.Anonymous && name == "" && sf.Type.Kind() == reflect.Struct {
			out = append(out, jsonFields(sf.Type)...)
			continue
		}
		if name == "" {
			name = sf.Name
		}
		out = append(out, jsonField{name, strings.Contains(","+opts+",", ",omitempty,"), sf.Type})
	}
	return out
}

var jsonInterfaces = []reflect.Type{
	reflect.TypeFor[json.Marshaler](), reflect.TypeFor[json.Unmarshaler](),
	reflect.TypeFor[encoding.TextMarshaler](), reflect.TypeFor[encoding.TextUnmarshaler](),
}

// sameShape reports, on t, every difference between how encoding/json sees ours and theirs:
// kinds, methods that change the encoding, and (recursively, both ways) each struct's keys,
// their order, omitempty and types.
func sameShape(t *testing.T, path string, ours, theirs reflect.Type) {
	t.Helper()
	if ours == theirs {
		return // the same type (time.Time, string ...)
	}
	if ours.Kind() != theirs.Kind() {
		t.Errorf("%s: %s is a %s, image-spec's %s a %s", path, ours, ours.Kind(), theirs, theirs.Kind())
		return
	}
	for _, i := range jsonInterfaces {
		if ours.Implements(i) != theirs.Implements(i) || reflect.PointerTo(ours).Implements(i) != reflect.PointerTo(theirs).Implements(i) {
			t.Errorf("%s: %s and image-spec's %s differ on %s", path, ours, theirs, i)
		}
	}
	switch ours.Kind() {
	case reflect.Pointer, reflect.Slice:
		sameShape(t, path+"[]", ours.Elem(), theirs.Elem())
	case reflect.Array:
		if ours.Len() != theirs.Len() {
			t.Errorf("%s: array lengths %d and %d", path, ours.Len(), theirs.Len())
		}
		sameShape(t, path+"[]", ours.Elem(), theirs.Elem())
	case reflect.Map:
		sameShape(t, path+" key", ours.Key(), theirs.Key())
		sameShape(t, path+"{}", ours.Elem(), theirs.Elem())
	case reflect.Struct:
		of, tf := jsonFields(ours), jsonFields(theirs)
		byName := map[string]jsonField{}
		for _, f := range of {
			byName[f.name] = f
		}
		for _, f := range tf {
			if _, ok := byName[f.name]; !ok {
				t.Errorf("%s: image-spec's %s has %q, %s does not", path, theirs, f.name, ours)
			}
		}
		byName = map[string]jsonField{}
		for _, f := range tf {
			byName[f.name] = f
		}
		for _, f := range of {
			g, ok := byName[f.name]
			if !ok {
				t.Errorf("%s: %s has %q, image-spec's %s does not", path, ours, f.name, theirs)
				continue
			}
			if f.omitEmpty != g.omitEmpty {
				t.Errorf("%s.%s: omitempty %v, image-spec's %v", path, f.name, f.omitEmpty, g.omitEmpty)
			}
			sameShape(t, path+"."+f.name, f.typ, g.typ)
		}
		if t.Failed() {
			return
		}
		for i := range of {
			if of[i].name != tf[i].name {
				t.Errorf("%s: keys in another order: %v, image-spec's %v", path, names(of), names(tf))
				break
			}
		}
	default:
		// A named basic type (Digest): the kind decides its encoding, checked above.
	}
}

func names(fs []jsonField) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.name)
	}
	return out
}

// Every JSON key, its omitempty and its type's shape, all the way down, match image-spec's.
func TestSameShape(t *testing.T) {
	for _, p := range pairs {
		sameShape(t, p.ours.Name(), p.ours, p.theirs)
	}
}

// fill sets every field of v, all the way down: strings from n, numbers, true, two elements
// in each slice, two keys in each map, non-nil pointers.
func fill(v reflect.Value, n *int) {
	*n++
	if v.Type() == reflect.TypeFor[time.Time]() {
		v.Set(reflect.ValueOf(time.Date(2020+*n%10, 1, 2, 3, 4, 5, *n*1000, time.UTC)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d<&>é", *n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n))
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		fill(v.Index(0), n)
		fill(v.Index(1), n)
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		for range 2 {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(k, n)
			fill(e, n)
			v.SetMapIndex(k, e)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), n)
			}
		}
	default:
		panic("fill: " + v.Type().String())
	}
}

// roundTrip decodes data into a new value of each type with encoding/json and encodes it
// again: the same outcome and the same bytes for both.
func roundTrip(t *testing.T, name string, data []byte, ours, theirs reflect.Type) {
	t.Helper()
	o, th := reflect.New(ours).Interface(), reflect.New(theirs).Interface()
	oerr, terr := json.Unmarshal(data, o), json.Unmarshal(data, th)
	if (oerr == nil) != (terr == nil) {
		t.Errorf("%s as %s: %v; as image-spec's %s: %v", name, ours, oerr, theirs, terr)
		return
	}
	ob, oerr := json.Marshal(o)
	tb, terr := json.Marshal(th)
	if oerr != nil || terr != nil {
		t.Errorf("%s: encoding again: %v, image-spec's: %v", name, oerr, terr)
		return
	}
	if !bytes.Equal(ob, tb) {
		t.Errorf("%s as %s, decoded and encoded again:\n%s\nimage-spec's %s:\n%s", name, ours, ob, theirs, tb)
	}
}

// Values with every field set, made from image-spec's types and from ours, encode to the same
// bytes, and each side's bytes decode through the other's type and encode again unchanged.
func TestEveryFieldSet(t *testing.T) {
	for _, p := range pairs {
		for i, typ := range []reflect.Type{p.theirs, p.ours} {
			n := 0
			v := reflect.New(typ)
			fill(v.Elem(), &n)
			data, err := json.Marshal(v.Interface())
			if err != nil {
				t.Fatal(err)
			}
			other := p.ours
			if i == 1 {
				other = p.theirs
			}
			w := reflect.New(other)
			if err := json.Unmarshal(data, w.Interface()); err != nil {
				t.Fatalf("%s's %s into %s: %v", typ, data, other, err)
			}
			again, err := json.Marshal(w.Interface())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, data) {
				t.Errorf("%s filled:\n%s\nthrough %s:\n%s", typ, data, other, again)
			}
			roundTrip(t, typ.String()+" filled", data, p.ours, p.theirs)
		}
	}
}

// samples are documents as writers leave them: every field set, the least there can be,
// empty arrays and objects against absent and null ones, unknown keys, keys in another case.
var samples = map[string]string{
	"index, every field": `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
		"artifactType":"application/vnd.example+type",
		"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",
			"digest":"sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b","size":7143,
			"urls":["https://example.com/blob"],"annotations":{"org.opencontainers.image.ref.name":"v1.0","b":"<&>"},
			"data":"e30=","platform":{"architecture":"arm64","os":"windows","os.version":"10.0.14393.1066",
			"os.features":["win32k"],"variant":"v8"},"artifactType":"application/vnd.example"}],
		"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:00","size":1},
		"annotations":{"com.example.key1":"value1","com.example.key2":"value2"}}`,
	"index, empty manifests": `{"schemaVersion":2,"manifests":[]}`,
	"index, null manifests":  `{"schemaVersion":2,"manifests":null,"subject":null,"annotations":{}}`,
	"index, nothing":         `{}`,
	"index, platform features empty": `{"schemaVersion":2,"manifests":[{"digest":"sha256:ab","size":0,
		"platform":{"architecture":"amd64","os":"linux","os.features":[],"variant":""},"urls":[],"annotations":{},"data":""}]}`,
	"manifest, every field": `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
		"artifactType":"application/vnd.example.sbom",
		"config":{"mediaType":"application/vnd.oci.image.config.v1+json",
			"digest":"sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7","size":7023},
		"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip",
			"digest":"sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0","size":32654,
			"urls":["https://a","https://b"],"annotations":{"org.opencontainers.image.title":"x"}},
			{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":"sha512:00","size":16724}],
		"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:5b0b","size":1234,
			"platform":{"architecture":"amd64","os":"linux"}},
		"annotations":{"com.example.key1":"value1"}}`,
	"manifest, empty layers": `{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.empty.v1+json",
		"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"data":"e30="},"layers":[]}`,
	"manifest, no layers": `{"schemaVersion":2,"config":{"digest":"sha256:44","size":2}}`,
	"config, every field": `{"created":"2015-10-31T22:22:56.015925234Z","author":"Alyssa P. Hacker <alyspdev@example.com>",
		"architecture":"amd64","os":"linux","os.version":"6.1","os.features":["a","b"],"variant":"v3",
		"config":{"User":"alice","ExposedPorts":{"8080/tcp":{}},"Env":["PATH=/usr/local/sbin:/usr/local/bin","FOO=oci_is_a"],
			"Entrypoint":["/bin/my-app-binary"],"Cmd":["--foreground","--config","/etc/my-app.d/default.cfg"],
			"Volumes":{"/var/job-result-data":{},"/var/log/my-app-logs":{}},"WorkingDir":"/home/alice",
			"Labels":{"com.example.project.git.url":"https://example.com/project.git"},"StopSignal":"SIGKILL","ArgsEscaped":true},
		"rootfs":{"type":"layers","diff_ids":["sha256:c6f988f4874bb0add23a778f753c65efe992244e148a1d2ec2a8b664fb66bbd1",
			"sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"]},
		"history":[{"created":"2015-10-31T22:22:54.690851953Z","created_by":"/bin/sh -c #(nop) ADD file:a3bc1e842b69636f9df5256c49c5374fb4eef1e281fe3f282c65fb853ee171c5 in /",
			"author":"x","comment":"y"},{"created":"2015-10-31T22:22:55.613815829Z","created_by":"/bin/sh -c #(nop) CMD [\"sh\"]","empty_layer":true}]}`,
	"config, empty everything": `{"architecture":"","os":"","config":{"Env":[],"Cmd":[],"Entrypoint":[],"ExposedPorts":{},
		"Volumes":{},"Labels":{},"ArgsEscaped":false},"rootfs":{"type":"layers","diff_ids":[]},"history":[]}`,
	"config, nulls": `{"created":null,"config":null,"rootfs":{"diff_ids":null},"history":[{"created":null}],"os.features":null}`,
	"config, docker's keys": `{"Architecture":"amd64","OS":"linux","container_config":{"Hostname":"x"},"docker_version":"24",
		"config":{"user":"1:2","cmd":["sh"],"Healthcheck":{"Test":["CMD","true"]},"OnBuild":null},"RootFS":{"Type":"layers","DIFF_IDS":["sha256:ab"]}}`,
	"config, a time with an offset": `{"created":"2024-01-02T03:04:05+02:00","history":[{"created":"2024-01-02T03:04:05.1-07:30"}]}`,
	"not a document":                `[1,2]`,
	"a wrong type":                  `{"schemaVersion":"2","manifests":{},"layers":"x","rootfs":[],"history":{},"config":"x"}`,
	"a bad time":                    `{"created":"yesterday"}`,
	"bad base64":                    `{"manifests":[{"data":"!!"}],"config":{"data":"!!"}}`,
}

// Documents decode and encode again to the same bytes through our types and image-spec's: the
// samples above and the image fixtures in image/testdata, each as each of the three documents.
func TestRoundTrip(t *testing.T) {
	docs := map[string][]byte{}
	for name, s := range samples {
		docs[name] = []byte(s)
	}
	paths, _ := filepath.Glob("../../image/testdata/images/*/*.json")
	more, _ := filepath.Glob("../../image/testdata/images/*.json")
	for _, p := range append(paths, more...) {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		docs[p] = data
	}
	if len(docs) < len(samples)+7 {
		t.Fatalf("only %d image fixtures found", len(docs)-len(samples))
	}
	for name, data := range docs {
		for _, p := range pairs[:3] {
			roundTrip(t, name, data, p.ours, p.theirs)
		}
	}
}
