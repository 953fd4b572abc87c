/*
 * JPEG decoding with libjpeg-turbo's decoder (mozjpeg-sys builds it from source), set up as
 * Pillow's JpegDecode.c sets it up: libjpeg's defaults (ISLOW IDCT, fancy upsampling), output
 * in the stream's own colour model (grey, RGB, or CMYK with YCCK converted by libjpeg).
 * Errors return to the caller through setjmp/longjmp with libjpeg's message; warnings are
 * ignored as Pillow ignores them, except the end of data inside the image (a truncated file),
 * which Pillow refuses too.
 */

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jpeglib.h"
#include "jerror.h"

/* What lcl_jpeg_decode reports; the Rust side (image/jpeg.rs) mirrors these values. */
enum {
    LCL_JPEG_OK = 0,
    LCL_JPEG_ERROR = 1,
    LCL_JPEG_TRUNCATED = 2,
    LCL_JPEG_TOO_LARGE = 3,
    LCL_JPEG_UNSUPPORTED = 4,
};

/* A decoded image: `components` bytes per pixel (1 grey, 3 RGB, 4 CMYK as stored). */
typedef struct {
    unsigned int width;
    unsigned int height;
    unsigned int components;
    unsigned char *pixels;
    char message[JMSG_LENGTH_MAX];
} lcl_jpeg_image;

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf escape;
    int truncated;
} error_state;

static void on_error(j_common_ptr cinfo) {
    error_state *state = (error_state *)cinfo->err;
    longjmp(state->escape, 1);
}

static void on_message(j_common_ptr cinfo, int level) {
    error_state *state = (error_state *)cinfo->err;
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
        state->truncated = 1;
    }
}

static void quiet(j_common_ptr cinfo) { (void)cinfo; }

/* Decodes `size` bytes at `data`. Images of more than `max_pixels` pixels are refused before
 * any pixel buffer is allocated; libjpeg's own working memory is capped at `max_memory`. */
int lcl_jpeg_decode(const unsigned char *data, unsigned long size, unsigned long max_pixels,
                    unsigned long max_memory, lcl_jpeg_image *out) {
    struct jpeg_decompress_struct cinfo;
    error_state err;
    /* volatile: read after a longjmp */
    unsigned char *volatile pixels = NULL;

    memset(out, 0, sizeof(*out));
    memset(&cinfo, 0, sizeof(cinfo));
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error;
    err.pub.emit_message = on_message;
    err.pub.output_message = quiet;
    err.truncated = 0;
    if (setjmp(err.escape)) {
        (*cinfo.err->format_message)((j_common_ptr)&cinfo, out->message);
        free(pixels);
        jpeg_destroy_decompress(&cinfo);
        return LCL_JPEG_ERROR;
    }
    jpeg_create_decompress(&cinfo);
    cinfo.mem->max_memory_to_use = (long)max_memory;
    jpeg_mem_src(&cinfo, data, size);
    jpeg_read_header(&cinfo, TRUE);
    if (err.truncated) {
        jpeg_destroy_decompress(&cinfo);
        return LCL_JPEG_TRUNCATED;
    }

    switch (cinfo.num_components) {
    case 1:
        cinfo.out_color_space = JCS_GRAYSCALE;
        break;
    case 3:
        cinfo.out_color_space = JCS_RGB;
        break;
    case 4:
        cinfo.out_color_space = JCS_CMYK;
        break;
    default:
        snprintf(out->message, sizeof(out->message), "%d colour components", cinfo.num_components);
        jpeg_destroy_decompress(&cinfo);
        return LCL_JPEG_UNSUPPORTED;
    }
    out->width = cinfo.image_width;
    out->height = cinfo.image_height;
    if ((unsigned long long)cinfo.image_width * cinfo.image_height > max_pixels) {
        jpeg_destroy_decompress(&cinfo);
        return LCL_JPEG_TOO_LARGE;
    }

    jpeg_start_decompress(&cinfo);
    if (err.truncated) {
        jpeg_destroy_decompress(&cinfo);
        return LCL_JPEG_TRUNCATED;
    }
    out->width = cinfo.output_width;
    out->height = cinfo.output_height;
    out->components = (unsigned int)cinfo.output_components;
    size_t row = (size_t)cinfo.output_width * cinfo.output_components;
    pixels = malloc(row * cinfo.output_height + 1);
    if (pixels == NULL) {
        snprintf(out->message, sizeof(out->message), "cannot allocate %zu bytes",
                 row * cinfo.output_height);
        jpeg_destroy_decompress(&cinfo);
        return LCL_JPEG_ERROR;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW line = pixels + row * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &line, 1);
        if (err.truncated) {
            break;
        }
    }
    if (err.truncated) {
        free(pixels);
        jpeg_destroy_decompress(&cinfo);
        return LCL_JPEG_TRUNCATED;
    }
    /* Pillow stops after the last scanline too: what follows the image is not read. */
    jpeg_destroy_decompress(&cinfo);
    out->pixels = pixels;
    return LCL_JPEG_OK;
}

/* Frees what lcl_jpeg_decode allocated. */
void lcl_jpeg_free(lcl_jpeg_image *image) {
    free(image->pixels);
    image->pixels = NULL;
}
