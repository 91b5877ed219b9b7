package libcontainer

import (
	"regexp"
	"testing"
)

// idAllowed is runc's id rule, ^[\w+\-\.]+$, without the regexp.
func TestIDAllowedIsRuncsRule(t *testing.T) {
	runc := regexp.MustCompile(`^[\w+\-\.]+$`)
	ids := []string{"", "a", "Z9", "c_1", "a+b", "a-b", "a.b", "..", "a b", "a/b", "é", "a\x00",
		"a\n", "x:y", "a*", "ok-ID_1.2+3", "\u0130", "tab\t", "[a]", "a$"}
	for c := 0; c < 256; c++ {
		ids = append(ids, "a"+string(rune(c)), string([]byte{'a', byte(c)}))
	}
	for _, id := range ids {
		if got, want := idAllowed(id), runc.MatchString(id); got != want {
			t.Errorf("idAllowed(%q) = %v, runc's rule says %v", id, got, want)
		}
	}
}
