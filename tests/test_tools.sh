#!/usr/bin/env bash
# test_tools.sh - end-to-end tests of tools/ (frames2clip, video2clip, clip2png, mkdataset):
# builds them warning-free (-Werror), makes test images with a small C helper (stb_image_write),
# and checks round trips bit for bit (images -> clip -> PNG, clip -> raw -> clip), the options,
# and every error path with its message. ffmpeg is used when installed, skipped otherwise.
# Files that are not regular files (issue 15): a FIFO, /dev/null or /dev/zero as an input is
# refused (under timeout, so a regression fails rather than hangs), and a symbolic link, a
# FIFO, /dev/null or /dev/full (as root also a device node made with mknod) at an output is
# refused and left as it was; paths over 500 characters keep the reason.
# mkdataset's splits (issue 18): a source video feeding several classes stays in one split
# (16 sources, 6 classes), every clip in exactly one of test.csv and the folds, no group in two
# (default groups, --ucf, --group-regex), the same folds for the same seed, folds balanced by
# class within a group's size, relative paths (a moved dataset folder passes --check), the
# manifests of an earlier layout removed, and the errors.
# Prints [PASS] name / [FAIL] name: reason / [SKIP] name: reason; the last line is
# "N passed, N failed"; the exit status is non-zero on any failure.
#
# Usage (from anywhere):   bash tests/test_tools.sh
#   CC=clang bash tests/test_tools.sh
#   TOOLS_CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all" bash tests/test_tools.sh
#   STB_DIR=/path/to/stb bash tests/test_tools.sh       (default /usr/include/stb)
#   TOOLS_OUT=build/other bash tests/test_tools.sh      (binaries and scratch; default
#                                                        build/test_tools: one per parallel run)
# Without libstb-dev only video2clip is built and tested; the others are reported as skipped
# with the command that installs it.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
CC=${CC:-cc}
STB_DIR=${STB_DIR:-/usr/include/stb}
CFLAGS=${TOOLS_CFLAGS:--O2 -g}
WARN="-std=c99 -Wall -Wextra -Wpedantic -Wshadow -Wdouble-promotion -Wstrict-prototypes -Wmissing-prototypes -Werror"
OUT=${TOOLS_OUT:-build/test_tools}
case $OUT in /*) ;; *) OUT=$ROOT/$OUT ;; esac
BIN=$OUT/bin
W=$OUT/work
rm -rf "$W"
mkdir -p "$BIN" "$W"
PASSED=0
FAILED=0

pass() { echo "[PASS] $1"; PASSED=$((PASSED + 1)); }
fail() { echo "[FAIL] $1: $2"; FAILED=$((FAILED + 1)); }
skip() { echo "[SKIP] $1: $2"; }

# A sanitizer report or a crash in the log fails any test, even one expecting an error.
crashed() { grep -q -E 'Sanitizer|runtime error:|Segmentation fault|core dumped|Aborted' "$OUT/log"; }
# ok NAME 'shell command': passes when the command exits 0.
ok() {
    if (cd "$W" && eval "$2") >"$OUT/log" 2>&1 && ! crashed; then pass "$1"; else
        fail "$1" "command failed: $2: $(head -c 600 "$OUT/log" | tr '\n' ' ')"
    fi
}
# err NAME 'expected message' 'shell command': must exit non-zero and print the message.
err() {
    local rc
    (cd "$W" && eval "$3") >"$OUT/log" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ]; then fail "$1" "exit status 0, want an error: $3"
    elif [ "$rc" -ge 128 ] || crashed; then fail "$1" "crashed: $(head -c 600 "$OUT/log" | tr '\n' ' ')"
    elif grep -q -F -- "$2" "$OUT/log"; then pass "$1"
    else fail "$1" "the message lacks \"$2\": $(head -c 600 "$OUT/log" | tr '\n' ' ')"; fi
}
# out NAME 'expected output' 'shell command': must exit 0 and print the text.
out() {
    if (cd "$W" && eval "$3") >"$OUT/log" 2>&1 && ! crashed && grep -q -F -- "$2" "$OUT/log"; then pass "$1"
    else fail "$1" "want \"$2\" from: $3: $(head -c 600 "$OUT/log" | tr '\n' ' ')"; fi
}

HAVE_STB=0
[ -f "$STB_DIR/stb_image.h" ] && [ -f "$STB_DIR/stb_image_write.h" ] && [ -f "$STB_DIR/stb_image_resize.h" ] && HAVE_STB=1

# ---- build ----------------------------------------------------------------------------------
build() { # build NAME SOURCE [extra flags]
    if $CC $WARN $CFLAGS -I"$ROOT" -I"$STB_DIR" "$2" -o "$BIN/$1" -lm >"$OUT/log" 2>&1; then
        pass "build $1"
        return 0
    fi
    fail "build $1" "$(head -c 1500 "$OUT/log")"
    return 1
}
build video2clip tools/video2clip.c || true
if [ "$HAVE_STB" = 1 ]; then
    for t in frames2clip clip2png mkdataset; do build "$t" "tools/$t.c" || true; done
    # the helper: deterministic test images. gen FORMAT OUT W H C SEED writes an image whose
    # pixel (x, y, c) is a function of (x, y, c, seed); FORMAT "rgb" writes, as an RGB PNG, what
    # stb_image makes of that image when asked for 3 channels (gray copied, alpha dropped);
    # FORMAT "x3" the PNG three times as large, each pixel a 3 x 3 block.
    cat >"$OUT/gen.c" <<'EOF'
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static unsigned char px(int x, int y, int c, int s) { return (unsigned char)(x * 7 + y * 13 + c * 71 + s * 29 + ((x ^ y) & 5) * 11); }
int main(int argc, char **argv) {
    const char *fmt = argv[1], *out = argv[2];
    int w = atoi(argv[3]), h = atoi(argv[4]), c = atoi(argv[5]), s = atoi(argv[6]), x, y, k, ok = 0;
    int oc = strcmp(fmt, "rgb") == 0 ? 3 : c, z = strcmp(fmt, "x3") == 0 ? 3 : 1;
    unsigned char *p;
    w *= z, h *= z;
    p = malloc((size_t)w * h * oc);
    for (y = 0; y < h; y++) for (x = 0; x < w; x++) for (k = 0; k < oc; k++)
        p[((size_t)y * w + x) * oc + k] = px(x / z, y / z, oc == c ? k : (c <= 2 ? 0 : k), s);
    if (!strcmp(fmt, "png") || !strcmp(fmt, "rgb") || z == 3) ok = stbi_write_png(out, w, h, oc, p, w * oc);
    else if (!strcmp(fmt, "bmp")) ok = stbi_write_bmp(out, w, h, c, p);
    else if (!strcmp(fmt, "tga")) ok = stbi_write_tga(out, w, h, c, p);
    else if (!strcmp(fmt, "jpg")) ok = stbi_write_jpg(out, w, h, c, p, 95);
    else if (!strcmp(fmt, "ppm") || !strcmp(fmt, "pgm")) {
        FILE *f = fopen(out, "wb");
        ok = f && fprintf(f, "P%c\n%d %d\n255\n", c == 3 ? '6' : '5', w, h) > 0 && fwrite(p, 1, (size_t)w * h * c, f) == (size_t)w * h * c;
        if (f) fclose(f);
    }
    free(p);
    return !ok;
}
EOF
    if ! $CC -O1 -I"$STB_DIR" "$OUT/gen.c" -o "$BIN/gen" -lm >"$OUT/log" 2>&1; then
        fail "build test helper" "$(head -c 600 "$OUT/log")"
        HAVE_STB=0
    fi
else
    skip "frames2clip, clip2png, mkdataset" "no stb headers in $STB_DIR: sudo apt-get install libstb-dev"
fi
export PATH="$BIN:$PATH"
FB=$((32 * 24 * 3)) # bytes of a 32 x 24 RGB frame

if [ "$HAVE_STB" = 1 ]; then
    # ---- frames2clip and clip2png: round trips -----------------------------------------------
    mkdir -p "$W/fr" "$W/gray" "$W/rgba" "$W/fmt" "$W/empty" "$W/mixed" "$W/bad" "$W/jpg"
    for i in $(seq 1 12); do gen png "$W/fr/f$i.png" 32 24 3 "$i"; done # f1 .. f12: natural order
    echo "not an image" >"$W/fr/notes.txt"                                  # skipped
    ok "frames2clip: folder of PNGs" 'frames2clip -q -o a.clip fr && test -f a.clip && test ! -e a.clip.part'
    out "clip2png --info" "a.clip: 12 frames of 32 x 24, 3 channels, 0 fps, label -1, $((64 + 12 * FB)) bytes" \
        'clip2png a.clip --info'
    ok "clip size is the header plus the frames" "test \$(wc -c < a.clip) -eq $((64 + 12 * FB))"
    mkdir -p "$W/sp"
    out "clip2png --split" "a.clip: 12 PNG files sp/0000.png .. sp/0011.png" 'clip2png a.clip --split sp/'
    ok "round trip: PNG -> clip -> PNG is bit-exact, natural order (f9 < f10)" \
        'for i in $(seq 0 11); do cmp -s sp/$(printf %04d $i).png fr/f$((i + 1)).png || exit 1; done'
    ok "round trip: split PNGs -> clip is the same clip" 'frames2clip -q -o b.clip sp && cmp a.clip b.clip'
    ok "the pixels are the images' pixels, frame-major HWC" \
        'frames2clip -q -o one.clip fr/f3.png && gen png f3.png 32 24 3 3 && clip2png -q one.clip --split o_ && cmp o_0000.png f3.png'
    ok "@LIST input, in the list's order" \
        'printf "fr/f2.png\n\nfr/f1.png\n" > list.txt && frames2clip -q -o l.clip @list.txt && clip2png -q l.clip --split l_ && cmp l_0000.png fr/f2.png && cmp l_0001.png fr/f1.png'
    ok "files given one by one keep their order" \
        'frames2clip -q -o fo.clip fr/f5.png fr/f4.png && clip2png -q fo.clip --split fo_ && cmp fo_0000.png fr/f5.png && cmp fo_0001.png fr/f4.png'
    # gray and RGBA become RGB
    for i in 1 2 3; do
        gen png "$W/gray/g$i.png" 32 24 1 "$i"; gen rgb "$W/gray/want$i.rgb.png" 32 24 1 "$i"
        gen png "$W/rgba/a$i.png" 32 24 4 "$i"; gen rgb "$W/rgba/want$i.rgb.png" 32 24 4 "$i"
    done
    ok "grayscale becomes RGB (gray copied to R, G, B)" \
        'frames2clip -q -o g.clip gray/g1.png gray/g2.png gray/g3.png && clip2png -q g.clip --split g_ && cmp g_0000.png gray/want1.rgb.png && cmp g_0002.png gray/want3.rgb.png'
    ok "RGBA becomes RGB (alpha dropped)" \
        'frames2clip -q -o r.clip rgba/a1.png rgba/a2.png rgba/a3.png && clip2png -q r.clip --split r_ && cmp r_0001.png rgba/want2.rgb.png'
    # lossless formats: BMP, TGA, PPM, PGM read to the same pixels
    gen bmp "$W/fmt/x.bmp" 32 24 3 7; gen tga "$W/fmt/x.tga" 32 24 3 7; gen ppm "$W/fmt/x.ppm" 32 24 3 7
    gen pgm "$W/fmt/y.pgm" 32 24 1 8; gen rgb "$W/fmt/x.rgb.png" 32 24 3 7; gen rgb "$W/fmt/y.rgb.png" 32 24 1 8
    for f in bmp tga ppm; do
        ok "reads .$f bit-exact" "frames2clip -q -o $f.clip fmt/x.$f && clip2png -q $f.clip --split ${f}_ && cmp ${f}_0000.png fmt/x.rgb.png"
    done
    ok "reads .pgm (gray) bit-exact" 'frames2clip -q -o pgm.clip fmt/y.pgm && clip2png -q pgm.clip --split pgm_ && cmp pgm_0000.png fmt/y.rgb.png'
    for i in 1 2; do gen jpg "$W/jpg/j$i.jpg" 40 30 3 "$i"; done
    out "reads JPEG" "jp.clip: 2 frames of 40 x 30, 3 channels" 'frames2clip -q -o jp.clip jpg && clip2png jp.clip --info'
    # subsampling, resizing, fps and label
    ok "--every 3 keeps frames 1, 4, 7, 10" \
        'frames2clip -q --every 3 -o e.clip fr && clip2png -q e.clip --split e_ && cmp e_0000.png fr/f1.png && cmp e_0001.png fr/f4.png && cmp e_0003.png fr/f10.png && test ! -e e_0004.png'
    ok "--frames 4 of 12 keeps the middles of 4 parts: 2, 5, 8, 11" \
        'frames2clip -q --frames 4 -o t4.clip fr && clip2png -q t4.clip --split t4_ && cmp t4_0000.png fr/f2.png && cmp t4_0001.png fr/f5.png && cmp t4_0002.png fr/f8.png && cmp t4_0003.png fr/f11.png'
    ok "--every 2 --frames 3: frames 2, 6, 10 of the kept 1, 3, .., 11" \
        'frames2clip -q --every 2 --frames 3 -o et.clip fr && clip2png -q et.clip --split et_ && cmp et_0000.png fr/f3.png && cmp et_0001.png fr/f7.png && cmp et_0002.png fr/f11.png'
    out "--fps 30 --every 2 records 15 fps; --label" "s.clip: 6 frames of 32 x 24, 3 channels, 15 fps, label 4" \
        'frames2clip -q --fps 30 --every 2 --label 4 -o s.clip fr && clip2png s.clip --info'
    out "--size 12: short side 12, long side 16" "z.clip: 12 frames of 16 x 12" 'frames2clip --size 12 -o z.clip fr'
    out "--size 16 --crop: 16 x 16" "zc.clip: 2 frames of 16 x 16, 3 channels" \
        'frames2clip -q --size 16 --crop -o zc.clip fr/f1.png fr/f2.png && clip2png zc.clip --info'
    out "--size 48 upscales" "up.clip: 1 frames of 64 x 48" 'frames2clip --size 48 -o up.clip fr/f1.png'
    # errors name the file
    gen png "$W/mixed/m1.png" 32 24 3 1; gen png "$W/mixed/m2.png" 20 10 3 2
    printf 'garbage, not a png' >"$W/bad/b1.png"
    err "error: empty folder" "empty: no images in the folder" 'frames2clip -o x.clip empty'
    err "error: folder of other files" "no images in the folder (only files of other types)" \
        'mkdir -p txt && echo hi > txt/a.txt && frames2clip -o x.clip txt'
    err "error: unreadable frame names it" "bad/b1.png: cannot read the image" 'frames2clip -o x.clip bad'
    err "error: mixed sizes name both files" "mixed/m2.png: the image is 20 x 10, but the first frame mixed/m1.png is 32 x 24" \
        'frames2clip -o x.clip mixed'
    ok "a failed conversion leaves no clip and no .part" 'frames2clip -q -o x.clip mixed; test ! -e x.clip && test ! -e x.clip.part'
    err "error: missing input" "nope: no such file or folder" 'frames2clip -o x.clip nope'
    err "error: list names a missing file" "list2.txt:2: fr/missing.png: no such file" \
        'printf "fr/f1.png\nfr/missing.png\n" > list2.txt && frames2clip -o x.clip @list2.txt'
    err "error: no -o" "no output file (-o OUT.clip)" 'frames2clip fr'
    err "error: --crop without --size" "--crop needs --size" 'frames2clip --crop -o x.clip fr'
    err "error: too many --frames" "--frames 20, but only 12 images were found" 'frames2clip --frames 20 -o x.clip fr'
    err "error: bad number" "--size needs an integer from 1 to 16384, got \"abc\"" 'frames2clip --size abc -o x.clip fr'
    # options after the inputs: the images already listed are freed (a leak under ASan)
    err "error: bad number after the inputs" "--size needs an integer from 1 to 16384, got \"abc\"" \
        'frames2clip -o x.clip fr --size abc'
    err "error: unknown option after the inputs" "unknown option --bogus" 'frames2clip -o x.clip fr --bogus'
    ok "--help after the inputs" 'frames2clip fr --help'
    err "error: unwritable output" "nodir/x.clip.part: cannot write" 'frames2clip -o nodir/x.clip fr'
    # contact sheets
    out "clip2png sheet: 4 columns" "sheet.png: 12 of 12 frames in a 4 x 3 grid, 138 x 80 pixels" \
        'clip2png a.clip -o sheet.png --cols 4'
    ok "the sheet is a PNG" 'test "$(head -c 8 sheet.png | od -An -tx1 | tr -d " \n")" = 89504e470d0a1a0a'
    out "clip2png sheet: --max, --thumb, --gap" "sh2.png: 5 of 12 frames in a 3 x 2 grid, 48 x 24 pixels" \
        'clip2png a.clip -o sh2.png --max 5 --thumb 16 --gap 0'
    out "clip2png sheet: --every" "sh3.png: 4 of 12 frames in a 2 x 2 grid" 'clip2png a.clip -o sh3.png --every 3'
    ok "a sheet frame at full size is the frame itself" \
        'clip2png -q one.clip -o onesheet.png --gap 0 && cmp onesheet.png f3.png'
    ok "--thumb enlarges a small clip: each pixel a 3 x 3 block (32 x 24 -> 96 x 72)" \
        'clip2png -q one.clip -o bigsheet.png --gap 0 --thumb 96 && gen x3 f3x3.png 32 24 3 3 && cmp bigsheet.png f3x3.png'
    out "clip2png sheet: --thumb larger than the frames" "sh4.png: 5 of 12 frames in a 3 x 2 grid, 192 x 96 pixels" \
        'clip2png a.clip -o sh4.png --max 5 --thumb 64 --gap 0'
    err "clip2png: truncated clip" "trunc.clip: malformed file (truncated: the header describes $((64 + 12 * FB)) bytes)" \
        "head -c 1000 a.clip > trunc.clip && clip2png trunc.clip --info"
    err "clip2png: not a clip" "notclip.clip: malformed file (not a clip file (no TSF_CLIP magic))" \
        'head -c 200 fr/f1.png > notclip.clip && clip2png notclip.clip --info'
    err "clip2png: missing clip" "missing.clip: no such file" 'clip2png missing.clip --info'
    err "clip2png: nothing to do" "nothing to do: give -o SHEET.png, --split or --info" 'clip2png a.clip'
fi

# ---- video2clip -----------------------------------------------------------------------------
# a raw stream: from a clip made by frames2clip, or, without stb, from a clip written here
if [ ! -f "$W/a.clip" ]; then
    { printf 'TSF_CLIP\001\000\000\000\100\000\000\000\014\000\000\000\030\000\000\000\040\000\000\000\003\000\000\000\000\000\000\000\377\377\377\377'
      head -c 24 /dev/zero; head -c $((12 * FB)) /dev/urandom; } >"$W/a.clip"
fi
tail -c +65 "$W/a.clip" >"$W/raw.rgb"
ok "video2clip: raw frames -> the same clip" 'video2clip -q -W 32 -H 24 -o v.clip < raw.rgb && cmp v.clip a.clip'
ok "video2clip: --input FILE" 'video2clip -q --width 32 --height 24 --input raw.rgb -o v2.clip && cmp v2.clip a.clip'
out "video2clip: summary" "v3.clip: 12 frames of 32 x 24" 'video2clip -W 32 -H 24 -o v3.clip < raw.rgb'
if [ "$HAVE_STB" = 1 ]; then
    out "video2clip: --fps --label stored" "f.clip: 12 frames of 32 x 24, 3 channels, 29.97 fps, label 2" \
        'video2clip -q -W 32 -H 24 --fps 29.97 --label 2 -o f.clip < raw.rgb && clip2png f.clip --info'
fi
out "video2clip: windows of 5 every 3" "s_0000.clip .. s_0002.clip: 3 clips of 5 frames (stride 3) from 12 frames; the incomplete last window was dropped" \
    'video2clip -W 32 -H 24 --window 5 --stride 3 -o s.clip < raw.rgb'
ok "video2clip: window files, and no leftovers" 'test -f s_0000.clip && test -f s_0002.clip && test ! -e s_0003.clip && test ! -e s_0003.clip.part'
ok "video2clip: window 1 holds frames 3 .. 7 exactly" \
    "cmp <(tail -c +65 s_0001.clip) <(tail -c +$((3 * FB + 1)) raw.rgb | head -c $((5 * FB))) && test \$(wc -c < s_0001.clip) -eq $((64 + 5 * FB))"
ok "video2clip: windows without overlap (stride = window)" \
    'video2clip -q -W 32 -H 24 --window 4 -o n < raw.rgb && test -f n_0002.clip && test ! -e n_0003.clip && cmp <(cat n_0000.clip n_0001.clip n_0002.clip | wc -c) <(echo $((3 * (64 + 4 * FB))))'
ok "video2clip: a stride longer than the window skips frames" \
    "video2clip -q -W 32 -H 24 --window 2 --stride 5 -o g < raw.rgb && test -f g_0002.clip && test ! -e g_0003.clip && cmp <(tail -c +65 g_0002.clip) <(tail -c +$((10 * FB + 1)) raw.rgb)"
err "video2clip: truncated last frame" "stdin ended inside frame 5: 100 of $FB bytes (32 x 24 x 3)" \
    "head -c $((5 * FB + 100)) raw.rgb | video2clip -W 32 -H 24 -o tr.clip"
ok "video2clip: no partial clip after an error" "head -c $((5 * FB + 100)) raw.rgb | video2clip -q -W 32 -H 24 -o tr.clip; test ! -e tr.clip && test ! -e tr.clip.part"
err "video2clip: wrong --width" "is not a whole number of frames: check --width/--height" \
    'video2clip -W 31 -H 24 -o w.clip < raw.rgb'
ok "video2clip: complete windows stay after a truncated stream" \
    "head -c $((7 * FB + 5)) raw.rgb | video2clip -q -W 32 -H 24 --window 3 -o tw; test -f tw_0000.clip && test -f tw_0001.clip && test ! -e tw_0002.clip && test ! -e tw_0002.clip.part"
err "video2clip: empty input" "stdin is empty: no frames" 'video2clip -W 32 -H 24 -o e.clip < /dev/null'
err "video2clip: video shorter than the window" "the video has 12 frames, fewer than --window 20: no clip written" \
    'video2clip -W 32 -H 24 --window 20 -o lw < raw.rgb'
err "video2clip: no size" "give the frame size: --width W --height H" 'video2clip -o x.clip < raw.rgb'
err "video2clip: --stride without --window" "--stride needs --window" 'video2clip -W 32 -H 24 --stride 2 -o x.clip < raw.rgb'
err "video2clip: missing --input" "nope.rgb: no such file" 'video2clip -W 32 -H 24 --input nope.rgb -o x.clip'
err "video2clip: clips beyond the format's limit" "clips of 1048576 frames of 16384 x 16384 are larger than the format's limit" \
    'video2clip -W 16384 -H 16384 --window 1048576 -o big < raw.rgb'
err "video2clip: unwritable output" "nodir/x.clip.part: cannot write" 'video2clip -W 32 -H 24 -o nodir/x.clip < raw.rgb'
if command -v ffmpeg >/dev/null 2>&1; then
    ok "ffmpeg | video2clip (the README's command line)" \
        'ffmpeg -v error -f lavfi -i testsrc=size=96x64:rate=10 -frames:v 15 -vf scale=48:32 -f rawvideo -pix_fmt rgb24 - | video2clip -q -W 48 -H 32 --fps 10 -o ff.clip && test $(wc -c < ff.clip) -eq $((64 + 15 * 48 * 32 * 3))'
    ok "ffmpeg | video2clip --window" \
        'ffmpeg -v error -f lavfi -i testsrc=size=64x48:rate=25 -frames:v 40 -f rawvideo -pix_fmt rgb24 - | video2clip -q -W 64 -H 48 --window 16 --stride 8 -o ffw && test -f ffw_0003.clip && test ! -e ffw_0004.clip'
else
    skip "ffmpeg | video2clip" "ffmpeg is not installed (apt-get install ffmpeg)"
fi

# ---- mkdataset --------------------------------------------------------------------------------
if [ "$HAVE_STB" = 1 ]; then
    D=$W/tree
    mkdir -p "$D/cat/v1" "$D/cat/v2" "$D/cat/v3" "$D/dog" "$D/bird/w"
    for v in v1 v2 v3; do for i in 1 2 3; do gen png "$D/cat/$v/$i.png" 32 24 3 "$i"; done; done
    for c in d_0000 d_0001 e_0000 f; do cp "$W/a.clip" "$D/dog/$c.clip"; done
    cp "$W/a.clip" "$D/bird/w/a.clip"; cp "$W/a.clip" "$D/bird/w/b.clip"; cp "$W/a.clip" "$D/bird/x.clip"
    echo "read me" >"$D/bird/notes.txt"
    out "mkdataset: builds the dataset" "mkdataset: 3 classes, 10 clips in 8 groups (3 converted from images): train" \
        'mkdataset tree ds --val 0.34 --seed 1 2> warn.txt'
    ok "mkdataset: warns about other files" 'grep -q "tree/bird/notes.txt: skipped" warn.txt'
    ok "mkdataset: classes in natural order" 'test "$(cat ds/classes.txt)" = "$(printf "bird\ncat\ndog")"'
    ok "mkdataset: every clip once, on one side" \
        'test $(cat ds/train.csv ds/val.csv | grep -c -v "^path,label$") -eq 10 && test $(cat ds/train.csv ds/val.csv | grep -v "^path,label" | cut -d, -f1 | sort -u | wc -l) -eq 10'
    ok "mkdataset: converted clips, relative to the manifest" \
        'cat ds/train.csv ds/val.csv | grep -q "^clips/cat/v1.clip,1$" && test -f ds/clips/cat/v1.clip'
    ok "mkdataset: no group on both sides (d_0000 with d_0001, w/a with w/b)" \
        'for g in "dog/d_000[01]" "bird/w/[ab]"; do n=$(grep -c "$g.clip" ds/val.csv); test $n -eq 0 -o $n -eq 2 || exit 1; done'
    ok "mkdataset: each class with 2+ groups has val and train clips" \
        'for l in 0 1 2; do grep -q ",$l$" ds/val.csv && grep -q ",$l$" ds/train.csv || exit 1; done'
    ok "mkdataset: the same seed, the same split" \
        'mkdataset -q tree ds2 --val 0.34 --seed 1 2>/dev/null && cmp <(sed "s#ds2/#ds/#" ds2/train.csv) ds/train.csv && cmp ds2/val.csv ds/val.csv'
    ok "mkdataset: --val 0 writes train only" \
        'mkdataset -q tree ds0 --val 0 && test ! -e ds0/val.csv && test $(grep -c -v "^path,label$" ds0/train.csv) -eq 10'
    out "mkdataset --check: a good manifest" "ds/train.csv:" 'mkdataset --check ds/train.csv ds/classes.txt'
    out "mkdataset --check: all readable" "all readable" 'mkdataset --check ds/val.csv ds/classes.txt'
    err "mkdataset --check: unknown label" "bad1.csv: malformed file (line 3: unknown label \"dgo\")" \
        'printf "path,label\nclips/cat/v1.clip,cat\nclips/cat/v2.clip,dgo\n" > ds/bad1.csv && mkdataset --check ds/bad1.csv ds/classes.txt'
    err "mkdataset --check: label out of range" "line 2: label 7 is not a class index (the 3 classes are 0 .. 2)" \
        'printf "path,label\nclips/cat/v1.clip,7\n" > ds/bad2.csv && mkdataset --check ds/bad2.csv ds/classes.txt'
    err "mkdataset --check: duplicate path" "line 3: duplicate path" \
        'printf "clips/cat/v1.clip,1\nclips/cat/v2.clip,1\nclips/cat/v1.clip,1\n" > ds/bad3.csv && mkdataset --check ds/bad3.csv ds/classes.txt'
    err "mkdataset --check: missing clip" "ds/bad4.csv:2: ds/clips/cat/gone.clip: no such file" \
        'printf "clips/cat/v1.clip,1\nclips/cat/gone.clip,1\n" > ds/bad4.csv && mkdataset --check ds/bad4.csv ds/classes.txt'
    err "mkdataset --check: truncated clip" "ds/bad5.csv:1: ds/t.clip: malformed file (truncated" \
        'head -c 500 a.clip > ds/t.clip && printf "t.clip,1\n" > ds/bad5.csv && mkdataset --check ds/bad5.csv ds/classes.txt'
    err "mkdataset --check: duplicate class" "dup.txt: malformed file (line 3: duplicate class name \"a\" (first on line 1))" \
        'printf "a\nb\na\n" > dup.txt && mkdataset --check ds/train.csv dup.txt'
    err "mkdataset --check: missing manifest" "nope.csv: no such file" \
        'mkdataset --check nope.csv ds/classes.txt'
    err "mkdataset: a folder with no images and no clips" "tree2/a/v1: a folder with no images and no clips" \
        'mkdir -p tree2/a/v1 && mkdataset tree2 ds3'
    err "mkdataset: a folder with clips and images" "tree3/a/v1: a folder with both clips and images" \
        'mkdir -p tree3/a/v1 && cp a.clip tree3/a/v1/ && cp fr/f1.png tree3/a/v1/ && mkdataset tree3 ds3'
    err "mkdataset: empty class" "tree4/b: no videos in the class folder" \
        'mkdir -p tree4/a tree4/b && cp a.clip tree4/a/ && mkdataset tree4 ds3'
    err "mkdataset: no classes" "tree5: no class folders" 'mkdir -p tree5 && mkdataset tree5 ds3'
    err "mkdataset: missing root" "nowhere: cannot read the folder" 'mkdataset nowhere ds3'
    err "mkdataset: unwritable OUTDIR" "a.clip/sub: cannot make the folder" 'mkdataset tree a.clip/sub'
    err "mkdataset: a bad clip in the tree" "tree6/a/bad.clip: malformed file" \
        'mkdir -p tree6/a && head -c 100 a.clip > tree6/a/bad.clip && mkdataset tree6 ds3'
    err "mkdataset: a bad frame in the tree" "tree7/a/v/1.png: cannot read the image" \
        'mkdir -p tree7/a/v && echo junk > tree7/a/v/1.png && mkdataset tree7 ds3'

    # ---- mkdataset: groups across classes, folds, a test split (issue 18) ----------------------
    # 16 source videos cut into windows that land in 6 classes (window k of source j in class
    # (j + k) % 6): a source's windows are one group whatever their class, so no source may be
    # in two splits. mkdataset grouped per class before, and 14 of 16 sources were on both sides.
    for j in $(seq -w 1 16); do
        for k in 0 1 2 3 4; do
            c=$(((10#$j + k) % 6)); mkdir -p "$W/src/c$c"; cp "$W/a.clip" "$W/src/c$c/m${j}_000$k.clip"
        done
    done
    # apart DIR SED: no group (SED -E turns a manifest line into it) in two manifests of DIR;
    # prints the groups that are
    apart() {
        local f twice
        twice=$(for f in "$1"/*.csv; do grep -v '^path,label$' "$f" | sed -E "$2" | sort -u; done | sort | uniq -d)
        [ -z "$twice" ] || { echo "in two splits: $twice"; return 1; }
    }
    M16='s#.*/(m[0-9]+)_[0-9]+\.clip,[0-9]+$#\1#'
    out "mkdataset: 16 sources in 6 classes: 16 groups, each in several classes" \
        "mkdataset: 16 of the 16 groups hold clips of several classes; each stays in one split" \
        'mkdataset src s16 --val 0.25 --seed 3'
    ok "mkdataset: one source feeding 6 classes: no source in train and val" "apart s16 '$M16'"
    ok "mkdataset: ... every clip once (80)" \
        'test "$(cat s16/train.csv s16/val.csv | grep -v "^path,label$" | cut -d, -f1 | sort -u | wc -l)" -eq 80 && test "$(cat s16/*.csv | grep -c -v "^path,label$")" -eq 80'
    out "mkdataset --folds 3 --test-share 0.2: test.csv and 3 folds" \
        "s16f/classes.txt s16f/test.csv s16f/fold_1.csv .. s16f/fold_3.csv" 'mkdataset src s16f --folds 3 --test-share 0.2'
    ok "mkdataset --folds: no source in two of test and the folds" "apart s16f '$M16'"
    ok "mkdataset --folds: every clip in exactly one of test and the folds" \
        'test "$(cat s16f/*.csv | grep -v "^path,label$" | cut -d, -f1 | sort | uniq -c | awk "\$1 != 1" | wc -l)" -eq 0 && test "$(cat s16f/*.csv | grep -c -v "^path,label$")" -eq 80 && test ! -e s16f/train.csv'
    ok "mkdataset --folds: the same seed, the same folds; relative paths, none absolute" \
        'mkdataset -q src s16g --folds 3 --test-share 0.2 && for f in test fold_1 fold_2 fold_3; do cmp s16f/$f.csv s16g/$f.csv || exit 1; done && ! grep -q "^/" s16f/*.csv && grep -q "^../src/c" s16f/fold_1.csv'
    ok "mkdataset --folds: written over a train/val dataset, its train.csv and val.csv go" \
        'cp -r s16 s16h && mkdataset -q src s16h --folds 4 && test -f s16h/fold_4.csv && test ! -e s16h/train.csv && test ! -e s16h/val.csv && test ! -e s16h/test.csv'
    ok "mkdataset --folds 2 over 4 folds: fold_3.csv and fold_4.csv go; --val over folds: the folds go" \
        'mkdataset -q src s16h --folds 2 && test -f s16h/fold_2.csv && test ! -e s16h/fold_3.csv && test ! -e s16h/fold_4.csv && mkdataset -q src s16h && test -f s16h/train.csv && test -z "$(ls s16h | grep fold_)"'
    # UCF's names: the group is g<NN> in every class (UCF's own splits keep a group together)
    for cl in Run Jump Swim; do
        mkdir -p "$W/ucf/$cl"
        for g in 01 02 03 04 05 06 07; do for m in 01 02; do cp "$W/a.clip" "$W/ucf/$cl/v_${cl}_g${g}_c$m.clip"; done; done
    done
    out "mkdataset --ucf: v_<Class>_g<NN>_c<MM> -> 7 groups g01 .. g07 across the classes" \
        "3 classes, 42 clips in 7 groups" 'mkdataset ucf u5 --folds 3 --test-share 0.15 --ucf'
    ok "mkdataset --ucf: no group g<NN> in two splits" "apart u5 's#.*_(g[0-9]+)_c[0-9]+\.clip,[0-9]+\$#\\1#'"
    out "mkdataset --group-regex: the same with a pattern of one's own" "3 classes, 42 clips in 7 groups" \
        "mkdataset ucf u6 --folds 3 --group-regex '_(g[0-9]+)_'"
    out "mkdataset: the default groups UCF per class (v_Run_g01 ...): 21 groups" "42 clips in 21 groups" 'mkdataset ucf u7 --folds 3'
    err "mkdataset --group-regex: a name it does not match" 'ucf/Jump/v_Jump_g01_c01.clip: the name "v_Jump_g01_c01" does not match --group-regex' \
        "mkdataset ucf u8 --group-regex '^x(.)'"
    err "mkdataset --group-regex: no (...)" "no (...) to name the group" "mkdataset ucf u8 --group-regex '_g[0-9]+'"
    err "mkdataset --group-regex: not a regular expression" "--group-regex '(g': " "mkdataset ucf u8 --group-regex '(g'"
    err "mkdataset: --val with --folds" "--val and --folds: choose one" 'mkdataset ucf u8 --folds 3 --val 0.2'
    err "mkdataset: --folds 1" "--folds needs an integer from 2 to 100" 'mkdataset ucf u8 --folds 1'
    err "mkdataset: more splits than groups" "7 groups for 9 splits: every split needs one at least" 'mkdataset ucf u8 --ucf --folds 8 --test-share 0.1'
    err "mkdataset: a test share too small for any group" "test.csv would hold no clips: its share 0.01 is too small" \
        'mkdataset ucf u8 --ucf --folds 2 --test-share 0.01'
    # balance: 6 classes of 12 groups of 1 to 3 clips (24 clips a class), 4 folds and a test
    # share of 0.25: each split's count of each class within a group (3 clips) of its target
    for c in 0 1 2 3 4 5; do
        mkdir -p "$W/bal/k$c"
        for g in $(seq 0 11); do for i in $(seq 0 $((g % 3))); do cp "$W/a.clip" "$W/bal/k$c/k${c}g${g}_000$i.clip"; done; done
    done
    ok "mkdataset --folds: balanced by class as far as groups allow (within 3 clips of the share)" \
        'mkdataset -q bal b4 --folds 4 --test-share 0.25 --seed 7 && for f in b4/test.csv b4/fold_[1-4].csv; do
             t=$([ "$f" = b4/test.csv ] && echo 6 || echo 4.5)
             grep -v "^path,label$" "$f" | cut -d, -f2 | sort | uniq -c | awk -v t="$t" "{ d = \$1 - t; if (d > 3 || d < -3) exit 1; n++ } END { exit n != 6 }" || exit 1
         done'
    # a folder holding the tree and the dataset can move: the paths are relative
    ok "mkdataset: a moved dataset folder still works (--check of the moved folds)" \
        'mkdir -p proj && cp -r ucf proj/ && mkdataset -q proj/ucf proj/ds --folds 3 --ucf && mv proj proj2 && for f in proj2/ds/fold_*.csv; do mkdataset -q --check $f proj2/ds/classes.txt || exit 1; done'
fi

# ---- files that are not regular files (issue 15) ----------------------------------------------
# Inputs read by name must be regular files: a FIFO without a writer used to hang clip2png
# --info and mkdataset --check, /dev/zero never ends. Every command runs under timeout, so a
# regression fails (exit status 124) instead of hanging the suite. Outputs are written as
# NAME.part and renamed: a symbolic link, a FIFO or a device at NAME is refused and left as it
# was (as root, a rename over /dev/null or /dev/full would replace the device node).
TO="timeout 20"
mkfifo "$W/fifo" "$W/fifo.clip" "$W/ofifo" "$W/ofifo.clip" "$W/ofifo.png"
echo "the target" >"$W/target.txt"
ln -s target.txt "$W/link.clip" && ln -s target.txt "$W/link.png" && ln -s target.txt "$W/sw_0001.clip"
ln -s target.txt "$W/p.clip.part"
# what must still be there afterwards: the links, the FIFOs, the target's text
intact() { test -L link.clip && test -L link.png && test -L sw_0001.clip && test -p ofifo.clip && test -p ofifo.png && [ "$(cat target.txt)" = "the target" ]; }
MKNOD=0 # as root: a device node of our own in the work folder (c 1 3 is /dev/null's)
if [ "$(id -u)" = 0 ] && mknod "$W/null.dev" c 1 3 2>/dev/null; then MKNOD=1; fi

err "video2clip --input: a FIFO is refused" "fifo: not a regular file (a FIFO)" "$TO video2clip -W 32 -H 24 --input fifo -o x.clip"
err "video2clip --input: /dev/zero is refused" "/dev/zero: not a regular file (a character device)" "$TO video2clip -W 32 -H 24 --input /dev/zero -o x.clip"
err "video2clip --input: a folder is refused" "fr2: a folder, not a file" "mkdir -p fr2 && $TO video2clip -W 32 -H 24 --input fr2 -o x.clip"
ok "video2clip: a FIFO on stdin still works" "(cat raw.rgb > fifo &) && $TO video2clip -q -W 32 -H 24 -o sf.clip < fifo && cmp sf.clip a.clip"
ok "video2clip: a regular file at -o is replaced" "video2clip -q -W 32 -H 24 -o sf.clip < raw.rgb && video2clip -q -W 32 -H 24 -o sf.clip < raw.rgb && cmp sf.clip a.clip"
err "video2clip -o: a symbolic link is refused" "link.clip: not a regular file (a symbolic link): refusing to replace it" "$TO video2clip -W 32 -H 24 -o link.clip < raw.rgb"
err "video2clip -o: a FIFO is refused" "ofifo.clip: not a regular file (a FIFO): refusing to replace it" "$TO video2clip -W 32 -H 24 -o ofifo.clip < raw.rgb"
err "video2clip -o: a symbolic link at OUT.part is refused" "p.clip.part: not a regular file (a symbolic link)" "$TO video2clip -W 32 -H 24 -o p.clip < raw.rgb"
err "video2clip --window: a symbolic link among the windows is refused" "sw_0001.clip: not a regular file (a symbolic link)" "$TO video2clip -W 32 -H 24 --window 5 --stride 3 -o sw < raw.rgb"
ok "video2clip: links, FIFOs and the link's target untouched" 'intact && test ! -e p.clip && test ! -e link.clip.part'
for dev in /dev/null /dev/full; do
    err "video2clip -o $dev is refused" "$dev: not a regular file (a character device)" "$TO video2clip -W 32 -H 24 -o $dev < raw.rgb"
    ok "video2clip -o $dev: still a device node" "test -c $dev"
done
if [ "$MKNOD" = 1 ]; then
    err "video2clip -o a device node (root)" "null.dev: not a regular file (a character device)" "$TO video2clip -W 32 -H 24 -o null.dev < raw.rgb"
    ok "video2clip: the device node stays one (root)" 'test -c null.dev'
    rm -f "$W/null.dev"
fi
if [ "$HAVE_STB" = 1 ]; then
    err "clip2png --info: a FIFO is refused" "fifo.clip: not a regular file (a FIFO)" "$TO clip2png fifo.clip --info"
    err "clip2png --info: /dev/null is refused" "/dev/null: not a regular file (a character device)" "$TO clip2png /dev/null --info"
    err "clip2png --info: /dev/zero is refused" "/dev/zero: not a regular file (a character device)" "$TO clip2png /dev/zero --info"
    err "clip2png -o: a symbolic link is refused" "link.png: not a regular file (a symbolic link)" "$TO clip2png a.clip -o link.png"
    err "clip2png -o: a FIFO is refused" "ofifo.png: not a regular file (a FIFO)" "$TO clip2png a.clip -o ofifo.png"
    err "clip2png -o /dev/full is refused" "/dev/full: not a regular file (a character device)" "$TO clip2png a.clip -o /dev/full"
    err "clip2png --split: a symbolic link among the frames is refused" "sl0003.png: not a regular file (a symbolic link)" \
        "ln -s target.txt sl0003.png && $TO clip2png a.clip --split sl"
    ok "clip2png: a regular file at -o is replaced, no .part left" 'clip2png -q a.clip -o sheet.png --cols 4 && clip2png -q a.clip -o sheet.png && test ! -e sheet.png.part'
    err "frames2clip: a FIFO named like an image is refused" "fifo.png: not a regular file (a FIFO)" "mkfifo fifo.png && $TO frames2clip -o x.clip fifo.png"
    err "frames2clip: a FIFO among a folder's frames is refused" "ff/f2.png: not a regular file (a FIFO)" \
        "mkdir -p ff && cp fr/f1.png ff/ && mkfifo ff/f2.png && $TO frames2clip -o x.clip ff"
    err "frames2clip: @FIFO is refused" "fifo: not a regular file (a FIFO)" "$TO frames2clip -o x.clip @fifo"
    err "frames2clip: @/dev/zero is refused" "/dev/zero: not a regular file (a character device)" "$TO frames2clip -o x.clip @/dev/zero"
    err "frames2clip: a list naming a FIFO names the line" "fl.txt:2: fifo.png: not a regular file (a FIFO)" \
        "printf 'fr/f1.png\nfifo.png\n' > fl.txt && $TO frames2clip -o x.clip @fl.txt"
    err "frames2clip: a list naming /dev/zero names the line" "dl.txt:1: /dev/zero: not a regular file (a character device)" \
        "printf '/dev/zero\n' > dl.txt && $TO frames2clip -o x.clip @dl.txt"
    err "frames2clip: a list line longer than a path" "ll.txt:1: a line longer than 4094 characters" \
        "head -c 5000 /dev/zero | tr '\\0' a > ll.txt && $TO frames2clip -o x.clip @ll.txt"
    err "frames2clip -o: a symbolic link is refused" "link.clip: not a regular file (a symbolic link)" "$TO frames2clip -o link.clip fr"
    err "frames2clip -o: a FIFO is refused" "ofifo.clip: not a regular file (a FIFO)" "$TO frames2clip -o ofifo.clip fr"
    err "frames2clip -o /dev/null is refused" "/dev/null: not a regular file (a character device)" "$TO frames2clip -o /dev/null fr"
    ok "frames2clip, clip2png: links, FIFOs, the target and /dev/null untouched" 'intact && test -c /dev/null && test -c /dev/full'
    # mkdataset --check: the manifest, the class file and the clips it names
    err "mkdataset --check: a FIFO manifest is refused" "fifo: not a regular file (a FIFO)" "$TO mkdataset --check fifo ds/classes.txt"
    err "mkdataset --check: a FIFO class file is refused" "fifo: not a regular file (a FIFO)" "$TO mkdataset --check ds/train.csv fifo"
    err "mkdataset --check: /dev/null classes are refused" "/dev/null: not a regular file (a character device)" "$TO mkdataset --check ds/train.csv /dev/null"
    err "mkdataset --check: /dev/zero as the manifest is refused" "/dev/zero: not a regular file (a character device)" "$TO mkdataset --check /dev/zero ds/classes.txt"
    err "mkdataset --check: a FIFO clip names the line" "ds/bad6.csv:2: ds/f.clip: not a regular file (a FIFO)" \
        "mkfifo ds/f.clip && printf 'path,label\nf.clip,1\n' > ds/bad6.csv && $TO mkdataset --check ds/bad6.csv ds/classes.txt"
    err "mkdataset --check: a class file shorter than the labels names it and K" "the 3 classes are 0 .. 2)) (the classes of ds/classes.txt)" \
        'mkdataset --check ds/bad2.csv ds/classes.txt'
    # mkdataset: a FIFO in the tree; outputs that are not regular files
    err "mkdataset: a FIFO named .clip in the tree is refused" "tree8/a/x.clip: not a regular file (a FIFO)" \
        "mkdir -p tree8/a && mkfifo tree8/a/x.clip && $TO mkdataset tree8 ds8"
    err "mkdataset: a FIFO among a video's frames is refused" "tree9/a/v/2.png: not a regular file (a FIFO)" \
        "mkdir -p tree9/a/v && cp fr/f1.png tree9/a/v/1.png && mkfifo tree9/a/v/2.png && $TO mkdataset tree9 ds9"
    err "mkdataset: a symbolic link at OUTDIR/train.csv is refused before converting" "ds10/train.csv: not a regular file (a symbolic link)" \
        "mkdir -p ds10 && ln -s ../target.txt ds10/train.csv && $TO mkdataset tree ds10"
    ok "mkdataset: nothing converted, the link untouched" 'test ! -e ds10/clips && test -L ds10/train.csv && [ "$(cat target.txt)" = "the target" ]'
    err "mkdataset --val 0: a FIFO at val.csv is refused, not removed" "ds11/val.csv: not a regular file (a FIFO)" \
        "mkdir -p ds11 && mkfifo ds11/val.csv && $TO mkdataset -q tree ds11 --val 0"
    ok "mkdataset: the FIFO at val.csv is still there" 'test -p ds11/val.csv'
    ok "mkdataset: the manifests are renamed into place (no .part left)" 'mkdataset -q tree ds12 --val 0.34 2>/dev/null && test -f ds12/train.csv && test -f ds12/classes.txt && test -z "$(find ds12 -name "*.part")"'
    # a path over 500 characters keeps the reason (the library's messages hold 512 bytes)
    LONGD=$(printf 'd%.0s' $(seq 200))
    LONGD="long/$LONGD/$LONGD/$LONGD"
    mkdir -p "$W/$LONGD"
    head -c 1000 "$W/a.clip" >"$W/$LONGD/t.clip"
    printf 'path,label\nt.clip,1\n' >"$W/$LONGD/m.csv"
    printf 'path,label\nt.clip,9\n' >"$W/$LONGD/k.csv"
    err "clip2png: a 600-character path keeps the reason" "t.clip: malformed file (truncated: the header describes" "clip2png $LONGD/t.clip --info"
    err "mkdataset --check: a 600-character path keeps the reason" "t.clip: malformed file (truncated" "mkdataset --check $LONGD/m.csv ds/classes.txt"
    err "mkdataset --check: a 600-character path keeps K" "the 3 classes are 0 .. 2)) (the classes of ds/classes.txt)" "mkdataset --check $LONGD/k.csv ds/classes.txt"
fi
# /dev/null and /dev/full must still be device nodes; as root, put them back if a regression
# replaced them, so the machine stays usable
for dev in "/dev/null 3" "/dev/full 7"; do
    set -- $dev
    if test -c "$1"; then pass "$1 is still a character device"; else
        fail "$1 is no longer a character device" "a tool replaced it"
        if [ "$(id -u)" = 0 ]; then rm -f "$1" && mknod -m 666 "$1" c 1 "$2"; fi
    fi
done

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
