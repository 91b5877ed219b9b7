package oci

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"hash"
	"strconv"
	"strings"
)

// Digest is a content digest, "algorithm:encoded" ("sha256:" and 64 lowercase hex digits).
// It is a plain string in JSON. Validate gives go-digest's results (v1.0.0) for every string,
// with the same error texts, without its regular expressions: the algorithm's grammar and
// the hex are checked byte by byte.
type Digest string

// Algorithm is a digest's algorithm component.
type Algorithm string

// The algorithms berth verifies (go-digest's registered ones).
const (
	SHA256 Algorithm = "sha256"
	SHA384 Algorithm = "sha384"
	SHA512 Algorithm = "sha512"

	// Canonical is the algorithm FromBytes uses.
	Canonical = SHA256
)

// Validate's errors, with go-digest's texts (berth's messages include them).
var (
	ErrDigestInvalidFormat = errors.New("invalid checksum digest format")
	ErrDigestInvalidLength = errors.New("invalid checksum digest length")
	ErrDigestUnsupported   = errors.New("unsupported digest algorithm")
)

// String is the algorithm's name.
func (a Algorithm) String() string { return string(a) }

// Size is the length in bytes of the algorithm's hash, 0 for an algorithm berth does not know.
func (a Algorithm) Size() int {
	switch a {
	case SHA256:
		return sha256.Size
	case SHA384:
		return sha512.Size384
	case SHA512:
		return sha512.Size
	}
	return 0
}

// Available reports whether the algorithm is one berth can verify.
func (a Algorithm) Available() bool { return a.Size() != 0 }

// Hash returns a new hash for the algorithm; it panics for one that is not Available (call
// Validate first).
func (a Algorithm) Hash() hash.Hash {
	switch a {
	case SHA256:
		return sha256.New()
	case SHA384:
		return sha512.New384()
	case SHA512:
		return sha512.New()
	}
	panic("oci: digest algorithm " + strconv.Quote(string(a)) + " is not available (validate the digest first)")
}

// FromBytes is the digest of p with the algorithm.
func (a Algorithm) FromBytes(p []byte) Digest {
	h := a.Hash()
	h.Write(p)
	return NewDigest(a, h)
}

// FromBytes is the canonical (sha256) digest of p.
func FromBytes(p []byte) Digest { return Canonical.FromBytes(p) }

// NewDigest is the digest of what h has hashed, h being a hash of algorithm a.
func NewDigest(a Algorithm, h hash.Hash) Digest {
	return NewDigestFromEncoded(a, hex.EncodeToString(h.Sum(nil)))
}

// NewDigestFromEncoded joins an algorithm and an encoded hash; it does not validate them.
func NewDigestFromEncoded(a Algorithm, encoded string) Digest {
	return Digest(string(a) + ":" + encoded)
}

// String is the digest as it is written.
func (d Digest) String() string { return string(d) }

// Algorithm is the part before the first colon. It panics when there is no colon, as
// go-digest's does (call Validate first).
func (d Digest) Algorithm() Algorithm { return Algorithm(d[:d.sep()]) }

// Encoded is the part after the first colon (the hex of the hash). It panics when there is no
// colon, as go-digest's does.
func (d Digest) Encoded() string { return string(d[d.sep()+1:]) }

func (d Digest) sep() int {
	i := strings.IndexByte(string(d), ':')
	if i < 0 {
		panic("oci: no ':' separator in digest " + strconv.Quote(string(d)))
	}
	return i
}

// Validate checks that d is a digest berth can verify, with go-digest's outcomes:
//   - no colon, nothing before the first colon or nothing after it: ErrDigestInvalidFormat;
//   - an algorithm other than sha256, sha384, sha512: ErrDigestUnsupported when d has the
//     shape of a digest (an algorithm of lowercase letters and digits in components joined by
//     one of . + _ -, a colon, then one or more of letters, digits, =, _ and -), else
//     ErrDigestInvalidFormat;
//   - a known algorithm: ErrDigestInvalidLength unless the encoded part has two characters
//     for each byte of the hash, then ErrDigestInvalidFormat unless they are all lowercase hex.
func (d Digest) Validate() error {
	s := string(d)
	i := strings.IndexByte(s, ':')
	if i <= 0 || i == len(s)-1 {
		return ErrDigestInvalidFormat
	}
	alg, enc := Algorithm(s[:i]), s[i+1:]
	n := alg.Size()
	if n == 0 {
		if !algorithmShaped(s[:i]) || !encodedShaped(enc) {
			return ErrDigestInvalidFormat
		}
		return ErrDigestUnsupported
	}
	if len(enc) != 2*n {
		return ErrDigestInvalidLength
	}
	for j := 0; j < len(enc); j++ {
		if c := enc[j]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return ErrDigestInvalidFormat
		}
	}
	return nil
}

// algorithmShaped: s is one or more components of [a-z0-9]+, joined by single separators
// from [.+_-] (go-digest's algorithm grammar).
func algorithmShaped(s string) bool {
	if s == "" {
		return false
	}
	component := false // inside a component: the last byte was a letter or digit
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z' || '0' <= c && c <= '9':
			component = true
		case c == '.' || c == '+' || c == '_' || c == '-':
			if !component {
				return false // leading, or two separators in a row
			}
			component = false
		default:
			return false
		}
	}
	return component // not ending with a separator
}

// encodedShaped: s is one or more of [a-zA-Z0-9=_-] (go-digest's encoded grammar).
func encodedShaped(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '=' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
