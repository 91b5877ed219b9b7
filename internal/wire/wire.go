// Package wire holds documents berth's processes hand each other, as plain types for which
// internal/specjson generates decoders and encoders: the fields of a container's state.json
// (libcontainer.State embeds them), the messages on the init pipe, and the image store's
// small records that every run --image reads or writes. They live here, below both, so that specjson can name
// them without importing libcontainer.
package wire

import (
	"encoding/json"
	"time"

	"github.com/berth-project/berth/internal/oci"
)

// StateFields is everything <root>/<id>/state.json holds but the container's config, in the
// file's order (libcontainer.State, which embeds it, says what the state is).
type StateFields struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`

	// Creating is set from the moment the container is recorded until init is handed over;
	// CreatorPid is the `berth create` doing it, so a crashed create can be told apart from
	// one in progress.
	Creating   bool `json:"creating,omitempty"`
	CreatorPid int  `json:"creatorPid,omitempty"`
	// PidStart is init's start time (field 22 of /proc/PID/stat): a recycled pid has another.
	PidStart   uint64 `json:"pidStart,omitempty"`
	CgroupPath string `json:"cgroupPath"`
	// SystemdCgroup: the cgroup is a systemd scope (--systemd-cgroup at create) and
	// CgroupPath its "slice:prefix:name".
	SystemdCgroup bool `json:"systemdCgroup,omitempty"`
	// Image is set when the rootfs was made from an OCI image by berth; delete releases it.
	Image string `json:"image,omitempty"`
	// HostMounts: the container has no mount namespace, so its mounts are on the host, on top
	// of mount HostMountTop at the rootfs (0: none); delete detaches them.
	HostMounts   bool `json:"hostMounts,omitempty"`
	HostMountTop int  `json:"hostMountTop,omitempty"`
}

// StateDoc is state.json: the fields, then the config as the JSON it is (a spec, or null).
type StateDoc struct {
	StateFields
	Config json.RawMessage `json:"config"`
}

// Msg is one message on the init pipe, a line of JSON (libcontainer's sync.go says which
// message goes which way, and when).
type Msg struct {
	Type string `json:"type"`
	Step string `json:"step,omitempty"`
	Msg  string `json:"msg,omitempty"`
	Pid  int    `json:"pid,omitempty"`
	// At and Where, on "step": when (the host's monotonic clock) and where the step was
	// taken. A "step" without Step marks the init idle (waiting for berth).
	At    int64  `json:"at,omitempty"`
	Where string `json:"where,omitempty"`
	Dur   int64  `json:"dur,omitempty"`
	// SeccompFd, on "seccomp": the init's seccomp listener descriptor number.
	SeccompFd int `json:"seccompFd,omitempty"`
}

// LayerMeta is a stored layer's meta/<key>.json in the image store.
type LayerMeta struct {
	// Implicit lists the directories the layer's tar had no entry for.
	Implicit []string `json:"implicit"`
}

// ImageRefs is the part of an image store record (images/<manifest>.json) that a run --image
// reads: the references the image was used as.
type ImageRefs struct {
	Refs []string `json:"refs"`
}

// StoreInfo is the image store's store.json: how its layers were written (image's
// storeinfo.go says why a store keeps one kind).
type StoreInfo struct {
	Marks  string `json:"marks"`            // "trusted" or "user"
	UIDMap string `json:"uidMap,omitempty"` // the uid_map of the user namespace (user marks)
	GIDMap string `json:"gidMap,omitempty"`
}

// ContainerUse is the image.json a container made from an image keeps in its directory of the
// store: which image and layers it uses.
type ContainerUse struct {
	Ref      string       `json:"ref"`
	Manifest oci.Digest   `json:"manifest"`
	DiffIDs  []oci.Digest `json:"diffIDs"`
}
