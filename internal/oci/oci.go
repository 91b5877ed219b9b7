// Package oci holds the OCI image-spec documents berth reads and writes (an image layout's
// index, a manifest, an image config and the descriptors between them), their media types
// and annotations, and the content digests that name every blob.
//
// Why not image-spec's own Go types: they name their digests with go-digest's Digest, and
// go-digest's package initialiser compiles four regular expressions. Any package in a
// binary's import graph has its initialiser run at every start, so every berth process,
// a plain bundle `run` included, paid for them (about 0.3 ms of CPU and some thirty page
// faults, measured). The types here are the same documents: every field
// image-spec v1.1.1 has (ImageSpecVersion), with the same JSON names and options, so that
// encoding/json gives the same results for both; the tests hold them to image-spec's types
// field by field and byte for byte, and Digest's validation to go-digest's (digest.go).
//
// internal/specjson's generator reads these types for its image-spec decoders. This
// package imports only the standard library.
package oci

import "time"

// ImageSpecVersion is the image-spec release whose documents the types here reproduce (the
// tests check it against the image-spec in go.mod).
const ImageSpecVersion = "1.1.1"

// Media types of the OCI documents and layers berth reads.
const (
	MediaTypeImageIndex    = "application/vnd.oci.image.index.v1+json"
	MediaTypeImageManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeImageConfig   = "application/vnd.oci.image.config.v1+json"

	MediaTypeImageLayer     = "application/vnd.oci.image.layer.v1.tar"
	MediaTypeImageLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
	MediaTypeImageLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"

	// Deprecated: non-distributable layers are deprecated by image-spec 1.1 (writers should
	// use the ordinary layer types); berth still applies them when an image has them.
	MediaTypeImageLayerNonDistributable = "application/vnd.oci.image.layer.nondistributable.v1.tar"
	// Deprecated: as MediaTypeImageLayerNonDistributable.
	MediaTypeImageLayerNonDistributableGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
	// Deprecated: as MediaTypeImageLayerNonDistributable.
	MediaTypeImageLayerNonDistributableZstd = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
)

// AnnotationRefName is the annotation that names (tags) an entry of a layout's index.json.
const AnnotationRefName = "org.opencontainers.image.ref.name"

// Descriptor points at a blob: what it is, its digest and its size, and optionally where else
// to fetch it, annotations, the blob itself inline (base64 in JSON), and the platform of the
// image it describes.
type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       Digest            `json:"digest"`
	Size         int64             `json:"size"`
	URLs         []string          `json:"urls,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Data         []byte            `json:"data,omitempty"`
	Platform     *Platform         `json:"platform,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
}

// Platform is what an image runs on, in an index's descriptors and (embedded) in an image
// config.
type Platform struct {
	Architecture string   `json:"architecture"`
	OS           string   `json:"os"`
	OSVersion    string   `json:"os.version,omitempty"`
	OSFeatures   []string `json:"os.features,omitempty"`
	Variant      string   `json:"variant,omitempty"`
}

// Index is an image index: index.json at the top of a layout, or a multi-platform image's list
// of manifests.
type Index struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Manifests     []Descriptor      `json:"manifests"`
	Subject       *Descriptor       `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// Manifest is an image manifest: the config and the layers, in order.
type Manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        Descriptor        `json:"config"`
	Layers        []Descriptor      `json:"layers"`
	Subject       *Descriptor       `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// Image is an image config: the platform it is for, the defaults of a container's process,
// the layers' diffIDs and the history that made them.
type Image struct {
	Created *time.Time `json:"created,omitempty"`
	Author  string     `json:"author,omitempty"`
	Platform
	Config  ImageConfig `json:"config,omitempty"`
	RootFS  RootFS      `json:"rootfs"`
	History []History   `json:"history,omitempty"`
}

// ImageConfig is an image config's "config": the process a container of the image runs by
// default (its keys are capitalised, as Docker wrote them first).
type ImageConfig struct {
	User         string              `json:"User,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Env          []string            `json:"Env,omitempty"`
	Entrypoint   []string            `json:"Entrypoint,omitempty"`
	Cmd          []string            `json:"Cmd,omitempty"`
	Volumes      map[string]struct{} `json:"Volumes,omitempty"`
	WorkingDir   string              `json:"WorkingDir,omitempty"`
	Labels       map[string]string   `json:"Labels,omitempty"`
	StopSignal   string              `json:"StopSignal,omitempty"`
	ArgsEscaped  bool                `json:"ArgsEscaped,omitempty"`
}

// RootFS lists the digests of the layers' uncompressed tar streams (the diffIDs), bottom
// first.
type RootFS struct {
	Type    string   `json:"type"`
	DiffIDs []Digest `json:"diff_ids"`
}

// History is one step of how the image was built.
type History struct {
	Created    *time.Time `json:"created,omitempty"`
	CreatedBy  string     `json:"created_by,omitempty"`
	Author     string     `json:"author,omitempty"`
	Comment    string     `json:"comment,omitempty"`
	EmptyLayer bool       `json:"empty_layer,omitempty"`
}
