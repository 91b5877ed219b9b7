package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/specjson"
)

// UnpackBundle makes a complete, independent bundle in dir, as `umoci unpack` does: rootfs
// with the layers applied in order (whiteouts delete), and config.json converted from the
// image config. dir must not exist or be empty. The layers are applied at once, each into its
// own directory, and then merged in order (unpackParallel); an image with a hard link from one
// layer to a file of another is applied one layer after another instead (unpackSequential).
func UnpackBundle(im *Image, dir string, progress Progress) (err error) {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("bundle %s is not empty", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	rootfs := filepath.Join(dir, "rootfs")
	defer func() {
		if err != nil {
			_ = os.RemoveAll(rootfs)
			_ = os.Remove(filepath.Join(dir, "config.json"))
		}
	}()
	mkRootfs := func() error {
		if err := os.Mkdir(rootfs, 0o755); err != nil {
			return err
		}
		return os.Chmod(rootfs, 0o755)
	}
	if err := mkRootfs(); err != nil {
		return err
	}
	defer umaskZero()()
	tmp, err := os.MkdirTemp(dir, ".layers-")
	if err != nil {
		return err
	}
	err = unpackParallel(im, rootfs, tmp, progress)
	_ = os.RemoveAll(tmp)
	if errors.Is(err, errCrossLayerLink) {
		if err = os.RemoveAll(rootfs); err == nil {
			if err = mkRootfs(); err == nil {
				err = unpackSequential(im, rootfs, progress)
			}
		}
	}
	if err != nil {
		return err
	}
	spec, err := RuntimeSpec(im, rootfs, nil)
	if err != nil {
		return err
	}
	data, err := specjson.MarshalIndent(spec, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644)
}

// unpackSequential applies the layers one after another into rootfs, each read, verified and
// decompressed ahead, in parallel, while the one before it is written.
func unpackSequential(im *Image, rootfs string, progress Progress) error {
	fd, err := unix.Open(rootfs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	streams := make([]*chunkPipe, len(im.Layers))
	for i := range streams {
		streams[i] = newChunkPipe(64)
	}
	// Decompress up to two layers ahead of the one being written.
	parallelWorkers() // for GOMAXPROCS
	sem := make(chan struct{}, 3)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	defer func() {
		close(stop)
		for _, s := range streams {
			s.abort()
		}
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range im.Layers {
			select {
			case sem <- struct{}{}:
			case <-stop:
				return
			}
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				streams[i].closeWith(im.feedLayer(i, streams[i], progress))
			}(i)
		}
	}()
	a := newApplier(fd, mergeMode)
	defer a.close()
	for i := range im.Layers {
		a.layer = im.Layers[i].Digest.String()
		if err := a.apply(tar.NewReader(streams[i])); err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, streams[i]); err != nil {
			return err
		}
		<-sem
	}
	return nil
}

// feedLayer verifies and decompresses layer i into w.
func (im *Image) feedLayer(i int, w *chunkPipe, progress Progress) error {
	desc := im.Layers[i]
	name := desc.Digest.String()
	blob, err := im.OpenLayer(i)
	if err != nil {
		return err
	}
	defer blob.Close()
	counted, stop := watch(blob, desc, progress)
	defer stop()
	tarStream, closeFn, err := decompress(counted, false)
	if err != nil {
		return blobError(blob, fmt.Errorf("layer %s: %w", name, err))
	}
	dv, err := newVerifier(tarStream, "layer "+name+" (uncompressed, diffID "+im.DiffIDs[i].String()+")", im.DiffIDs[i], -1)
	if err != nil {
		closeFn()
		return err
	}
	_, err = w.ReadFrom(dv)
	closeFn()
	if err != nil {
		if err == errAborted {
			return err
		}
		return blobError(blob, fmt.Errorf("layer %s: %w", name, err))
	}
	if _, err := io.Copy(io.Discard, blob); err != nil {
		return fmt.Errorf("layer %s: %w", name, err)
	}
	return nil
}

// chunkPipe is a pipe with a bounded buffer of 1 MiB chunks, so a producer runs ahead of its
// consumer.
type chunkPipe struct {
	ch      chan []byte
	cur     []byte
	orig    []byte
	mu      sync.Mutex
	err     error
	done    chan struct{}
	aborted chan struct{}
	once    sync.Once
	aonce   sync.Once
}

func newChunkPipe(n int) *chunkPipe {
	return &chunkPipe{ch: make(chan []byte, n), done: make(chan struct{}), aborted: make(chan struct{})}
}

var chunkPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

var errAborted = errors.New("aborted")

// ReadFrom copies r into the pipe, chunk by chunk.
func (p *chunkPipe) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		bp := chunkPool.Get().(*[]byte)
		b := *bp
		n, err := io.ReadFull(r, b)
		if n > 0 {
			select {
			case p.ch <- b[:n]:
			case <-p.aborted:
				return total, errAborted
			}
			total += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func (p *chunkPipe) closeWith(err error) {
	p.once.Do(func() {
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.ch)
	})
}

func (p *chunkPipe) abort() { p.aonce.Do(func() { close(p.aborted) }) }

func (p *chunkPipe) Read(b []byte) (int, error) {
	for len(p.cur) == 0 {
		c, ok := <-p.ch
		if !ok {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.err != nil {
				return 0, p.err
			}
			return 0, io.EOF
		}
		p.cur, p.orig = c, c
	}
	n := copy(b, p.cur)
	p.cur = p.cur[n:]
	if len(p.cur) == 0 && p.orig != nil {
		// The chunk is spent: its buffer goes back to the pool.
		b := p.orig[:cap(p.orig)]
		chunkPool.Put(&b)
		p.orig = nil
	}
	return n, nil
}
