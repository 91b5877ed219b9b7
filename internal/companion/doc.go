// Package companion runs what the lean berth leaves out. A Go binary runs the package
// initialisers of every package linked into it, in every process, and the costliest of
// berth's belong to code a runtime command never runs: layer decompression
// (klauspost/compress) and checkpoint/restore (go-criu and protobuf). berth as built by
// scripts/build.sh is therefore two builds of cmd/berth: the full one (every package), and
// the lean one (build tag lean: no decompression, no criu) that carries the full one inside
// it as its companion. The lean berth runs the companion from a sealed memfd for those
// commands (checkpoint, restore, criu's status) and as a filter for each compressed layer.
// One file is installed; callers keep calling berth. docs/performance.md has the figures.
package companion

// Decompress and CriuStatus are the companion's hidden commands: a filter from a compressed
// layer on stdin to its tar stream on stdout, and criu's status (its version, or the error
// that says why checkpoint/restore does not work here) on stdout.
const (
	Decompress = "__decompress"
	CriuStatus = "__criu-status"
)
