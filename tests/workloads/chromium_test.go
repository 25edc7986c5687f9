//go:build linux

package workloads

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const chromium = "/usr/lib/chromium/chromium"

// maxDifferingPixels is the share of pixels a sandboxed screenshot may
// differ in from the native one: 0.1 %. Rendering is software only
// (--disable-gpu) and deterministic, so in practice they are identical.
const maxDifferingPixels = 0.001

// chromiumPage writes the test page into dir: text in the default serif
// font, a web font loaded with @font-face from a TTF next to the page, a
// PNG made here, and two CSS backgrounds that name files the policy
// denies (the fake private key and /etc/shadow), which the browser tries
// to load and must be refused.
func chromiumPage(t *testing.T, dir, secretKey string) string {
	t.Helper()
	copyFile(t, "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf", filepath.Join(dir, "webfont.ttf"))
	img := image.NewNRGBA(image.Rect(0, 0, 64, 48))
	for y := 0; y < 48; y++ {
		for x := 0; x < 64; x++ {
			img.Set(x, y, color.NRGBA{R: uint8(x * 4), G: uint8(y * 5), B: uint8(255 - x*2), A: 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "image.png"), buf.String(), 0o644)
	html := fmt.Sprintf(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>sandbox-exec</title><style>
@font-face { font-family: "WebFont"; src: url("webfont.ttf") format("truetype"); }
body { margin: 20px; background: #ffffff; color: #202020; font-family: serif; }
h1 { font-family: "WebFont", serif; font-size: 40px; }
p { font-size: 18px; }
#forbidden1 { width: 1px; height: 1px; background-image: url("file:///etc/shadow"); }
#forbidden2 { width: 1px; height: 1px; background-image: url("file://%s"); }
</style></head><body>
<h1>Web font: Sandboxed 0123</h1>
<p>Plain text in the default serif font. The quick brown fox jumps over the lazy dog.</p>
<img src="image.png" width="128" height="96" alt="generated">
<div id="forbidden1"></div><div id="forbidden2"></div>
</body></html>
`, secretKey)
	page := filepath.Join(dir, "index.html")
	writeFile(t, page, html, 0o644)
	return page
}

// chromiumArgs is the command of policies/chromium-headless.policy.
func chromiumArgs(profile, shot, page string) []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--user-data-dir=" + profile, "--window-size=800,600",
		"--screenshot=" + shot, "file://" + page}
}

func TestChromiumScreenshot(t *testing.T) {
	requireProgram(t, chromium, "chromium")
	requireProgram(t, "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf", "fonts-dejavu-core")
	T := t.TempDir()
	secret := filepath.Join(T, "home", ".ssh", "id_rsa")
	writeFile(t, secret, "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n", 0o600)
	pageDir := filepath.Join(T, "page")
	page := chromiumPage(t, pageDir, secret)
	pol := policyFile(t, "chromium-headless.policy")

	// nativeRun and sandboxRun each take a fresh profile, as the policy
	// asks. The native run gets the environment the policy gives the
	// worker (HOME and TMPDIR in the profile), so that neither writes to
	// the real home directory.
	n := 0
	nativeRun := func() (string, result) {
		n++
		profile, out := filepath.Join(T, fmt.Sprintf("native-profile-%d", n)), filepath.Join(T, fmt.Sprintf("native-out-%d", n))
		if err := os.MkdirAll(out, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(profile, 0o700); err != nil {
			t.Fatal(err)
		}
		shot := filepath.Join(out, "shot.png")
		r := run(t, runSpec{name: chromium, args: chromiumArgs(profile, shot, page), timeout: 90 * time.Second,
			env: []string{"PATH=" + os.Getenv("PATH"), "LANG=" + os.Getenv("LANG"), "HOME=" + profile, "TMPDIR=" + profile}})
		reapNative(t, profile)
		if r.code != 0 {
			t.Fatalf("native chromium: status %d\n%s", r.code, tail(r.stderr, 30))
		}
		return shot, r
	}
	var audit string
	var events []auditEvent
	sandboxRun := func() (string, result) {
		n++
		profile, out := filepath.Join(T, fmt.Sprintf("profile-%d", n)), filepath.Join(T, fmt.Sprintf("out-%d", n))
		// The profile exists before the run, as the policy says: the
		// worker's Landlock rules are made at start.
		if err := os.MkdirAll(out, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(profile, 0o700); err != nil {
			t.Fatal(err)
		}
		shot := filepath.Join(out, "shot.png")
		audit = filepath.Join(T, fmt.Sprintf("audit-%d.jsonl", n))
		r := sandboxed(t, pol, map[string]string{"PAGE": pageDir, "OUT": out, "PROFILE": profile}, audit,
			runSpec{name: chromium, args: chromiumArgs(profile, shot, page), timeout: 90 * time.Second})
		if r.code != 0 {
			t.Fatalf("sandboxed chromium: status %d\n%s", r.code, tail(r.stderr, 30))
		}
		// sandbox-exec returns only when the whole tree has exited: no
		// crash handler may still run with this profile.
		if left := processesWith(profile); len(left) > 0 {
			t.Errorf("processes of the sandboxed tree outlived sandbox-exec: %v", left)
			reapNative(t, profile)
		}
		events = readAudit(t, audit)
		if bad := writesOutside(events, []string{profile, out}, "/memfd:"); len(bad) > 0 { // memfd: reopens of its own shared memory
			t.Errorf("allowed writes outside the profile and output directories: %q", bad)
		}
		return shot, r
	}

	nativeShot, nr := nativeRun()
	sandboxShot, sr := sandboxRun()

	w, h, differing := comparePNG(t, nativeShot, sandboxShot)
	st, _ := os.Stat(sandboxShot)
	t.Logf("screenshot %dx%d, %d bytes; %d of %d pixels differ from the native one (%.4f %%; at most %.1f %% allowed)",
		w, h, st.Size(), differing, w*h, 100*float64(differing)/float64(w*h), 100*maxDifferingPixels)
	if w != 800 || h != 600 {
		t.Errorf("screenshot is %dx%d, want 800x600 (--window-size)", w, h)
	}
	if float64(differing) > maxDifferingPixels*float64(w*h) {
		t.Errorf("%d pixels differ from the native screenshot", differing)
	}

	// The page's resources were loaded through the broker, and the
	// forbidden files were refused.
	requireAllowedRead(t, events, filepath.Join(pageDir, "webfont.ttf"))
	requireAllowedRead(t, events, filepath.Join(pageDir, "image.png"))
	requireDenied(t, events, "/etc/shadow")
	requireDenied(t, events, secret)
	if strings.Contains(sr.stderr, "not a key") {
		t.Errorf("the private key's content reached the worker's output")
	}

	// Run time: two more runs each; the ratio of the medians.
	native, sandbox := []time.Duration{nr.took}, []time.Duration{sr.took}
	for range 2 {
		_, r := nativeRun()
		native = append(native, r.took)
		_, r = sandboxRun()
		sandbox = append(sandbox, r.took)
	}
	logRatio(t, "chromium screenshot", native, sandbox)
}

// comparePNG decodes both PNGs and returns the size and the number of
// pixels that differ in any channel; different sizes fail the test.
func comparePNG(t *testing.T, a, b string) (w, h, differing int) {
	t.Helper()
	ia, ib := decodePNG(t, a), decodePNG(t, b)
	if ia.Bounds() != ib.Bounds() {
		t.Fatalf("screenshot sizes differ: native %v, sandboxed %v", ia.Bounds(), ib.Bounds())
	}
	r := ia.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			r1, g1, b1, a1 := ia.At(x, y).RGBA()
			r2, g2, b2, a2 := ib.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
				differing++
			}
		}
	}
	return r.Dx(), r.Dy(), differing
}

func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}
