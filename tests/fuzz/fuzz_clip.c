/* fuzz_clip.c - libFuzzer harness for the clip reader.

   The input is a clip file. It is read in memory (tsf_clip_view) and from a real file
   (tsf_clip_open, a few frames at a time, and tsf_clip_load, whole), and every clip that
   opens is sampled by the loader with a training view and every test view, for three
   sampling recipes. Properties: the three readers agree on whether the file is valid and on
   its header; the samples from memory and from the file are bit-identical; every sample is
   finite (pixels are bytes). */
#include "fuzz_common.h"

#include <unistd.h> /* close, unlink */

#define FUZZ_MAX_X (3 * 6 * 12 * 12)

/* Sample a clip with recipe r, every view; out receives the samples, one after the other
   (at most FUZZ_MAX_X floats each). Returns the number of samples taken. */
static int fuzz_sample(tsf_clip *clip, int r, float *out, int max_samples) {
    tsf_sample_opts o;
    tsf_rng rng;
    int v, n = 0, views;
    size_t i, len;
    memset(&o, 0, sizeof o);
    if (r == 0) { /* dense, Kinetics-like */
        o.frames = 4, o.size = 8, o.stride = 2, o.test_clips = 2;
    } else if (r == 1) { /* segment, SSv2-like */
        o.frames = 3, o.size = 6, o.sampling = TSF_SAMPLE_SEGMENT, o.inv_uniform = 1;
        o.no_flip = 1, o.bgr = clip->h.C == 3;
    } else { /* dense at a target rate, one centre crop */
        o.frames = 6, o.size = 12, o.stride = 3, o.target_fps = 7.5f, o.test_crops = 1;
        o.scale_min = 12, o.scale_max = 20;
    }
    if (tsf_sample_opts_resolve(&o) != TSF_OK) fuzz_fail("recipe does not resolve");
    views = tsf_sample_num_views(&o);
    len = (size_t)(clip->h.C < 3 ? clip->h.C : 3) * o.frames * o.size * o.size;
    tsf_rng_seed(&rng, 7u + (unsigned)r);
    for (v = -1; v < views && n < max_samples; v++) {
        float *x = out + (size_t)n * FUZZ_MAX_X;
        tsf_status st = tsf_clip_sample(x, clip, &o, v < 0 ? &rng : NULL, v);
        if (st != TSF_OK) {
            if (clip->h.C <= 3 && st != TSF_ERR_IO) fuzz_fail("sampling a valid clip failed");
            continue;
        }
        for (i = 0; i < len; i++)
            if (!(x[i] == x[i] && x[i] < 1e30f && x[i] > -1e30f)) fuzz_fail("non-finite sample");
        n++;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static float mem_x[16 * FUZZ_MAX_X], file_x[16 * FUZZ_MAX_X];
    char path[] = "/tmp/tsf_fuzz_clip_XXXXXX";
    tsf_clip clip, fclip;
    tsf_clip_header h;
    tsf_error err;
    tsf_status st_mem, st_file, st_load;
    int fd, r;

    err.msg[0] = 0;
    (void)tsf_clip_header_decode(&h, data, size, &err);
    fuzz_check_msg(&err);

    st_mem = tsf_clip_view(&clip, data, size, &err);
    fuzz_check_msg(&err);

    /* the same bytes as a file */
    fd = mkstemp(path);
    if (fd < 0) return 0;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd), unlink(path);
        return 0;
    }
    close(fd);
    st_file = tsf_clip_open(&fclip, path, NULL, &err);
    fuzz_check_msg(&err);
    if ((st_mem == TSF_OK) != (st_file == TSF_OK)) fuzz_fail("view and open disagree");
    if (st_file == TSF_OK && memcmp(&fclip.h, &clip.h, sizeof h) != 0)
        fuzz_fail("view and open read different headers");

    if (st_mem == TSF_OK && st_file == TSF_OK) {
        size_t fb = tsf_clip_frame_bytes(&clip.h);
        unsigned char *frames = (unsigned char *)malloc(fb * 2);
        if (frames) { /* the last frame, and a range check */
            if (tsf_clip_read_frames(&fclip, clip.h.T - 1, 1, frames) != TSF_OK ||
                memcmp(frames, clip.pixels + (size_t)(clip.h.T - 1) * fb, fb) != 0)
                fuzz_fail("reading the last frame from the file");
            if (tsf_clip_read_frames(&fclip, clip.h.T, 1, frames) == TSF_OK)
                fuzz_fail("read a frame past the end");
            free(frames);
        }
        for (r = 0; r < 3; r++) {
            int a, b;
            memset(mem_x, 0, sizeof mem_x), memset(file_x, 0, sizeof file_x);
            a = fuzz_sample(&clip, r, mem_x, 16), b = fuzz_sample(&fclip, r, file_x, 16);
            if (a != b || memcmp(mem_x, file_x, (size_t)a * FUZZ_MAX_X * sizeof(float)) != 0)
                fuzz_fail("samples from memory and from the file differ");
        }
    }
    tsf_clip_close(&fclip);

    st_load = tsf_clip_load(&fclip, path, NULL, &err);
    fuzz_check_msg(&err);
    if ((st_load == TSF_OK) != (st_mem == TSF_OK)) fuzz_fail("view and load disagree");
    if (st_load == TSF_OK &&
        memcmp(fclip.pixels, clip.pixels, tsf_clip_frame_bytes(&clip.h) * (size_t)clip.h.T) != 0)
        fuzz_fail("load read other pixels");
    tsf_clip_close(&fclip);
    tsf_clip_close(&clip);
    unlink(path);
    return 0;
}
