package main

import "testing"

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"-1": -1, "0": 0, "1024": 1024, "512m": 512 << 20, "512M": 512 << 20, "512mb": 512 << 20,
		"1g": 1 << 30, "1.5g": 3 << 29, "4k": 4096, "2MiB": 2 << 20, "1t": 1 << 40,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "12q", "m", "-2", "1..5g", "abc"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q): no error", in)
		}
	}
}
