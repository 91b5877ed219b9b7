package oci_test

import (
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-project/berth/internal/oci"
)

// outcome is what a call gave: its result, its error's text and which of go-digest's errors it
// is, or its panic.
func outcome(f func() (string, error)) (s string) {
	defer func() {
		if r := recover(); r != nil {
			s = "panic"
		}
	}()
	v, err := f()
	if err == nil {
		return "ok " + v
	}
	kind := "other"
	for _, e := range []struct {
		ours, theirs error
		name         string
	}{
		{oci.ErrDigestInvalidFormat, digest.ErrDigestInvalidFormat, "format"},
		{oci.ErrDigestInvalidLength, digest.ErrDigestInvalidLength, "length"},
		{oci.ErrDigestUnsupported, digest.ErrDigestUnsupported, "unsupported"},
	} {
		if errors.Is(err, e.ours) || errors.Is(err, e.theirs) {
			kind = e.name
		}
	}
	return fmt.Sprintf("%s error %q", kind, err)
}

// checkDigest fails when our Digest and Algorithm give anything other than go-digest's for s:
// Validate (the error, and its text), Algorithm, Encoded, String (or their panic), and the
// algorithm's Available and Size.
func checkDigest(t *testing.T, s string) {
	t.Helper()
	ours, theirs := oci.Digest(s), digest.Digest(s)
	for _, c := range []struct {
		what          string
		ours, theirs  func() (string, error)
		mustBeValid   bool
		mustBeInvalid bool
	}{
		{what: "Validate", ours: func() (string, error) { return "", ours.Validate() }, theirs: func() (string, error) { return "", theirs.Validate() }},
		{what: "Algorithm", ours: func() (string, error) { return ours.Algorithm().String(), nil }, theirs: func() (string, error) { return theirs.Algorithm().String(), nil }},
		{what: "Encoded", ours: func() (string, error) { return ours.Encoded(), nil }, theirs: func() (string, error) { return theirs.Encoded(), nil }},
		{what: "String", ours: func() (string, error) { return ours.String(), nil }, theirs: func() (string, error) { return theirs.String(), nil }},
		{what: "Available", ours: func() (string, error) { return fmt.Sprint(oci.Algorithm(s).Available()), nil }, theirs: func() (string, error) { return fmt.Sprint(digest.Algorithm(s).Available()), nil }},
		{what: "Size", ours: func() (string, error) { return fmt.Sprint(oci.Algorithm(s).Size()), nil }, theirs: func() (string, error) { return fmt.Sprint(digest.Algorithm(s).Size()), nil }},
	} {
		if o, th := outcome(c.ours), outcome(c.theirs); o != th {
			t.Fatalf("%q: %s: %s, go-digest: %s", s, c.what, o, th)
		}
	}
	if ours.Validate() == nil {
		// A valid digest's hash is one berth can make, and makes the same way.
		if got, want := oci.NewDigestFromEncoded(ours.Algorithm(), ours.Encoded()), digest.NewDigestFromEncoded(theirs.Algorithm(), theirs.Encoded()); string(got) != string(want) || got != ours {
			t.Fatalf("%q: NewDigestFromEncoded: %s, go-digest: %s", s, got, want)
		}
		h := ours.Algorithm().Hash()
		h.Write([]byte(s))
		if got, want := oci.NewDigest(ours.Algorithm(), h), theirs.Algorithm().FromString(s); string(got) != string(want) {
			t.Fatalf("%q: NewDigest of its own text: %s, go-digest: %s", s, got, want)
		}
	}
	if got, want := oci.FromBytes([]byte(s)), digest.FromBytes([]byte(s)); string(got) != string(want) {
		t.Fatalf("FromBytes(%q): %s, go-digest: %s", s, got, want)
	}
}

var hex64 = strings.Repeat("0123456789abcdef", 4)

// digestCases are valid and invalid digests: each algorithm, wrong lengths, upper-case hex,
// unknown algorithms with and without a digest's shape, missing and misplaced colons.
var digestCases = []string{
	// valid
	string(digest.FromString("x")),
	string(digest.SHA384.FromString("x")),
	string(digest.SHA512.FromString("x")),
	"sha256:" + hex64,
	"sha384:" + hex64 + hex64[:32],
	"sha512:" + hex64 + hex64,
	// wrong length
	"sha256:" + hex64[:63],
	"sha256:" + hex64 + "0",
	"sha256:0",
	"sha384:" + hex64,
	"sha512:" + hex64,
	"sha256:" + hex64 + hex64,
	// not lowercase hex
	"sha256:" + strings.ToUpper(hex64),
	"sha256:" + hex64[:63] + "A",
	"sha256:" + hex64[:63] + "g",
	"sha256:" + hex64[:63] + ":",
	"sha256:" + hex64[:62] + "é",
	"sha256: " + hex64[:63],
	"sha256:" + hex64[:63] + "\n",
	"sha512:" + hex64 + hex64[:63] + "=",
	// unknown algorithms: a digest's shape, or not
	"md5:d41d8cd98f00b204e9800998ecf8427e",
	"sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709",
	"sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
	"multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
	"a.b_c-d+e:x=",
	"a1:B",
	"SHA256:" + hex64,
	"Sha256:" + hex64,
	"sha-256:" + hex64,
	".sha256:" + hex64,
	"sha256.:" + hex64,
	"sha..256:" + hex64,
	"sha.-256:" + hex64,
	"-:" + hex64,
	"sha 256:" + hex64,
	"é:abc",
	"foo:é",
	"foo:a:b",
	"foo:a/b",
	"foo:a\n",
	"foo\n:a",
	"foo:a+b",
	"foo:a.b",
	// colons and emptiness
	"",
	":",
	"::",
	"sha256",
	"sha256:",
	":" + hex64,
	"sha256" + hex64,
	"sha256::" + hex64[1:],
	"sha256:" + hex64 + ":",
}

func TestDigest(t *testing.T) {
	for _, s := range digestCases {
		checkDigest(t, s)
	}
	// A few outcomes spelled out, so that the table is not only agreeing with itself.
	for s, want := range map[string]error{
		"sha256:" + hex64:                       nil,
		"sha256:" + strings.ToUpper(hex64):      oci.ErrDigestInvalidFormat,
		"sha256:" + hex64[1:]:                   oci.ErrDigestInvalidLength,
		"md5:d41d8cd98f00b204e9800998ecf8427e":  oci.ErrDigestUnsupported,
		"md5:d41d8cd98f00b204e9800998ecf8427e/": oci.ErrDigestInvalidFormat,
		"sha256" + hex64:                        oci.ErrDigestInvalidFormat,
		"":                                      oci.ErrDigestInvalidFormat,
	} {
		if err := oci.Digest(s).Validate(); err != want {
			t.Errorf("%q: %v, want %v", s, err, want)
		}
	}
	h := sha512.New384()
	h.Write([]byte("x"))
	if got, want := oci.NewDigest(oci.SHA384, h), oci.Digest(digest.SHA384.FromString("x")); got != want {
		t.Errorf("NewDigest(SHA384): %s, want %s", got, want)
	}
	if got, want := oci.SHA512.FromBytes([]byte("x")), oci.Digest(digest.SHA512.FromString("x")); got != want {
		t.Errorf("SHA512.FromBytes: %s, want %s", got, want)
	}
	if sum := sha256.Sum256([]byte("x")); oci.FromBytes([]byte("x")).Encoded() != fmt.Sprintf("%x", sum) {
		t.Errorf("FromBytes: %s", oci.FromBytes([]byte("x")))
	}
}

// FuzzDigest: any string as a digest, ours against go-digest.
func FuzzDigest(f *testing.F) {
	for _, s := range digestCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkDigest(t, s)
	})
}
