//go:build linux

package main

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/seed-025014a4/sandbox-exec/internal/testutil"
	"github.com/seed-025014a4/sandbox-exec/launcher"
	"github.com/seed-025014a4/sandbox-exec/policy"
)

// hangEnv makes a worker of the test binary hang instead of working; a
// test sets it through the worker's policy (extraPolicy).
const hangEnv = "THUMBNAILER_TEST_HANG"

func TestMain(m *testing.M) {
	launcher.Init()
	if isWorker() {
		// The test binary is the worker, as the thumbnailer binary is in
		// real use: same role switch as main.
		if os.Getenv(hangEnv) == "1" {
			time.Sleep(time.Hour)
		}
		os.Exit(workerMain(os.Args[1:]))
	}
	testutil.Main(m)
}

// goodImage is an input that must become a thumbnail of w×h at -size 64.
type goodImage struct {
	name string
	w, h int
}

// inputs writes good and bad images to a new directory.
func inputs(t *testing.T) (dir string, good []goodImage, bad []string) {
	t.Helper()
	dir = t.TempDir()
	write := func(name string, data []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	encode := func(name string, img image.Image, w, h int) []byte {
		t.Helper()
		var buf bytes.Buffer
		var err error
		switch filepath.Ext(name) {
		case ".png":
			err = png.Encode(&buf, img)
		case ".jpg":
			err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85})
		case ".gif":
			err = gif.Encode(&buf, img, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		write(name, buf.Bytes())
		good = append(good, goodImage{name, w, h})
		return buf.Bytes()
	}

	photo := gradient(1600, 1200)
	encode("photo.jpg", photo, 64, 48)
	tall := image.NewNRGBA(image.Rect(0, 0, 90, 300))
	for y := range 300 {
		for x := range 90 {
			tall.SetNRGBA(x, y, color.NRGBA{uint8(x), uint8(y), 200, uint8(y * 255 / 299)})
		}
	}
	pngData := encode("tall.png", tall, 19, 64)
	encode("anim.gif", gradient(100, 100), 64, 64)
	tiny := image.NewGray(image.Rect(0, 0, 10, 4))
	for i := range tiny.Pix {
		tiny.Pix[i] = uint8(i * 6)
	}
	encode("tiny.png", tiny, 64, 26)
	solid := image.NewRGBA(image.Rect(0, 0, 200, 100))
	for i := 0; i < len(solid.Pix); i += 4 {
		copy(solid.Pix[i:], []byte{200, 30, 40, 255})
	}
	encode("solid.png", solid, 64, 32)

	var jb bytes.Buffer
	if err := jpeg.Encode(&jb, photo, nil); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	bad = []string{
		write("truncated.png", pngData[:len(pngData)/2]),
		write("cut.jpg", jb.Bytes()[:len(jb.Bytes())*6/10]),
		write("huge-header.png", pngFile(100000, 100000, 8, 6, nil)),
		write("bomb.png", pngBomb(t, 20000, 20000)),
		write("gifbomb.gif", gifScreen(t, 65535, 65535)),
		write("random.jpg", random),
		write("empty.png", nil),
	}
	return dir, good, bad
}

func gradient(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetRGBA(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x + y) % 256), 255})
		}
	}
	return img
}

// pngFile builds a PNG with the given IHDR and IDAT data (none if nil).
func pngFile(w, h int, depth, colorType byte, idat []byte) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		b.WriteString(typ)
		b.Write(data)
		binary.Write(&b, binary.BigEndian, crc.Sum32())
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = depth, colorType
	chunk("IHDR", ihdr)
	if idat != nil {
		chunk("IDAT", idat)
	}
	chunk("IEND", nil)
	return b.Bytes()
}

// pngBomb is a valid w×h 1-bit greyscale PNG of one colour: a few tens of
// kilobytes that decode to w*h bytes.
func pngBomb(t *testing.T, w, h int) []byte {
	var z bytes.Buffer
	zw, err := zlib.NewWriterLevel(&z, zlib.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	row := make([]byte, 1+(w+7)/8) // filter byte 0, then zeros
	for range h {
		zw.Write(row)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return pngFile(w, h, 1, 0, z.Bytes())
}

// gifScreen is a valid 1×1 GIF whose logical screen claims w×h.
func gifScreen(t *testing.T, w, h int) []byte {
	var b bytes.Buffer
	img := image.NewPaletted(image.Rect(0, 0, 1, 1), color.Palette{color.Black, color.White})
	if err := gif.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	data := b.Bytes()
	binary.LittleEndian.PutUint16(data[6:], uint16(w))
	binary.LittleEndian.PutUint16(data[8:], uint16(h))
	return data
}

func paths(dir string, good []goodImage, bad []string) []string {
	var out []string
	for _, g := range good {
		out = append(out, filepath.Join(dir, g.name))
	}
	return append(out, bad...)
}

func runHost(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

// TestThumbnails runs the host over good and hostile images.
func TestThumbnails(t *testing.T) {
	testutil.CheckFDLeaks(t)
	testutil.CheckGoroutineLeaks(t)
	dir, good, bad := inputs(t)
	out := t.TempDir()
	start := time.Now()
	code, stdout, stderr := runHost(t, append([]string{"-size", "64", "-workers", "3", "-v", "-out", out}, paths(dir, good, bad)...)...)
	t.Logf("%d files in %v\n%s%s", len(good)+len(bad), time.Since(start), stdout, stderr)
	if code != 1 {
		t.Errorf("exit status %d, want 1 (some files failed)", code)
	}
	for _, g := range good {
		checkThumb(t, filepath.Join(out, strings.TrimSuffix(g.name, filepath.Ext(g.name))+".png"), g.w, g.h)
	}
	for _, b := range bad {
		if !strings.Contains(stderr, "thumbnailer: "+b+": ") {
			t.Errorf("%s is not reported as failed", filepath.Base(b))
		}
		name := strings.TrimSuffix(filepath.Base(b), filepath.Ext(b)) + ".png"
		if _, err := os.Stat(filepath.Join(out, name)); err == nil && !hasGood(good, name) {
			t.Errorf("%s made an output file", filepath.Base(b))
		}
	}
	// Every hostile input is refused for its own reason by its worker.
	for name, want := range map[string]string{
		"huge-header.png": "claims 100000x100000 pixels",
		"bomb.png":        "claims 20000x20000 pixels",
		"gifbomb.gif":     "claims 65535x65535 pixels",
		"random.jpg":      "not a PNG, JPEG or GIF",
		"empty.png":       "empty input",
		"truncated.png":   "decode png",
		"cut.jpg":         "decode jpeg",
	} {
		re := regexp.MustCompile(`(?m)^thumbnailer: .*/` + regexp.QuoteMeta(name) + `: .*` + regexp.QuoteMeta(want))
		if !re.MatchString(stderr) {
			t.Errorf("%s: want an error with %q in\n%s", name, want, stderr)
		}
	}
	if !strings.Contains(stderr, "7 of 12 files failed") {
		t.Errorf("no summary line in\n%s", stderr)
	}
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left in the output directory", e.Name())
		}
	}
	// The solid image is still its colour.
	if img := decode(t, filepath.Join(out, "solid.png")); img != nil {
		if c := color.RGBAModel.Convert(img.At(32, 16)).(color.RGBA); c != (color.RGBA{200, 30, 40, 255}) {
			t.Errorf("solid.png thumbnail is %v at its centre, want {200 30 40 255}", c)
		}
	}
}

func hasGood(good []goodImage, out string) bool {
	for _, g := range good {
		if strings.TrimSuffix(g.name, filepath.Ext(g.name))+".png" == out {
			return true
		}
	}
	return false
}

func decode(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Error(err)
		return nil
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return nil
	}
	return img
}

func checkThumb(t *testing.T, path string, w, h int) {
	t.Helper()
	img := decode(t, path)
	if img == nil {
		return
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Errorf("%s is %dx%d, want %dx%d", filepath.Base(path), b.Dx(), b.Dy(), w, h)
	}
}

func TestAllGood(t *testing.T) {
	testutil.CheckFDLeaks(t)
	testutil.CheckGoroutineLeaks(t)
	dir, good, _ := inputs(t)
	out := t.TempDir()
	code, stdout, stderr := runHost(t, append([]string{"-size", "200", "-workers", "1", "-out", out}, paths(dir, good, nil)...)...)
	if code != 0 {
		t.Fatalf("exit status %d\n%s%s", code, stdout, stderr)
	}
	checkThumb(t, filepath.Join(out, "photo.png"), 200, 150)
	checkThumb(t, filepath.Join(out, "tiny.png"), 200, 80)
}

// TestProbe: a worker cannot open a file, whatever the host can.
func TestProbe(t *testing.T) {
	testutil.CheckFDLeaks(t)
	testutil.CheckGoroutineLeaks(t)
	h, err := newHost(options{timeout: 20 * time.Second}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	input := filepath.Join(t.TempDir(), "input.png")
	if err := os.WriteFile(input, pngFile(1, 1, 8, 0, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/etc/passwd":   "EACCES", // allowed by system-runtime.policy, denied by worker.policy
		"/etc/hostname": "EACCES",
		input:           "EACCES", // the host opened it; the worker may not
		h.self:          "",       // its own binary: read,exec
	} {
		r, err := h.probe(context.Background(), path)
		if err != nil {
			t.Errorf("probe %s: %v", path, err)
			continue
		}
		if r.Errno != want {
			t.Errorf("worker open %s: %q (%s), want %q", path, r.Errno, r.Msg, want)
		}
	}
	code, stdout, stderr := runHost(t, "-probe", "/etc/passwd")
	if code != 0 || stdout != "/etc/passwd: EACCES (open /etc/passwd: permission denied)\n" {
		t.Errorf("thumbnailer -probe /etc/passwd: status %d, %q %q", code, stdout, stderr)
	}
}

// TestBombKillsOnlyItsWorker lets a decompression bomb past the dimension
// check: the worker's memory limit kills it; the host reports it and
// still makes the good thumbnail.
func TestBombKillsOnlyItsWorker(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's runtime does not start within a 256 MiB data limit")
	}
	testutil.CheckFDLeaks(t)
	testutil.CheckGoroutineLeaks(t)
	extraPolicy = "limit data 256MiB\n"
	t.Cleanup(func() { extraPolicy = "" })
	dir := t.TempDir()
	bomb := filepath.Join(dir, "bomb.png")
	if err := os.WriteFile(bomb, pngBomb(t, 20000, 20000), 0o644); err != nil {
		t.Fatal(err)
	}
	goodFile := filepath.Join(dir, "good.png")
	var b bytes.Buffer
	png.Encode(&b, gradient(300, 300))
	if err := os.WriteFile(goodFile, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	code, stdout, stderr := runHost(t, "-size", "32", "-max-pixels", "1000000000", "-out", out, bomb, goodFile)
	t.Logf("%s%s", stdout, stderr)
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	// The Go runtime dies of a failed allocation with "fatal error: out of
	// memory" (or "cannot allocate memory"), and now and then, out of the
	// sandbox too (ulimit -d), with a SIGSEGV at address 0 in the runtime.
	if !regexp.MustCompile(`bomb.png: worker exit status 2: (fatal error: .*(out of memory|cannot allocate memory)|SIGSEGV)`).MatchString(stderr) {
		t.Errorf("bomb.png: want the worker to die of its memory limit, got\n%s", stderr)
	}
	checkThumb(t, filepath.Join(out, "good.png"), 32, 32)
}

// TestTimeout: a worker that never answers is killed at -timeout.
func TestTimeout(t *testing.T) {
	testutil.CheckFDLeaks(t)
	testutil.CheckGoroutineLeaks(t)
	extraPolicy = "env set " + hangEnv + "=1\n"
	t.Cleanup(func() { extraPolicy = "" })
	dir := t.TempDir()
	in := filepath.Join(dir, "a.png")
	var b bytes.Buffer
	png.Encode(&b, gradient(10, 10))
	if err := os.WriteFile(in, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, _, stderr := runHost(t, "-timeout", "1s", "-out", t.TempDir(), in)
	if code != 1 || !strings.Contains(stderr, in+": timed out: worker killed") {
		t.Errorf("status %d, stderr\n%s", code, stderr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"x.png"},
		{"-out", t.TempDir()},
		{"-size", "0", "-out", t.TempDir(), "x.png"},
		{"-workers", "0", "-out", t.TempDir(), "x.png"},
		{"-out", "/nonexistent", "x.png"},
	} {
		if code, _, _ := runHost(t, args...); code != 2 {
			t.Errorf("thumbnailer %q: status %d, want 2", args, code)
		}
	}
}

// TestHostRefusesNonFiles: directories, FIFOs and missing files fail in
// the host, without a worker.
func TestHostRefusesNonFiles(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := runHost(t, "-out", t.TempDir(), dir, filepath.Join(dir, "missing.png"), "/dev/null")
	if code != 1 || strings.Count(stderr, "\n") != 4 {
		t.Errorf("status %d, stderr\n%s", code, stderr)
	}
}

func TestPolicyInSync(t *testing.T) {
	canon, err := os.ReadFile("../../policies/system-runtime.policy")
	if err != nil {
		t.Fatal(err)
	}
	if string(canon) != systemRuntime {
		t.Error("system-runtime.policy differs from ../../policies/system-runtime.policy: cp ../../policies/system-runtime.policy .")
	}
}

func TestWorkerPolicy(t *testing.T) {
	h, err := newHost(options{timeout: 5 * time.Second}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	for _, d := range h.policy.Lint() {
		if strings.Contains(d.Msg, "is overridden by the later deny") && strings.Contains(workerPolicy, "\ndeny /etc/passwd /etc/group /etc/nsswitch.conf\n") {
			continue // on purpose: worker.policy takes these back from system-runtime.policy
		}
		t.Errorf("lint: %s: %s", d.Pos, d.Msg)
	}
	m := h.policy.Matcher()
	for _, c := range []struct {
		path  string
		right policy.Right
		want  bool
	}{
		{h.self, policy.Read | policy.Exec, true},
		{"/etc/passwd", policy.Read, false},
		{"/etc/ld.so.cache", policy.Read, true},
		{os.TempDir() + "/x.png", policy.Read, false},
		{"/usr/lib/x", policy.Write, false},
	} {
		if v := m.Decide(c.path, c.right); v.Allowed != c.want {
			t.Errorf("%s %v: allowed %v, want %v (%s)", c.path, c.right, v.Allowed, c.want, m.Where(v))
		}
	}
	if h.policy.Net().Mode != policy.NetNone {
		t.Error("worker has network")
	}
	limits := map[string]uint64{}
	for _, l := range h.policy.Limits() {
		limits[l.Name] = l.Hard
	}
	if limits["cpu"] != 5 || limits["fsize"] != 0 || limits["as"] != 2<<30 || limits["data"] != 768<<20 || limits["nofile"] != 64 {
		t.Errorf("limits %v", limits)
	}
}

func TestFit(t *testing.T) {
	for _, c := range []struct{ w, h, size, ww, wh int }{
		{1600, 1200, 64, 64, 48},
		{90, 300, 64, 19, 64},
		{10, 4, 64, 64, 26},
		{100000, 1, 64, 64, 1},
		{1, 1, 1, 1, 1},
	} {
		if w, h := fit(c.w, c.h, c.size); w != c.ww || h != c.wh {
			t.Errorf("fit(%d, %d, %d) = %d, %d, want %d, %d", c.w, c.h, c.size, w, h, c.ww, c.wh)
		}
	}
}

func TestScaleBox(t *testing.T) {
	// A 2×2 checker of black and white averages to mid grey.
	src := image.NewGray(image.Rect(0, 0, 2, 2))
	src.Pix = []uint8{0, 255, 255, 0}
	if c := scale(src, 1, 1).RGBAAt(0, 0); c != (color.RGBA{128, 128, 128, 255}) {
		t.Errorf("mean of checker = %v", c)
	}
	// Enlarging repeats pixels.
	up := scale(src, 4, 4)
	if up.RGBAAt(1, 1) != (color.RGBA{0, 0, 0, 255}) || up.RGBAAt(2, 0) != (color.RGBA{255, 255, 255, 255}) {
		t.Errorf("enlarged: %v", up.Pix)
	}
	// A half-transparent red and an opaque blue average in premultiplied alpha.
	n := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	n.SetNRGBA(0, 0, color.NRGBA{255, 0, 0, 0})
	n.SetNRGBA(1, 0, color.NRGBA{0, 0, 255, 255})
	if c := scale(n, 1, 1).RGBAAt(0, 0); c != (color.RGBA{0, 0, 128, 128}) {
		t.Errorf("transparent + blue = %v", c)
	}
}

// BenchmarkThumbnail is one 1600×1200 JPEG to a 128-pixel PNG, worker
// start included.
func BenchmarkThumbnail(b *testing.B) {
	dir := b.TempDir()
	in := filepath.Join(dir, "photo.jpg")
	var buf bytes.Buffer
	jpeg.Encode(&buf, gradient(1600, 1200), nil)
	if err := os.WriteFile(in, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	h, err := newHost(options{size: 128, workers: 1, timeout: 20 * time.Second, out: b.TempDir(), maxPixels: 50e6, maxBytes: 64 << 20}, os.Stderr)
	if err != nil {
		b.Fatal(err)
	}
	defer h.close()
	var start time.Duration
	for b.Loop() {
		o := h.process(context.Background(), in, filepath.Join(h.opts.out, "photo.png"))
		if o.err != nil {
			b.Fatal(o.err)
		}
		start += o.start
	}
	b.ReportMetric(float64(start.Microseconds())/float64(b.N), "start-µs/op")
}

// BenchmarkDecodeScale is the worker's own work on the same input,
// in process: the difference to BenchmarkThumbnail is the sandbox's.
func BenchmarkDecodeScale(b *testing.B) {
	var buf bytes.Buffer
	jpeg.Encode(&buf, gradient(1600, 1200), nil)
	data := buf.Bytes()
	for b.Loop() {
		if _, _, err := thumbnail(bytes.NewReader(data), job{Size: 128, MaxPixels: 50e6, MaxBytes: 64 << 20}); err != nil {
			b.Fatal(err)
		}
	}
}
