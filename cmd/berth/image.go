package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/libcontainer"
)

func init() {
	// delete (and a failed create) release what run --image made: the overlay and its upper.
	libcontainer.ReleaseImage = releaseImage
}

var platformFlag = &cli.StringFlag{Name: "platform", Usage: "os/arch[/variant] of the image to pick from a multi-platform index (default: linux/<this machine's>)"}

var imageCommand = &cli.Command{
	Name:  "image",
	Usage: "unpack and store OCI images (layouts, oci-archive, docker-archive)",
	Subcommands: []*cli.Command{
		{
			Name:      "unpack",
			Usage:     "make a bundle (config.json and rootfs) from an image, as umoci unpack does",
			ArgsUsage: "LAYOUT[:TAG] BUNDLE",
			Flags:     []cli.Flag{platformFlag},
			Action: func(c *cli.Context) error {
				if c.NArg() != 2 {
					return errors.New("usage: berth image unpack LAYOUT[:TAG] BUNDLE")
				}
				im, err := openImage(c, c.Args().Get(0))
				if err != nil {
					return err
				}
				defer im.Close()
				start := time.Now()
				p := newProgress()
				err = image.UnpackBundle(im, c.Args().Get(1), p.report())
				p.done()
				if err == nil {
					logrus.Debugf("image unpack: %d layers of %s into %s in %v", len(im.Layers), im.Manifest.Digest, c.Args().Get(1), time.Since(start))
				}
				return err
			},
		},
		{
			Name:      "load",
			Usage:     "apply an image's layers into the store (what run --image does first)",
			ArgsUsage: "LAYOUT[:TAG]",
			Flags:     []cli.Flag{platformFlag},
			Action: func(c *cli.Context) error {
				if ran, err := imageUserNS(c); ran {
					return err
				}
				if c.NArg() != 1 {
					return errors.New("usage: berth image load LAYOUT[:TAG]")
				}
				im, err := openImage(c, c.Args().First())
				if err != nil {
					return err
				}
				defer im.Close()
				s, err := image.OpenStore(storeDir(c))
				if err != nil {
					return err
				}
				defer s.Close()
				start := time.Now()
				p := newProgress()
				n, err := s.Add(im, p.report())
				p.done()
				logrus.Debugf("image: %d layers applied, %d already stored (%v)", n, len(im.DiffIDs)-n, time.Since(start))
				if err != nil {
					return err
				}
				fmt.Println(im.Manifest.Digest)
				return nil
			},
		},
		{
			Name:  "ls",
			Usage: "list the images in the store",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"},
				&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print manifest digests only"},
			},
			Action: func(c *cli.Context) error {
				s, err := image.OpenStore(storeDir(c))
				if err != nil {
					return err
				}
				defer s.Close()
				recs, err := s.Records()
				if err != nil {
					return err
				}
				uses, err := s.ContainerUses()
				if err != nil {
					return err
				}
				users := map[string][]string{}
				for id, u := range uses {
					users[u.Manifest.String()] = append(users[u.Manifest.String()], id)
				}
				if c.Bool("quiet") {
					for _, r := range recs {
						fmt.Println(r.Manifest)
					}
					return nil
				}
				switch c.String("format") {
				case "json":
					type out struct {
						*image.Record
						Containers []string `json:"containers"`
					}
					list := []out{}
					for _, r := range recs {
						cs := users[r.Manifest.String()]
						sort.Strings(cs)
						list = append(list, out{r, cs})
					}
					return json.NewEncoder(os.Stdout).Encode(list)
				case "table":
					w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
					fmt.Fprint(w, "MANIFEST\tLAYERS\tSIZE\tCONTAINERS\tCREATED\tREFS\n")
					for _, r := range recs {
						fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%s\t%s\n", r.Manifest.Encoded()[:12], len(r.DiffIDs),
							mib(r.Size), len(users[r.Manifest.String()]), r.Created, strings.Join(r.Refs, " "))
					}
					return w.Flush()
				default:
					return fmt.Errorf("--format: %q must be table or json", c.String("format"))
				}
			},
		},
		{
			Name:      "rm",
			Usage:     "remove stored images (by ref or manifest digest) and the layers only they used",
			ArgsUsage: "REF|DIGEST...",
			Action: func(c *cli.Context) error {
				if ran, err := imageUserNS(c); ran {
					return err
				}
				if c.NArg() == 0 {
					return errors.New("usage: berth image rm REF|DIGEST...")
				}
				s, err := image.OpenStore(storeDir(c))
				if err != nil {
					return err
				}
				defer s.Close()
				var errs []error
				for _, a := range c.Args().Slice() {
					removed, err := s.Remove(a)
					for _, r := range removed {
						fmt.Println(r)
					}
					if err != nil {
						errs = append(errs, err)
					}
				}
				return errors.Join(errs...)
			},
		},
		{
			// What delete runs, in the user namespace, to release an ordinary user's
			// container rootfs (its upper directory holds files of the user's other ids).
			Name:      "release",
			Hidden:    true,
			ArgsUsage: "BUNDLE",
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return errors.New("usage: berth image release BUNDLE")
				}
				return releaseBundle(c.Args().First())
			},
		},
		{
			Name:  "prune",
			Usage: "remove layers no stored image or container uses, leftovers of interrupted unpacks, and the rootfs of creates that died",
			Action: func(c *cli.Context) error {
				if ran, err := imageUserNS(c); ran {
					return err
				}
				s, err := image.OpenStore(storeDir(c))
				if err != nil {
					return err
				}
				defer s.Close()
				removed, err := s.Prune(root(c))
				for _, r := range removed {
					fmt.Println(r)
				}
				return err
			},
		},
	},
}

func openImage(c *cli.Context, ref string) (*image.Image, error) {
	pl := image.DefaultPlatform()
	if p := c.String("platform"); p != "" {
		var err error
		if pl, err = image.ParsePlatform(p); err != nil {
			return nil, fmt.Errorf("--platform: %w", err)
		}
	}
	return image.Open(ref, pl)
}

// createFromImage is create and run with --image: the bundle is made from the image in the
// store, under <root>/.images/containers/<id>, and released by delete or by a failed create.
// Arguments after the container id replace the image's Cmd.
func createFromImage(c *cli.Context, detach bool) (*libcontainer.Launched, error) {
	if c.NArg() == 0 {
		return nil, fmt.Errorf("missing container id (usage: berth %s --image LAYOUT[:TAG] <container-id> [command...])", c.Command.Name)
	}
	if c.String("bundle") != "" {
		return nil, errors.New("--image and --bundle: give one (--image makes the bundle)")
	}
	id := c.Args().First()
	if err := libcontainer.ValidateID(id); err != nil {
		return nil, err
	}
	args := c.Args().Slice()[1:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if n := c.Int("preserve-fds"); n < 0 {
		return nil, fmt.Errorf("--preserve-fds: %d must not be negative", n)
	}
	r := root(c)
	if _, err := os.Lstat(filepath.Join(r, id)); err == nil {
		return nil, fmt.Errorf("container %q already exists", id)
	}
	ref := c.String("image")
	im, err := openImage(c, ref)
	if err != nil {
		return nil, err
	}
	defer im.Close()
	if err := os.MkdirAll(r, 0o711); err != nil {
		return nil, fmt.Errorf("--root %s: %w", r, err)
	}
	start := time.Now()
	applied := 0
	p := newProgress()
	var spec *specs.Spec
	var later func() error // the bookkeeping, written while the init builds the container
	bundle, err := image.Prepare(image.PrepareOpts{Root: r, Store: storeDir(c), ID: id, Image: im, Args: args,
		Progress: p.report(), Applied: &applied, Spec: &spec, Later: &later})
	p.done()
	if err != nil {
		return nil, err
	}
	logrus.Debugf("image: %d layers applied, %d already stored; rootfs ready in %v", applied, len(im.DiffIDs)-applied, time.Since(start))
	l, err := func() (*libcontainer.Launched, error) {
		// The config Prepare wrote, validated as LoadSpec would after reading it back.
		if err := libcontainer.ValidateSpec(spec, bundle); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(bundle, "config.json"), err)
		}
		pidFile := c.String("pid-file")
		if pidFile != "" {
			if pidFile, err = filepath.Abs(pidFile); err != nil {
				return nil, err
			}
		}
		return libcontainer.Create(libcontainer.CreateOpts{
			Root: r, ID: id, Bundle: bundle, Spec: spec, PidFile: pidFile,
			ConsoleSocket: c.String("console-socket"), NoPivot: c.Bool("no-pivot"),
			NoNewKeyring: c.Bool("no-new-keyring"), PreserveFds: c.Int("preserve-fds"), Detach: detach,
			Image: ref, WhileInitBuilds: later,
		})
	}()
	if err != nil {
		if rerr := image.ReleaseBundle(bundle); rerr != nil {
			logrus.Warnf("releasing the image rootfs of %s: %v", id, rerr)
		}
		return nil, err
	}
	return l, nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// progress draws one line per report on a terminal (layer, bytes, rate), and nothing
// otherwise.
type progress struct {
	mu     sync.Mutex
	on     bool
	start  time.Time
	layers map[string][2]int64
	drawn  bool
}

func newProgress() *progress {
	_, err := unix.IoctlGetTermios(int(os.Stderr.Fd()), unix.TCGETS)
	return &progress{on: err == nil, start: time.Now(), layers: map[string][2]int64{}}
}

func (p *progress) report() image.Progress {
	if !p.on {
		return nil
	}
	return func(layer string, done, total int64, finished bool) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.layers[layer] = [2]int64{done, total}
		var sum, all int64
		for _, v := range p.layers {
			sum += v[0]
			all += v[1]
		}
		short := strings.TrimPrefix(layer, "sha256:")
		if len(short) > 12 {
			short = short[:12]
		}
		rate := float64(sum) / (1 << 20) / time.Since(p.start).Seconds()
		fmt.Fprintf(os.Stderr, "\r\033[Klayer %s %s/%s  (all: %s, %.0f MiB/s)", short, mib(done), mib(total), mib(sum), rate)
		p.drawn = true
	}
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
}
