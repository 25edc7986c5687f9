//go:build linux

package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"image"
	_ "image/gif" // registered decoders: PNG, JPEG and GIF only
	_ "image/jpeg"
	"image/png"
	"io"
	"os"
	"syscall"

	"github.com/seed-025014a4/sandbox-exec/ipc"
)

// maxSide bounds each dimension whatever MaxPixels says: no real image
// is 100000 pixels wide, and width*height must not overflow.
const maxSide = 1 << 15

// workerMain is the worker role: one job from the channel, one answer.
func workerMain(args []string) int {
	fs := flag.NewFlagSet("thumbnailer worker", flag.ContinueOnError)
	probe := fs.String("probe", "", "try to open `PATH`, report the errno and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	conn, err := ipc.FromEnv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "thumbnailer worker: %v\n", err)
		return 2
	}
	defer conn.Close()
	if *probe != "" {
		return sendProbe(conn, *probe)
	}

	m, err := conn.Recv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "thumbnailer worker: %v\n", err)
		return 2
	}
	defer m.Close()
	var j job
	if err := m.Decode(&j); err != nil || len(m.Files) != 1 || m.Type != msgJob {
		conn.SendJSON(msgFail, failure{Msg: fmt.Sprintf("bad job message (type %d, %d files, %v)", m.Type, len(m.Files), err)})
		return 2
	}
	out, res, err := thumbnail(m.Files[0], j)
	m.Close()
	if err != nil {
		conn.SendJSON(msgFail, failure{Msg: err.Error()})
		return 1
	}
	for b := out; len(b) > 0; {
		n := min(len(b), ipc.MaxPayload)
		if err := conn.Send(msgChunk, b[:n]); err != nil {
			fmt.Fprintf(os.Stderr, "thumbnailer worker: %v\n", err)
			return 2
		}
		b = b[n:]
	}
	if err := conn.SendJSON(msgDone, res); err != nil {
		fmt.Fprintf(os.Stderr, "thumbnailer worker: %v\n", err)
		return 2
	}
	return 0
}

// sendProbe tries to open path for reading and tells the host the errno.
func sendProbe(conn *ipc.Conn, path string) int {
	r := probeResult{Path: path}
	f, err := os.Open(path)
	if err == nil {
		f.Close()
	} else {
		r.Msg = err.Error()
		var errno syscall.Errno
		if errors.As(err, &errno) {
			r.Errno = errnoName(errno)
		} else {
			r.Errno = "?"
		}
	}
	if err := conn.SendJSON(msgProbe, r); err != nil {
		fmt.Fprintf(os.Stderr, "thumbnailer worker: %v\n", err)
		return 2
	}
	return 0
}

func errnoName(e syscall.Errno) string {
	switch e {
	case syscall.EACCES:
		return "EACCES"
	case syscall.EPERM:
		return "EPERM"
	case syscall.ENOENT:
		return "ENOENT"
	case syscall.ENOSYS:
		return "ENOSYS"
	case syscall.ELOOP:
		return "ELOOP"
	}
	return fmt.Sprintf("errno %d", int(e))
}

// thumbnail reads the input, checks the dimensions its header claims
// before decoding anything, decodes, scales and encodes the PNG.
func thumbnail(in io.Reader, j job) ([]byte, result, error) {
	var res result
	if j.Size < 1 || j.Size > maxSide {
		return nil, res, fmt.Errorf("bad thumbnail size %d", j.Size)
	}
	data, err := io.ReadAll(io.LimitReader(in, j.MaxBytes+1))
	if err != nil {
		return nil, res, fmt.Errorf("read input: %w", err)
	}
	if int64(len(data)) > j.MaxBytes {
		return nil, res, fmt.Errorf("input larger than %d bytes", j.MaxBytes)
	}
	if len(data) == 0 {
		return nil, res, errors.New("empty input")
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, res, fmt.Errorf("not a PNG, JPEG or GIF image: %w", err)
	}
	res.Format, res.SrcWidth, res.SrcHeight = format, cfg.Width, cfg.Height
	if cfg.Width < 1 || cfg.Height < 1 {
		return nil, res, fmt.Errorf("%s claims %dx%d pixels", format, cfg.Width, cfg.Height)
	}
	if cfg.Width > maxSide || cfg.Height > maxSide || int64(cfg.Width)*int64(cfg.Height) > j.MaxPixels {
		return nil, res, fmt.Errorf("%s claims %dx%d pixels, more than the limit of %d pixels (%d per side): refused before decoding",
			format, cfg.Width, cfg.Height, j.MaxPixels, maxSide)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, res, fmt.Errorf("decode %s: %w", format, err)
	}
	data = nil
	b := img.Bounds()
	if b.Dx() != cfg.Width || b.Dy() != cfg.Height {
		return nil, res, fmt.Errorf("decoded %s is %dx%d, its header said %dx%d", format, b.Dx(), b.Dy(), cfg.Width, cfg.Height)
	}
	w, h := fit(cfg.Width, cfg.Height, j.Size)
	thumb := scale(img, w, h)
	img = nil
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, thumb); err != nil {
		return nil, res, fmt.Errorf("encode png: %w", err)
	}
	res.Width, res.Height, res.Bytes = w, h, buf.Len()
	return buf.Bytes(), res, nil
}
