// Command oras-go-bench runs the 14 scenarios of benches/scenarios.rs against oras-go v2.6.2
// (content/oci plus oras.Copy), with the same content and the same protocol, and prints one
// JSON line per scenario in the same shape, plus the implementation's name:
//
//	{"scenario":NAME,"n":COUNT,"bytes":BYTES,"secs":SECONDS,"per_s":RATE,
//	 "durable":false,"peak_rss_kib":KIB,"impl":"oras-go"}
//
// so that benches/compare.sh can pair its lines with ours. oras-go never fsyncs, so "durable"
// is always false and the like-for-like run of ours is `--relaxed`.
//
// Flags (the Rust bench's, with one or two dashes): -only NAME[,NAME] (also the groups "create"
// and "delete"), -scale F, -runs N, -warmup N, -selftest, -cleanup, -q. See README.md.
//
// Protocol, kept as in benches/scenarios.rs so that the two measure the same thing:
//   - each timed section works on a new directory inside one scratch root per process under
//     $OCISTORE_BENCH_DIR (default: the temp dir), kept at exit unless -cleanup, because mass
//     deletes slow ext4 creates down for minutes;
//   - content and descriptors are generated and hashed before the timer; stores are opened
//     before the timer except in open_tagged;
//   - just before each timer: runtime.GC(), sync(), and a reset of the RSS high-water mark;
//   - secs is the median of the timed runs after the warm-ups, per_s = n / secs, and
//     peak_rss_kib the largest VmHWM seen over the timed runs;
//   - stores that are read from are written with AutoSaveIndex off and one SaveIndex, then
//     reopened with the defaults (AutoSaveIndex and AutoGC on);
//   - push_large and fetch_large run back to back in each run and the blob is deleted right
//     after, and delete_all and gc_dangling build all their layouts before either deletes.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/oci"
)

// The full-size counts of the scenario definitions; -scale multiplies them.
const (
	nSmall         = 10_000
	smallSize      = 1024
	nImages        = 1000
	nLookups       = 100_000
	nPreds         = 10_000
	nDangling      = 5000
	danglingOffset = 1_000_000
	chunkSize      = 1 << 20
	bigSize        = int64(1) << 30
	parWorkers     = 16
	fetchBuf       = 1 << 20
)

const (
	mtOctet    = "application/octet-stream"
	mtLayer    = "application/vnd.oci.image.layer.v1.tar"
	mtConfig   = "application/vnd.oci.image.config.v1+json"
	mtManifest = "application/vnd.oci.image.manifest.v1+json"
	mtIndex    = "application/vnd.oci.image.index.v1+json"
)

// allScenarios is the run order; the deletion-heavy ones come last on purpose.
var allScenarios = []string{
	"push_small_seq", "push_small_par16", "push_large", "fetch_large",
	"tag_manifests", "tag_manifests_manual", "open_tagged",
	"resolve_tags", "exists_manifests", "predecessors_shared",
	"copy_tagged", "copy_index", "delete_all", "gc_dangling",
}

var deleteScenarios = map[string]bool{"delete_all": true, "gc_dangling": true}

var ctx = context.Background()

// ---------------------------------------------------------------- content

// smallBytes is small blob i: byte j = (i*131 + j*7) & 0xff, then bytes 0..8 = i little-endian.
func smallBytes(i int) []byte {
	b := make([]byte, smallSize)
	for j := range b {
		b[j] = byte((i*131 + j*7) & 0xff)
	}
	binary.LittleEndian.PutUint64(b[:8], uint64(i))
	return b
}

type blob struct {
	desc ocispec.Descriptor
	data []byte
}

func newBlob(mediaType string, data []byte) blob {
	return blob{ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}, data}
}

func smalls(from, n int) []blob {
	out := make([]blob, n)
	for i := range out {
		out[i] = newBlob(mtOctet, smallBytes(from+i))
	}
	return out
}

// sharedLayer is the layer every image refers to: byte j = j & 0xff.
func sharedLayer() blob {
	b := make([]byte, smallSize)
	for j := range b {
		b[j] = byte(j & 0xff)
	}
	return newBlob(mtLayer, b)
}

func configBytes(i int) []byte {
	return []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"i":%d}`, i))
}

// descJSON writes the keys in the order the content definition fixes, which json.Marshal of
// an ocispec.Descriptor happens to give too; spelling it out keeps the bytes independent of
// image-spec's struct layout.
func descJSON(d ocispec.Descriptor) string {
	return fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d}`, d.MediaType, d.Digest.String(), d.Size)
}

func manifestBytes(config, layer ocispec.Descriptor) []byte {
	return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":%s,"layers":[%s]}`,
		mtManifest, descJSON(config), descJSON(layer)))
}

func indexBytes(manifests []ocispec.Descriptor) []byte {
	entries := make([]string, len(manifests))
	for i, d := range manifests {
		entries[i] = descJSON(d)
	}
	return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[%s]}`,
		mtIndex, strings.Join(entries, ",")))
}

type image struct {
	config, manifest blob
	tag              string
}

// images holds the shared layer and images 0..n-1.
type images struct {
	layer  blob
	images []image
}

func newImages(n int) *images {
	im := &images{layer: sharedLayer()}
	for i := 0; i < n; i++ {
		cfg := newBlob(mtConfig, configBytes(i))
		man := newBlob(mtManifest, manifestBytes(cfg.desc, im.layer.desc))
		im.images = append(im.images, image{cfg, man, fmt.Sprintf("t%04d", i)})
	}
	return im
}

// size is the shared layer plus every config and manifest (482,914 for 1,000 images).
func (im *images) size() int64 {
	n := im.layer.desc.Size
	for _, x := range im.images {
		n += x.config.desc.Size + x.manifest.desc.Size
	}
	return n
}

// index is copy_index's index over every manifest, plain descriptors in image order.
func (im *images) index() blob {
	ds := make([]ocispec.Descriptor, len(im.images))
	for i, x := range im.images {
		ds[i] = x.manifest.desc
	}
	return newBlob(mtIndex, indexBytes(ds))
}

// bigReader generates the big blob on the fly: byte p = base[p mod 2^20] with
// base[j] = (j*7 + 13) & 0xff, except that the first 8 bytes of 1 MiB chunk k are k
// little-endian. It holds one chunk, never the blob.
type bigReader struct {
	pos, size, k int64
	chunk        []byte
}

func newBigReader(size int64) *bigReader {
	c := make([]byte, chunkSize)
	for j := range c {
		c[j] = byte((j*7 + 13) & 0xff)
	}
	binary.LittleEndian.PutUint64(c[:8], 0)
	return &bigReader{size: size, chunk: c}
}

func (r *bigReader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && r.pos < r.size {
		if k := r.pos / chunkSize; k != r.k {
			binary.LittleEndian.PutUint64(r.chunk[:8], uint64(k))
			r.k = k
		}
		at := r.pos % chunkSize
		m := int64(len(p) - n)
		if left := min(r.size-r.pos, chunkSize-at); m > left {
			m = left
		}
		copy(p[n:], r.chunk[at:at+m])
		n += int(m)
		r.pos += m
	}
	return n, nil
}

// bigDesc hashes the generator (about 0.6 s for 1 GiB).
func bigDesc(size int64) ocispec.Descriptor {
	h := sha256.New()
	if _, err := io.CopyBuffer(h, newBigReader(size), make([]byte, fetchBuf)); err != nil {
		fatal(err)
	}
	return ocispec.Descriptor{MediaType: mtLayer, Digest: digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)), Size: size}
}

// ---------------------------------------------------------------- selftest

// checks are the check values of benches/support/content.rs (CHECKS), in the same order.
var checks = []struct{ what, want string }{
	{"small blob 0", "sha256:68c877827af5ebfa27e65ac1f0b03ca8dcc64de0a897513e08f8555d16449ac7"},
	{"small blob 9999", "sha256:a5c3ba974a7f2ca2faf235d5aee955858e38bb48dfd1a9953e4c80eb2598c8b3"},
	{"big blob", "sha256:87b64f95f58425c4a500b9605d8dd5b16d3c1993c9ea87c741b336a13bbb47d1"},
	{"shared layer", "sha256:785b0751fc2c53dc14a4ce3d800e69ef9ce1009eb327ccf458afe09c242c26c9"},
	{"image 0 config", "sha256:5259cfd7d86a94aeed9487ae9f5c8084da0f6a0d698ed8859b7477f1a156a79a"},
	{"image 0 config size", "84"},
	{"image 0 manifest", "sha256:35a737384c0972b7d1cb38e5b48f0aa3f5a91a7c35062534add7c5fe706aece1"},
	{"image 0 manifest size", "396"},
	{"image 999 manifest", "sha256:9c35bb44eb0fb61216cee0761b511772d0e7875591c63ffacb968868c6f27a47"},
	{"image content bytes", "482914"},
	{"copy_index index", "sha256:d7be044059720d0f8d724464d753370cbada5ea199de231c574f277fdf4d6e91"},
	{"copy_index index size", "153087"},
}

// runSelftest computes every check value at full size (the big blob too) and prints them as
// `cargo bench --bench scenarios -- --selftest` does; it returns false on any mismatch.
func runSelftest() bool {
	im := newImages(nImages)
	idx := im.index()
	got := map[string]string{
		"small blob 0":          newBlob(mtOctet, smallBytes(0)).desc.Digest.String(),
		"small blob 9999":       newBlob(mtOctet, smallBytes(nSmall-1)).desc.Digest.String(),
		"big blob":              bigDesc(bigSize).Digest.String(),
		"shared layer":          im.layer.desc.Digest.String(),
		"image 0 config":        im.images[0].config.desc.Digest.String(),
		"image 0 config size":   strconv.FormatInt(im.images[0].config.desc.Size, 10),
		"image 0 manifest":      im.images[0].manifest.desc.Digest.String(),
		"image 0 manifest size": strconv.FormatInt(im.images[0].manifest.desc.Size, 10),
		"image 999 manifest":    im.images[nImages-1].manifest.desc.Digest.String(),
		"image content bytes":   strconv.FormatInt(im.size(), 10),
		"copy_index index":      idx.desc.Digest.String(),
		"copy_index index size": strconv.FormatInt(idx.desc.Size, 10),
	}
	bad := 0
	for _, c := range checks {
		g, ok := got[c.what]
		status := "ok"
		if !ok || g != c.want {
			status = "MISMATCH (want " + c.want + ")"
			bad++
		}
		fmt.Printf("%-24s %s  %s\n", c.what, g, status)
	}
	if bad > 0 {
		fmt.Printf("selftest: %d MISMATCH\n", bad)
		return false
	}
	fmt.Println("selftest: all check values match")
	return true
}

// ---------------------------------------------------------------- timing and memory

// resetHWM resets VmHWM to the current RSS (Linux >= 4.0).
func resetHWM() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// readHWM returns VmHWM in KiB, 0 where /proc has none.
func readHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

type timer time.Time

// startTimer collects garbage first (as ours trims the heap) so that the high-water mark
// starts from what is live, and syncs so that earlier writes are not paid inside the timer.
func startTimer() timer {
	runtime.GC()
	syscall.Sync()
	resetHWM()
	return timer(time.Now())
}

type sample struct {
	secs float64
	rss  int64
}

func (t timer) stop() sample {
	return sample{time.Since(time.Time(t)).Seconds(), readHWM()}
}

// round6 keeps 6 significant digits, as ours prints.
func round6(x float64) float64 {
	v, err := strconv.ParseFloat(strconv.FormatFloat(x, 'e', 5, 64), 64)
	if err != nil {
		return x
	}
	return v
}

type line struct {
	Scenario string  `json:"scenario"`
	N        int64   `json:"n"`
	Bytes    int64   `json:"bytes"`
	Secs     float64 `json:"secs"`
	PerS     float64 `json:"per_s"`
	Durable  bool    `json:"durable"`
	PeakRSS  int64   `json:"peak_rss_kib"`
	Impl     string  `json:"impl"`
}

// collector gathers the timed samples of one scenario and prints its JSON line.
type collector struct {
	name     string
	n, bytes int64
	warmup   int
	quiet    bool
	samples  []sample
}

func (c *collector) add(run int, s sample, extra string) {
	kind := "warmup"
	if run >= c.warmup {
		kind = "run"
		c.samples = append(c.samples, s)
	}
	if !c.quiet {
		fmt.Fprintf(os.Stderr, "  %-21s %-6s %d: %.6f s  (%.4e /s)  rss %d KiB  %s\n",
			c.name, kind, run, s.secs, float64(c.n)/s.secs, s.rss, extra)
	}
}

func (c *collector) emit() {
	if len(c.samples) == 0 {
		return
	}
	secs := make([]float64, len(c.samples))
	var rss int64
	for i, s := range c.samples {
		secs[i] = s.secs
		rss = max(rss, s.rss)
	}
	sort.Float64s(secs)
	m := len(secs) / 2
	med := secs[m]
	if len(secs)%2 == 0 {
		med = (secs[m-1] + secs[m]) / 2
	}
	b, err := json.Marshal(line{c.name, c.n, c.bytes, round6(med), round6(float64(c.n) / med), false, rss, "oras-go"})
	must(err)
	fmt.Println(string(b))
}

// ---------------------------------------------------------------- the bench

type bench struct {
	root                                         string
	seq                                          int
	runs, warmup                                 int
	quiet                                        bool
	nSmall, nImages, nLookups, nPreds, nDangling int
	bigSize                                      int64
}

func (b *bench) totalRuns() int { return b.warmup + b.runs }

func (b *bench) collector(name string, n, bytes int64) *collector {
	return &collector{name: name, n: n, bytes: bytes, warmup: b.warmup, quiet: b.quiet}
}

func (b *bench) newDir(label string) string {
	b.seq++
	dir := filepath.Join(b.root, fmt.Sprintf("%03d-%s", b.seq, label))
	must(os.MkdirAll(dir, 0o755))
	return dir
}

func open(dir string) *oci.Store {
	s, err := oci.New(dir)
	must(err)
	return s
}

func push(s *oci.Store, x blob) { must(s.Push(ctx, x.desc, bytes.NewReader(x.data))) }

// buildTagged writes the images (and, when idx is not nil, the index over them, tagged "all")
// into dir with AutoSaveIndex off and one SaveIndex: the same index.json entries as autosave.
func buildTagged(dir string, im *images, idx *blob) *oci.Store {
	s := open(dir)
	s.AutoSaveIndex = false
	push(s, im.layer)
	for _, x := range im.images {
		push(s, x.config)
		push(s, x.manifest)
		must(s.Tag(ctx, x.manifest.desc, x.tag))
	}
	if idx != nil {
		push(s, *idx)
		must(s.Tag(ctx, idx.desc, "all"))
	}
	must(s.SaveIndex())
	return s
}

// openTagged builds a tagged layout in a new directory and reopens it with the defaults.
func (b *bench) openTagged(label string, im *images) *oci.Store {
	dir := b.newDir(label)
	buildTagged(dir, im, nil)
	return open(dir)
}

func countBlobs(dir string) int {
	es, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		return 0
	}
	return len(es)
}

func check(ok bool, format string, args ...any) {
	if !ok {
		fatal(fmt.Errorf(format, args...))
	}
}

// lookups is run r's sequence of image numbers, the splitmix64 sequence seeded 42+r that ours
// uses, so both look the same keys up in the same order.
func (b *bench) lookups(r int) []int {
	state := uint64(42 + r)
	ks := make([]int, b.nLookups)
	for i := range ks {
		state += 0x9e3779b97f4a7c15
		z := state
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		ks[i] = int((z ^ (z >> 31)) % uint64(b.nImages))
	}
	return ks
}

func (b *bench) pushSmallSeq() {
	blobs := smalls(0, b.nSmall)
	col := b.collector("push_small_seq", int64(len(blobs)), int64(len(blobs)*smallSize))
	for r := 0; r < b.totalRuns(); r++ {
		s := open(b.newDir(fmt.Sprintf("push_small_seq-r%d", r)))
		t := startTimer()
		for _, x := range blobs {
			push(s, x)
		}
		col.add(r, t.stop(), "")
	}
	col.emit()
}

func (b *bench) pushSmallPar16() {
	blobs := smalls(0, b.nSmall)
	col := b.collector("push_small_par16", int64(len(blobs)), int64(len(blobs)*smallSize))
	for r := 0; r < b.totalRuns(); r++ {
		s := open(b.newDir(fmt.Sprintf("push_small_par16-r%d", r)))
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, parWorkers)
		t := startTimer()
		for w := 0; w < parWorkers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1) - 1
					if i >= int64(len(blobs)) {
						return
					}
					x := blobs[i]
					if err := s.Push(ctx, x.desc, bytes.NewReader(x.data)); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		smp := t.stop()
		close(errs)
		for err := range errs {
			fatal(err)
		}
		col.add(r, smp, "")
	}
	col.emit()
}

// large runs push_large and fetch_large back to back in each run; one that is not selected
// still runs, untimed, as the other's setup.
func (b *bench) large(doPush, doFetch bool) {
	d := bigDesc(b.bigSize)
	pushCol := b.collector("push_large", 1, b.bigSize)
	fetchCol := b.collector("fetch_large", 1, b.bigSize)
	buf := make([]byte, fetchBuf)
	for r := 0; r < b.totalRuns(); r++ {
		dir := b.newDir(fmt.Sprintf("large-r%d", r))
		s := open(dir)
		t := startTimer()
		must(s.Push(ctx, d, newBigReader(b.bigSize)))
		if smp := t.stop(); doPush {
			pushCol.add(r, smp, "")
		}
		if doFetch {
			t := startTimer()
			rc, err := s.Fetch(ctx, d)
			must(err)
			// oras-go's Fetch does not verify; ours does, so the digest check is timed here too.
			vr := content.NewVerifyReader(rc, d)
			var n int64
			for {
				m, err := vr.Read(buf)
				n += int64(m)
				if err == io.EOF {
					break
				}
				must(err)
			}
			must(vr.Verify())
			must(rc.Close())
			smp := t.stop()
			check(n == b.bigSize, "fetch_large read %d bytes, want %d", n, b.bigSize)
			fetchCol.add(r, smp, "")
		}
		must(os.Remove(filepath.Join(dir, "blobs", "sha256", d.Digest.Encoded())))
	}
	if doPush {
		pushCol.emit()
	}
	if doFetch {
		fetchCol.emit()
	}
}

func (b *bench) tagManifests(autosave bool) {
	im := newImages(b.nImages)
	name := "tag_manifests"
	if !autosave {
		name = "tag_manifests_manual"
	}
	col := b.collector(name, int64(len(im.images)), im.size())
	for r := 0; r < b.totalRuns(); r++ {
		s := open(b.newDir(fmt.Sprintf("%s-r%d", name, r)))
		s.AutoSaveIndex = autosave
		var inManifest, inTag time.Duration
		t := startTimer()
		push(s, im.layer)
		for _, x := range im.images {
			push(s, x.config)
			t1 := time.Now()
			push(s, x.manifest)
			t2 := time.Now()
			must(s.Tag(ctx, x.manifest.desc, x.tag))
			inManifest += t2.Sub(t1)
			inTag += time.Since(t2)
		}
		if !autosave {
			must(s.SaveIndex())
		}
		col.add(r, t.stop(), fmt.Sprintf("[manifest pushes %.3f s, tag calls %.3f s]", inManifest.Seconds(), inTag.Seconds()))
	}
	col.emit()
}

func (b *bench) openTaggedScenario() {
	im := newImages(b.nImages)
	col := b.collector("open_tagged", 1, 0)
	for r := 0; r < b.totalRuns(); r++ {
		dir := b.newDir(fmt.Sprintf("open_tagged-r%d", r))
		buildTagged(dir, im, nil)
		t := startTimer()
		s, err := oci.New(dir)
		smp := t.stop()
		must(err)
		n := 0
		must(s.Tags(ctx, "", func(tags []string) error { n += len(tags); return nil }))
		check(n == len(im.images), "open_tagged: %d tags after open, want %d", n, len(im.images))
		col.add(r, smp, "")
	}
	col.emit()
}

func (b *bench) resolveTags() {
	im := newImages(b.nImages)
	col := b.collector("resolve_tags", int64(b.nLookups), 0)
	for r := 0; r < b.totalRuns(); r++ {
		s := b.openTagged(fmt.Sprintf("resolve_tags-r%d", r), im)
		ks := b.lookups(r)
		hits := 0
		t := startTimer()
		for _, k := range ks {
			d, err := s.Resolve(ctx, im.images[k].tag)
			must(err)
			if d.Digest == im.images[k].manifest.desc.Digest {
				hits++
			}
		}
		smp := t.stop()
		check(hits == len(ks), "resolve_tags: %d of %d resolves gave the right digest", hits, len(ks))
		col.add(r, smp, "")
	}
	col.emit()
}

func (b *bench) existsManifests() {
	im := newImages(b.nImages)
	col := b.collector("exists_manifests", int64(b.nLookups), 0)
	for r := 0; r < b.totalRuns(); r++ {
		s := b.openTagged(fmt.Sprintf("exists_manifests-r%d", r), im)
		ks := b.lookups(r)
		descs := make([]ocispec.Descriptor, len(ks))
		for i, k := range ks {
			descs[i] = im.images[k].manifest.desc
		}
		found := 0
		t := startTimer()
		for _, d := range descs {
			ok, err := s.Exists(ctx, d)
			must(err)
			if ok {
				found++
			}
		}
		smp := t.stop()
		check(found == len(descs), "exists_manifests: %d of %d found", found, len(descs))
		col.add(r, smp, "")
	}
	col.emit()
}

func (b *bench) predecessorsShared() {
	im := newImages(b.nImages)
	col := b.collector("predecessors_shared", int64(b.nPreds), 0)
	for r := 0; r < b.totalRuns(); r++ {
		s := b.openTagged(fmt.Sprintf("predecessors_shared-r%d", r), im)
		total := 0
		t := startTimer()
		for i := 0; i < b.nPreds; i++ {
			ps, err := s.Predecessors(ctx, im.layer.desc)
			must(err)
			total += len(ps)
		}
		smp := t.stop()
		check(total == b.nPreds*len(im.images), "predecessors_shared: %d in all, want %d", total, b.nPreds*len(im.images))
		col.add(r, smp, "")
	}
	col.emit()
}

// copyTagged makes one oras.Copy per tag, in image order, from a tagged layout into an empty one.
func (b *bench) copyTagged() {
	im := newImages(b.nImages)
	col := b.collector("copy_tagged", int64(len(im.images)), im.size())
	for r := 0; r < b.totalRuns(); r++ {
		src := b.openTagged(fmt.Sprintf("copy_tagged-r%d-src", r), im)
		dstDir := b.newDir(fmt.Sprintf("copy_tagged-r%d-dst", r))
		dst := open(dstDir)
		t := startTimer()
		for _, x := range im.images {
			_, err := oras.Copy(ctx, src, x.tag, dst, x.tag, oras.DefaultCopyOptions)
			must(err)
		}
		smp := t.stop()
		n := countBlobs(dstDir)
		check(n == 2*len(im.images)+1, "copy_tagged: %d blobs in dst, want %d", n, 2*len(im.images)+1)
		col.add(r, smp, "")
	}
	col.emit()
}

// copyIndex makes one oras.Copy of the index over every manifest, tagged "all" in the source.
func (b *bench) copyIndex() {
	im := newImages(b.nImages)
	idx := im.index()
	col := b.collector("copy_index", int64(len(im.images)), im.size()+idx.desc.Size)
	for r := 0; r < b.totalRuns(); r++ {
		srcDir := b.newDir(fmt.Sprintf("copy_index-r%d-src", r))
		buildTagged(srcDir, im, &idx)
		src := open(srcDir)
		dstDir := b.newDir(fmt.Sprintf("copy_index-r%d-dst", r))
		dst := open(dstDir)
		t := startTimer()
		_, err := oras.Copy(ctx, src, "all", dst, "all", oras.DefaultCopyOptions)
		smp := t.stop()
		must(err)
		n := countBlobs(dstDir)
		check(n == 2*len(im.images)+2, "copy_index: %d blobs in dst, want %d", n, 2*len(im.images)+2)
		col.add(r, smp, "")
	}
	col.emit()
}

// deletion runs delete_all and gc_dangling. Every layout both need is built before either
// deletes anything (creates on ext4 without a journal slow down for minutes after mass
// deletes), and each is reopened with the defaults (AutoGC and AutoSaveIndex on) just
// before its timer.
func (b *bench) deletion(doDelete, doGC bool) {
	im := newImages(b.nImages)
	dangling := smalls(danglingOffset, b.nDangling)
	nImg := len(im.images)
	var delDirs, gcDirs []string
	for r := 0; doDelete && r < b.totalRuns(); r++ {
		dir := b.newDir(fmt.Sprintf("delete_all-r%d", r))
		buildTagged(dir, im, nil)
		delDirs = append(delDirs, dir)
	}
	for r := 0; doGC && r < b.totalRuns(); r++ {
		dir := b.newDir(fmt.Sprintf("gc_dangling-r%d", r))
		s := buildTagged(dir, im, nil)
		for _, x := range dangling {
			push(s, x)
		}
		n := countBlobs(dir)
		check(n == 2*nImg+1+len(dangling), "gc_dangling setup: %d blobs, want %d", n, 2*nImg+1+len(dangling))
		gcDirs = append(gcDirs, dir)
	}
	debug.FreeOSMemory()
	if doDelete {
		col := b.collector("delete_all", int64(nImg), im.size())
		for r, dir := range delDirs {
			s := open(dir)
			t := startTimer()
			for _, x := range im.images {
				must(s.Delete(ctx, x.manifest.desc))
			}
			smp := t.stop()
			n := countBlobs(dir)
			check(n == 0, "delete_all: %d blobs left, want 0", n)
			col.add(r, smp, "")
		}
		col.emit()
	}
	if doGC {
		col := b.collector("gc_dangling", 1, int64(len(dangling)*smallSize))
		for r, dir := range gcDirs {
			s := open(dir)
			t := startTimer()
			must(s.GC(ctx))
			smp := t.stop()
			n := countBlobs(dir)
			check(n == 2*nImg+1, "gc_dangling: %d blobs left, want %d", n, 2*nImg+1)
			col.add(r, smp, "")
		}
		col.emit()
	}
}

// ---------------------------------------------------------------- main

func must(err error) {
	if err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "oras-go-bench:", err)
	os.Exit(1)
}

func usage(msg string) {
	fmt.Fprintf(os.Stderr, "oras-go-bench: %s\n", msg)
	flag.Usage()
	os.Exit(2)
}

// scaled is ours: round(n * s), at least 1.
func scaled(n int, s float64) int { return max(1, int(math.Round(float64(n)*s))) }

func parseOnly(list string) map[string]bool {
	sel := map[string]bool{}
	if list == "" {
		for _, n := range allScenarios {
			sel[n] = true
		}
		return sel
	}
	known := map[string]bool{}
	for _, n := range allScenarios {
		known[n] = true
	}
	for _, n := range strings.Split(list, ",") {
		switch n = strings.TrimSpace(n); {
		case n == "":
		case n == "create":
			for _, m := range allScenarios {
				sel[m] = sel[m] || !deleteScenarios[m]
			}
		case n == "delete":
			for m := range deleteScenarios {
				sel[m] = true
			}
		case known[n]:
			sel[n] = true
		default:
			usage(fmt.Sprintf("unknown scenario %q (known: %s)", n, strings.Join(allScenarios, ", ")))
		}
	}
	return sel
}

func main() {
	only := flag.String("only", "", "comma-separated scenario names (default: all 14); also the groups\n"+
		"\"create\" (the 12 without mass deletes) and \"delete\" (delete_all,gc_dangling)")
	scale := flag.Float64("scale", 1, "multiplies every count and the big blob's size (whole MiB, at most 1 GiB), for quick runs")
	runs := flag.Int("runs", 3, "timed runs per scenario (the median is printed)")
	warmup := flag.Int("warmup", 1, "untimed warm-up runs per scenario")
	selftest := flag.Bool("selftest", false, "check the content against its check values and exit (1 on a mismatch)")
	cleanup := flag.Bool("cleanup", false, "remove the scratch root at exit (mass deletes slow ext4 creates down for minutes)")
	quiet := flag.Bool("q", false, "no per-run lines on stderr")
	flag.Parse()
	if flag.NArg() > 0 {
		usage("unexpected argument " + flag.Arg(0))
	}
	if *selftest {
		if !runSelftest() {
			os.Exit(1)
		}
		return
	}
	if math.IsNaN(*scale) || *scale <= 0 || *runs < 1 || *warmup < 0 {
		usage("-scale must be > 0, -runs >= 1 and -warmup >= 0")
	}
	sel := parseOnly(*only)

	base := os.Getenv("OCISTORE_BENCH_DIR")
	if base == "" {
		base = os.TempDir()
	}
	must(os.MkdirAll(base, 0o755))
	root, err := os.MkdirTemp(base, "oras-go-bench-")
	must(err)
	s := *scale
	b := &bench{
		root: root, runs: *runs, warmup: *warmup, quiet: *quiet,
		nSmall: scaled(nSmall, s), nImages: scaled(nImages, s), nLookups: scaled(nLookups, s),
		nPreds: scaled(nPreds, s), nDangling: scaled(nDangling, s),
		bigSize: int64(min(max(math.Round(1024*s), 1), 1024)) << 20,
	}
	if !*quiet {
		fmt.Fprintf(os.Stderr, "oras-go-bench: %s, GOMAXPROCS=%d, scale %g, scratch %s, %d warm-up + %d runs\n",
			runtime.Version(), runtime.GOMAXPROCS(0), s, root, b.warmup, b.runs)
	}

	doneLarge, doneDeletion := false, false
	for _, name := range allScenarios {
		if !sel[name] {
			continue
		}
		debug.FreeOSMemory() // each scenario's RSS starts from a small heap
		switch name {
		case "push_small_seq":
			b.pushSmallSeq()
		case "push_small_par16":
			b.pushSmallPar16()
		case "push_large", "fetch_large":
			if !doneLarge {
				doneLarge = true
				b.large(sel["push_large"], sel["fetch_large"])
			}
		case "tag_manifests":
			b.tagManifests(true)
		case "tag_manifests_manual":
			b.tagManifests(false)
		case "open_tagged":
			b.openTaggedScenario()
		case "resolve_tags":
			b.resolveTags()
		case "exists_manifests":
			b.existsManifests()
		case "predecessors_shared":
			b.predecessorsShared()
		case "copy_tagged":
			b.copyTagged()
		case "copy_index":
			b.copyIndex()
		case "delete_all", "gc_dangling":
			if !doneDeletion {
				doneDeletion = true
				b.deletion(sel["delete_all"], sel["gc_dangling"])
			}
		default:
			fatal(errors.New("no runner for scenario " + name))
		}
	}
	if *cleanup {
		must(os.RemoveAll(root))
	} else if !*quiet {
		fmt.Fprintf(os.Stderr, "oras-go-bench: scratch root left in place (remove it after the last bench of the day): %s\n", root)
	}
}
