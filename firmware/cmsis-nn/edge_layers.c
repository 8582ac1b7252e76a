/*
 * The edge model's 13 ops (as `cargo run --release --bin layers` prints them) run through
 * ARM's CMSIS-NN int8 kernels on the same Cortex-M4, each between two calls of
 * `fer_mark`, so that the same QEMU plugin counts the same way as for our engine. Tensors
 * are NHWC and filters OHWI, as CMSIS-NN takes them; their values do not change the
 * instruction counts of these kernels (no data-dependent paths), so they are a fixed
 * pattern. Per-channel requantization, like ours.
 */
#include <stdint.h>
#include <string.h>

#include "arm_nnfunctions.h"

/* Output through semihosting SYS_WRITE0, with no C library I/O. */
static char line[160];
static int len;
static void put(const char *s) { while (*s && len < (int)sizeof line - 1) line[len++] = *s++; }
static void put_int(long v) {
    char d[24];
    int n = 0;
    if (v < 0) { put("-"); v = -v; }
    do { d[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n) { char c[2] = {d[--n], 0}; put(c); }
}
static void flush(void) {
    put("\n");
    line[len] = 0;
    register uint32_t r0 __asm__("r0") = 0x04;
    register const char *r1 __asm__("r1") = line;
    __asm__ volatile("bkpt 0xab" : : "r"(r0), "r"(r1) : "memory");
    len = 0;
}

__attribute__((noinline, used)) void fer_mark(uint32_t i) { __asm__ volatile("" : : "r"(i) : "memory"); }

#define MAX_ACT (48 * 48 * 16)
#define MAX_FILTER (3 * 3 * 64 * 128)
#define MAX_CH 128

static int8_t act_a[MAX_ACT], act_b[MAX_ACT];
static int8_t filter[MAX_FILTER];
static int32_t bias[MAX_CH], mult[MAX_CH], shift[MAX_CH];
static int16_t scratch[8 * 1024];

enum kind { CONV, MAXPOOL, DEPTHWISE, GLOBALPOOL, DENSE };
struct op { enum kind kind; int c, h, w, co, k; };

static const struct op OPS[] = {
    {CONV, 1, 48, 48, 16, 3},   {MAXPOOL, 16, 48, 48, 16, 2}, {CONV, 16, 24, 24, 32, 3},
    {CONV, 32, 24, 24, 32, 3},  {MAXPOOL, 32, 24, 24, 32, 2}, {CONV, 32, 12, 12, 64, 3},
    {CONV, 64, 12, 12, 64, 3},  {MAXPOOL, 64, 12, 12, 64, 2}, {CONV, 64, 6, 6, 128, 3},
    {DEPTHWISE, 128, 6, 6, 128, 3}, {CONV, 128, 6, 6, 128, 1}, {GLOBALPOOL, 128, 6, 6, 128, 6},
    {DENSE, 128, 1, 1, 7, 1},
};
#define N_OPS (int)(sizeof OPS / sizeof OPS[0])

static int run(const struct op *o, const int8_t *x, int8_t *y) {
    cmsis_nn_context ctx = {scratch, sizeof scratch};
    cmsis_nn_dims in = {1, o->h, o->w, o->c};
    cmsis_nn_per_channel_quant_params q = {mult, shift};
    cmsis_nn_activation relu = {-128, 127};
    int pad = o->k / 2;
    switch (o->kind) {
    case CONV: {
        cmsis_nn_conv_params p = {128, -128, {1, 1}, {pad, pad}, {1, 1}, relu};
        cmsis_nn_dims f = {o->co, o->k, o->k, o->c}, b = {1, 1, 1, o->co}, out = {1, o->h, o->w, o->co};
        if (arm_convolve_wrapper_s8_get_buffer_size(&p, &in, &f, &out) > (int32_t)sizeof scratch) return -2;
        return arm_convolve_wrapper_s8(&ctx, &p, &q, &in, x, &f, filter, &b, bias, &out, y);
    }
    case DEPTHWISE: {
        cmsis_nn_dw_conv_params p = {128, -128, 1, {1, 1}, {pad, pad}, {1, 1}, relu};
        cmsis_nn_dims f = {1, o->k, o->k, o->co}, b = {1, 1, 1, o->co}, out = {1, o->h, o->w, o->co};
        if (arm_depthwise_conv_wrapper_s8_get_buffer_size(&p, &in, &f, &out) > (int32_t)sizeof scratch) return -2;
        return arm_depthwise_conv_wrapper_s8(&ctx, &p, &q, &in, x, &f, filter, &b, bias, &out, y);
    }
    case MAXPOOL: {
        cmsis_nn_pool_params p = {{2, 2}, {0, 0}, relu};
        cmsis_nn_dims f = {1, 2, 2, 1}, out = {1, o->h / 2, o->w / 2, o->c};
        return arm_max_pool_s8(&ctx, &p, &in, x, &f, &out, y);
    }
    case GLOBALPOOL: {
        cmsis_nn_pool_params p = {{1, 1}, {0, 0}, relu};
        cmsis_nn_dims f = {1, o->h, o->w, 1}, out = {1, 1, 1, o->c};
        if (arm_avgpool_s8_get_buffer_size(1, o->c) > (int32_t)sizeof scratch) return -2;
        return arm_avgpool_s8(&ctx, &p, &in, x, &f, &out, y);
    }
    case DENSE: {
        cmsis_nn_fc_params p = {128, 0, -128, relu};
        cmsis_nn_per_tensor_quant_params tq = {mult[0], shift[0]};
        cmsis_nn_dims inf = {1, 1, 1, o->c}, f = {o->c, 1, 1, o->co}, b = {1, 1, 1, o->co}, out = {1, 1, 1, o->co};
        return arm_fully_connected_s8(&ctx, &p, &tq, &inf, x, &f, filter, &b, bias, &out, y);
    }
    }
    return -1;
}

int main(void) {
    for (int i = 0; i < MAX_ACT; i++) act_a[i] = (int8_t)((i * 37) & 0xff);
    for (int i = 0; i < MAX_FILTER; i++) filter[i] = (int8_t)((i * 11 + 3) & 0xff);
    for (int i = 0; i < MAX_CH; i++) {
        bias[i] = i * 17 - 1000;
        mult[i] = 1518500250 + i * 1000;
        shift[i] = -8;
    }
    static const char *names[] = {"Conv", "MaxPool", "DepthwiseConv", "GlobalAvgPool", "Dense"};
    for (int i = 0; i < N_OPS; i++) {
        const struct op *o = &OPS[i];
        long macs = o->kind == CONV ? (long)o->co * o->h * o->w * o->k * o->k * o->c
                  : o->kind == DEPTHWISE ? (long)o->c * o->h * o->w * o->k * o->k
                  : o->kind == DENSE ? (long)o->c * o->co : 0;
        put("op "); put_int(i); put(" "); put(names[o->kind]); put(" ");
        put_int(o->c); put("x"); put_int(o->h); put("x"); put_int(o->w);
        put(" k"); put_int(o->k); put("x"); put_int(o->k); put(" macs "); put_int(macs); flush();
    }
    int8_t *x = act_a, *y = act_b;
    fer_mark(0);
    for (int i = 0; i < N_OPS; i++) {
        int s = run(&OPS[i], x, y);
        fer_mark(i + 1);
        if (s != 0) {
            put("op "); put_int(i); put(": CMSIS-NN status "); put_int(s); flush();
            return 1;
        }
        int8_t *t = x; x = y; y = t;
    }
    put("ops: "); put_int(N_OPS); put(" (CMSIS-NN)"); flush();
    return 0;
}
