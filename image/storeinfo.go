package image

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-project/berth/internal/rawfile"
	"github.com/berth-project/berth/internal/wire"
)

// storeInfo is <store>/store.json: how the store's layers were written. A store is written
// either by root on the host (overlay marks in trusted.*) or in a user namespace (marks in
// user.*, owners as that namespace maps them): layers of one kind mounted as the other would
// show deleted files again, or wrong owners, so a store keeps the kind it was made with.
type storeInfo = wire.StoreInfo

func currentStoreInfo() storeInfo {
	if !userXattrs() {
		return storeInfo{Marks: "trusted"}
	}
	return storeInfo{Marks: "user", UIDMap: idMap("/proc/self/uid_map"), GIDMap: idMap("/proc/self/gid_map")}
}

// idMap is a uid_map or gid_map on one line: "inside outside count,...".
func idMap(p string) string {
	data, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		out = append(out, strings.Join(strings.Fields(l), " "))
	}
	return strings.Join(out, ",")
}

// checkInfo refuses to add layers to a store of the other kind, or written under another
// mapping; a store without store.json is given this process's kind (one made before
// store.json existed was made by root, with trusted marks).
func (s *Store) checkInfo() error {
	p := filepath.Join(s.Dir, "store.json")
	cur := currentStoreInfo()
	data, err := rawfile.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		rec := cur
		if ents, _ := os.ReadDir(filepath.Join(s.Dir, "layers")); len(ents) > 0 {
			rec = storeInfo{Marks: "trusted"}
		}
		if err := writeJSONAtomic(p, rec); err != nil {
			return fmt.Errorf("image store: %w", err)
		}
		data, _ = json.Marshal(rec)
	} else if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	if want, err := marshalIndented(&cur); err == nil && bytes.Equal(data, want) {
		return nil // as writeJSONAtomic writes it for this process's kind: nothing to decode
	}
	var got storeInfo
	if err := json.Unmarshal(data, &got); err != nil {
		return fmt.Errorf("image store: %s: %w", p, err)
	}
	switch {
	case got.Marks != cur.Marks && cur.Marks == "user":
		return fmt.Errorf("image store %s was written by root (trusted.overlay marks, host owners): an ordinary user needs a store of its own (the default, $XDG_DATA_HOME/berth/images, or another --root)", s.Dir)
	case got.Marks != cur.Marks:
		return fmt.Errorf("image store %s was written in a user namespace (user.overlay marks, owners mapped by %s): root needs a store of its own (another --root)", s.Dir, got.UIDMap)
	case got.UIDMap != cur.UIDMap || got.GIDMap != cur.GIDMap:
		return fmt.Errorf("image store %s was written with uid map %q and gid map %q, this user namespace maps %q and %q (have /etc/subuid or /etc/subgid changed?): its files would show with other owners; use another --root, or remove that store", s.Dir, got.UIDMap, got.GIDMap, cur.UIDMap, cur.GIDMap)
	}
	return nil
}
