// Command specjson-gen writes internal/specjson's generated decoder and encoder (see package
// internal/specjson/gen): `go generate ./internal/specjson/`.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/berth-project/berth/internal/specjson/gen"
)

func main() {
	out := flag.String("o", "spec_gen.go", "the file to write")
	flag.Parse()
	src, err := gen.Generate()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
