#!/usr/bin/env python3
"""Packs a report font for embedding: `pack.py Font.ttf Font.twf.zst` (fonttools, brotli and the
zstd CLI on PATH; see README.md).

Every glyph, code point, advance and layout table (GSUB, GPOS, GDEF, kern) is kept, so text shapes
and measures as with the original. Dropped: what a PDF of horizontal text never uses: TrueType
hinting (glyph programs, fpgm, prep, cvt, gasp, hdmx, VDMX, LTSH), PostScript glyph names (post
format 3), vertical metrics (vhea, vmtx) and DSIG.

The glyf table is stored in WOFF2's transformed form (W3C WOFF2 §5.1: contour counts, point counts,
flags, coordinates and composites in separate streams), which compresses far better than glyf;
loca is rebuilt from it. The container, then compressed with `zstd --ultra -22`:

    b"TWF1", u16 table count, then per table: tag (4 bytes), u32 length; then the tables' bytes
    in that order. glyf holds the transformed glyf; loca has length 0 (rebuilt).

`src/pdf/fonts/sfnt.rs` rebuilds the sfnt. Before writing, this script checks that the fonttools
WOFF2 decoder rebuilds, from the same streams, every glyph of the source exactly.
"""

import io
import struct
import subprocess
import sys

from fontTools import subset
from fontTools.ttLib import TTFont
from fontTools.ttLib.woff2 import WOFF2Reader

DROP = ["vhea", "vmtx", "DSIG", "gasp"]


def compact(path):
    font = TTFont(path)
    options = subset.Options()
    options.hinting = False
    options.glyph_names = False
    options.notdef_outline = True
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.name_legacy = True
    options.layout_features = ["*"]
    options.drop_tables += DROP
    options.recalc_bounds = False
    options.recalc_timestamp = False
    options.canonical_order = False
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=font.getBestCmap().keys(), glyphs=font.getGlyphOrder())
    subsetter.subset(font)
    return font


def woff2_streams(font):
    buf = io.BytesIO()
    font.flavor = "woff2"
    font.save(buf)
    buf.seek(0)
    reader = WOFF2Reader(buf)
    tables = []
    for tag, entry in reader.tables.items():
        if tag == "loca":
            tables.append((tag, b""))
        else:
            if tag == "glyf":
                assert entry.transformed, "glyf must be stored transformed"
            elif entry.transformed:
                raise SystemExit(f"unexpected transformed table {tag}")
            tables.append((tag, entry.loadData(reader.transformBuffer)))
    buf.seek(0)
    return tables, TTFont(buf)


def same_glyphs(a, b):
    ga, gb = a["glyf"], b["glyf"]
    assert a.getGlyphOrder() == b.getGlyphOrder()
    for name in a.getGlyphOrder():
        x, y = ga[name], gb[name]
        ca, ea, fa = x.getCoordinates(ga)
        cb, eb, fb = y.getCoordinates(gb)
        assert list(ca) == list(cb) and ea == eb and [f & 1 for f in fa] == [f & 1 for f in fb], name
        assert x.isComposite() == y.isComposite(), name
        if x.isComposite():
            assert [(c.glyphName, c.flags & ~0x0200) for c in x.components] == [
                (c.glyphName, c.flags & ~0x0200) for c in y.components
            ], name
    assert a["hmtx"].metrics == b["hmtx"].metrics
    assert a.getBestCmap() == b.getBestCmap()


def main(src, dst):
    original = TTFont(src)
    font = compact(src)
    assert font.getGlyphOrder() == original.getGlyphOrder(), "every glyph kept, same ids"
    assert font.getBestCmap() == original.getBestCmap(), "every code point kept"
    assert font["hmtx"].metrics == original["hmtx"].metrics, "every advance kept"
    reference = TTFont(io.BytesIO(_save(font)))
    tables, rebuilt = woff2_streams(font)
    same_glyphs(reference, rebuilt)
    body = b"TWF1" + struct.pack(">H", len(tables))
    body += b"".join(tag.encode("ascii") + struct.pack(">I", len(data)) for tag, data in tables)
    body += b"".join(data for _, data in tables)
    zst = subprocess.run(["zstd", "--ultra", "-22", "-c", "-q"], input=body, capture_output=True, check=True).stdout
    with open(dst, "wb") as out:
        out.write(zst)
    print(f"{src}: {len(tables)} tables, {len(body)} bytes packed, {len(zst)} compressed")


def _save(font):
    buf = io.BytesIO()
    font.flavor = None
    font.save(buf)
    return buf.getvalue()


if __name__ == "__main__":
    main(*sys.argv[1:3])
