// Large-volume check of a FloatAdder under Verilator, one operand pair per cycle, against
// a C reference with T3's NaN policy. Built and run by verif/fp_exhaustive.py.
//
// Compile-time: -DFMT_FP16, -DFMT_BF16 or -DFMT_FP32; -DLATENCY=<cycles>; model class Vdut.
// Run:
//   ./vfp all a_lo a_hi       every pair with a in [a_lo, a_hi), b in [0, 65536) (16-bit only)
//   ./vfp random seed count   `count` random pairs (mix as verif/fp_vectors.random_pairs:
//                             uniform bits, close exponents, subnormal-heavy)
// Prints "pairs=N checked=N mismatches=M" (and the first mismatches); exit 1 on mismatch.
//
// Reference: fp16 operands are added exactly in double (the sum needs at most 40
// significand bits) and rounded once to _Float16 (RNE). bf16 operands are added in float
// (RNE; rounding twice, float then bf16, is exact since 24 >= 2 * 8 + 2) and rounded to
// bf16 with integer RNE. fp32 operands are added in double and rounded to float (exact
// for the same reason: 53 >= 2 * 24 + 2). Every NaN becomes the canonical quiet NaN.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cmath>

#include "verilated.h"
#include "Vdut.h"       // verilator --prefix Vdut

#if defined(FMT_FP16)
enum { WIDTH = 16, MAN = 10 };
#elif defined(FMT_BF16)
enum { WIDTH = 16, MAN = 7 };
#elif defined(FMT_FP32)
enum { WIDTH = 32, MAN = 23 };
#else
#error "define FMT_FP16, FMT_BF16 or FMT_FP32"
#endif
enum { EXP_MAX = (1 << (WIDTH - 1 - MAN)) - 1 };

static inline uint32_t reference(uint32_t a, uint32_t b) {
#if defined(FMT_FP16)
    uint16_t ha = a, hb = b, bits;
    _Float16 x, y;
    memcpy(&x, &ha, 2);
    memcpy(&y, &hb, 2);
    _Float16 r = (_Float16)((double)x + (double)y);
    memcpy(&bits, &r, 2);
    if ((bits & 0x7c00) == 0x7c00 && (bits & 0x03ff)) bits = 0x7e00;
    return bits;
#elif defined(FMT_BF16)
    uint32_t ua = a << 16, ub = b << 16, us;
    float x, y;
    memcpy(&x, &ua, 4);
    memcpy(&y, &ub, 4);
    float s = x + y;
    if (std::isnan(s)) return 0x7fc0;
    memcpy(&us, &s, 4);
    return (us + 0x7fffu + ((us >> 16) & 1u)) >> 16;
#else
    float x, y, s;
    uint32_t us;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    s = (float)((double)x + (double)y);
    if (std::isnan(s)) return 0x7fc00000u;
    memcpy(&us, &s, 4);
    return us;
#endif
}

static uint64_t rng_state;
static inline uint64_t rnd() {                 // splitmix64
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static inline uint32_t pack(uint64_t sign, int64_t exp, uint64_t man) {
    return (uint32_t)(((sign & 1) << (WIDTH - 1)) | ((uint64_t)exp << MAN) | (man & ((1u << MAN) - 1)));
}
static void random_pair(uint32_t* a, uint32_t* b) {
    const uint64_t mask = (WIDTH == 32) ? 0xffffffffull : 0xffffull;
    switch (rnd() % 3) {
    case 0:                                    // uniform bit patterns
        *a = rnd() & mask;
        *b = rnd() & mask;
        break;
    case 1: {                                  // close exponents: cancellation, rounding
        int64_t ea = 1 + rnd() % (EXP_MAX - 1);
        int64_t d = (rnd() % 10 < 7) ? (int64_t)(rnd() % 7) - 3
                                     : (int64_t)(rnd() % (2 * MAN + 13)) - (MAN + 6);
        int64_t eb = ea + d;
        eb = eb < 0 ? 0 : (eb > EXP_MAX - 1 ? EXP_MAX - 1 : eb);
        *a = pack(rnd(), ea, rnd());
        *b = pack(rnd(), eb, rnd());
        if (ea == eb && (rnd() & 1)) {         // share the top mantissa bits too
            unsigned keep = rnd() % (MAN + 1);
            uint32_t m = keep ? (((1u << keep) - 1) << (MAN - keep)) : 0;
            *b = (*b & ~m) | (*a & m);
        }
        break;
    }
    default:                                   // subnormal-heavy
        *a = pack(rnd(), rnd() % 3, rnd());
        *b = pack(rnd(), rnd() % 3, rnd());
    }
}

int main(int argc, char** argv) {
    bool all = argc == 4 && !strcmp(argv[1], "all") && WIDTH == 16;
    bool random = argc == 4 && !strcmp(argv[1], "random");
    if (!all && !random) {
        fprintf(stderr, "usage: %s all A_LO A_HI (16-bit formats) | random SEED COUNT\n", argv[0]);
        return 2;
    }
    const uint64_t p1 = strtoull(argv[2], nullptr, 0), p2 = strtoull(argv[3], nullptr, 0);
    VerilatedContext ctx;
    Vdut top(&ctx);
    auto cycle = [&top]() { top.clk = 0; top.eval(); top.clk = 1; top.eval(); };
    top.rst = 1;
    top.valid = 0;
    cycle();
    cycle();
    top.rst = 0;

    // Input i is set before edge i and appears after edge i + LATENCY - 1; valid stays
    // high, so input index == edge index until the drain.
    const unsigned R = LATENCY + 1;
    uint32_t want[R], in_a[R], in_b[R];
    uint64_t edges = 0, sent = 0, checked = 0, bad = 0;
    auto step = [&]() {
        cycle();
        int64_t i = (int64_t)edges - (LATENCY - 1);         // input now at the output
        edges++;
        if (i < 0 || (uint64_t)i >= sent) return;
        unsigned k = i % R;
        if (!top.result_valid || top.result != want[k]) {
            if (bad < 10)
                printf("mismatch: %08x + %08x -> got %08x (valid %d), want %08x\n",
                       in_a[k], in_b[k], (unsigned)top.result, (int)top.result_valid, want[k]);
            bad++;
        }
        checked++;
    };
    auto push = [&](uint32_t a, uint32_t b) {
        unsigned k = sent % R;
        want[k] = reference(a, b);
        in_a[k] = a;
        in_b[k] = b;
        top.a = a;
        top.b = b;
        top.valid = 1;
        sent++;
        step();
    };
    if (all) {
        for (uint64_t a = p1; a < p2; a++)
            for (uint32_t b = 0; b < 65536; b++) push(a, b);
    } else {
        rng_state = p1;
        for (uint64_t n = 0; n < p2; n++) {
            uint32_t a, b;
            random_pair(&a, &b);
            push(a, b);
        }
    }
    top.valid = 0;
    for (int t = 0; t < LATENCY; t++) step();               // drain the pipeline
    printf("pairs=%llu checked=%llu mismatches=%llu\n", (unsigned long long)sent,
           (unsigned long long)checked, (unsigned long long)bad);
    return (bad || checked != sent) ? 1 : 0;
}
