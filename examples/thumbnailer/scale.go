//go:build linux

package main

import (
	"image"
	"image/color"
)

// fit returns the dimensions of a thumbnail whose longer side is size
// and whose aspect ratio is that of a w×h image (rounded, at least 1).
func fit(w, h, size int) (int, int) {
	if w >= h {
		return size, max(1, int((int64(h)*int64(size)+int64(w)/2)/int64(w)))
	}
	return max(1, int((int64(w)*int64(size)+int64(h)/2)/int64(h))), size
}

// scale resizes src to w×h with a box filter: each destination pixel is
// the mean of the source pixels it covers, in premultiplied alpha. When
// enlarging, a destination pixel covers less than one source pixel and
// the filter becomes nearest-neighbour.
func scale(src image.Image, w, h int) *image.RGBA {
	sb := src.Bounds()
	sw, sh := sb.Dx(), sb.Dy()
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	// span maps destination index i of n to the source range [lo, hi) of m.
	span := func(i, n, m int) (int, int) {
		lo := int(int64(i) * int64(m) / int64(n))
		hi := int(int64(i+1) * int64(m) / int64(n))
		if hi <= lo {
			hi = lo + 1
		}
		return lo, hi
	}
	xlo := make([]int, w)
	xhi := make([]int, w)
	for x := range w {
		xlo[x], xhi[x] = span(x, w, sw)
	}
	row := make([]color.RGBA64, sw)
	sum := make([]uint64, 4*w)
	for y := range h {
		ylo, yhi := span(y, h, sh)
		clear(sum)
		for sy := ylo; sy < yhi; sy++ {
			readRow(src, sb.Min.X, sb.Min.Y+sy, row)
			for x := range w {
				s := sum[4*x : 4*x+4 : 4*x+4]
				for _, c := range row[xlo[x]:xhi[x]] {
					s[0] += uint64(c.R)
					s[1] += uint64(c.G)
					s[2] += uint64(c.B)
					s[3] += uint64(c.A)
				}
			}
		}
		rows := uint64(yhi - ylo)
		for x := range w {
			n := rows * uint64(xhi[x]-xlo[x])
			s := sum[4*x : 4*x+4 : 4*x+4]
			i := dst.PixOffset(x, y)
			for k := range 4 {
				dst.Pix[i+k] = uint8((s[k] + n/2) / n >> 8)
			}
		}
	}
	return dst
}

// readRow fills row with the premultiplied 16-bit colours of the source
// row y starting at x0. The common decoder outputs are read directly;
// anything else goes through At.
func readRow(src image.Image, x0, y int, row []color.RGBA64) {
	switch m := src.(type) {
	case *image.RGBA:
		p := m.Pix[m.PixOffset(x0, y):]
		for i := range row {
			q := p[4*i : 4*i+4 : 4*i+4]
			row[i] = color.RGBA64{R: uint16(q[0]) * 0x101, G: uint16(q[1]) * 0x101, B: uint16(q[2]) * 0x101, A: uint16(q[3]) * 0x101}
		}
	case *image.NRGBA:
		p := m.Pix[m.PixOffset(x0, y):]
		for i := range row {
			q := p[4*i : 4*i+4 : 4*i+4]
			r, g, b, a := color.NRGBA{R: q[0], G: q[1], B: q[2], A: q[3]}.RGBA()
			row[i] = color.RGBA64{R: uint16(r), G: uint16(g), B: uint16(b), A: uint16(a)}
		}
	case *image.Gray:
		p := m.Pix[m.PixOffset(x0, y):]
		for i := range row {
			v := uint16(p[i]) * 0x101
			row[i] = color.RGBA64{R: v, G: v, B: v, A: 0xffff}
		}
	case *image.YCbCr:
		for i := range row {
			yi := m.YOffset(x0+i, y)
			ci := m.COffset(x0+i, y)
			r, g, b := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
			row[i] = color.RGBA64{R: uint16(r) * 0x101, G: uint16(g) * 0x101, B: uint16(b) * 0x101, A: 0xffff}
		}
	case *image.Paletted:
		var pal [256]color.RGBA64
		for i, c := range m.Palette {
			r, g, b, a := c.RGBA()
			pal[i] = color.RGBA64{R: uint16(r), G: uint16(g), B: uint16(b), A: uint16(a)}
		}
		// An index beyond the palette (the GIF decoder rejects those)
		// reads as transparent black, pal's zero value.
		p := m.Pix[m.PixOffset(x0, y):]
		for i := range row {
			row[i] = pal[p[i]]
		}
	default:
		for i := range row {
			r, g, b, a := src.At(x0+i, y).RGBA()
			row[i] = color.RGBA64{R: uint16(r), G: uint16(g), B: uint16(b), A: uint16(a)}
		}
	}
}
