package libcontainer

import (
	"encoding/json"
	"testing"
)

func TestEventJSON(t *testing.T) {
	if data, _ := json.Marshal(&Event{Type: "oom", ID: "x"}); string(data) != `{"type":"oom","id":"x"}` {
		t.Errorf("oom event %s", data)
	}
	data, _ := json.Marshal(&Event{Type: "stats", ID: "x", Data: map[string]int{}})
	if string(data) != `{"type":"stats","id":"x","data":{}}` {
		t.Errorf("stats event %s", data)
	}
}
