// usconv CuPy backend: the unit-scaled conv1d written from scratch (no cuDNN/cuBLAS).
// One thread per output element, sequential fixed-order loops: deterministic, no atomics.
// S: storage type of one real part (__half, __nv_bfloat16, float, double);
// CPLX: interleaved (re, im) parts; accumulation in Acc<S> (float for 16-bit and float32,
// double for float64). Padding modes are index maps (SPEC §2); no padded copy is made.
// The scale multiplies one factor of each product as the compute type (see load_scaled).
// HIP-compatible except for the 16-bit headers (guarded below).
#if defined(__HIPCC__)
#include <hip/hip_fp16.h>
#include <hip/hip_bf16.h>
typedef __hip_bfloat16 bf16_t;
typedef __hip_bfloat162 bf162_t;
#else
#include <cuda_fp16.h>
#include <cuda_bf16.h>
typedef __nv_bfloat16 bf16_t;
typedef __nv_bfloat162 bf162_t;
#endif

template <typename S> struct Acc { typedef float type; };
template <> struct Acc<double> { typedef double type; };

__device__ __forceinline__ float to_acc(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_acc(bf16_t v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_acc(float v) { return v; }
__device__ __forceinline__ double to_acc(double v) { return v; }

template <typename S> __device__ __forceinline__ S from_acc(typename Acc<S>::type v);
template <> __device__ __forceinline__ __half from_acc<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ bf16_t from_acc<bf16_t>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __forceinline__ float from_acc<float>(float v) { return v; }
template <> __device__ __forceinline__ double from_acc<double>(double v) { return v; }

// Source of padded position i (SPEC §2): -1 = a zero (mode 0).
// mode: 0 zeros, 1 reflect, 2 replicate, 3 circular.
__device__ __forceinline__ long long src_index(long long i, long long L, long long pl, int mode) {
    long long j = i - pl;
    if (j >= 0 && j < L) return j;
    if (mode == 0) return -1;
    if (mode == 1) return j < 0 ? -j : 2 * (L - 1) - j;
    if (mode == 2) return j < 0 ? 0 : L - 1;
    long long r = j % L;
    return r < 0 ? r + L : r;
}

struct Geo {
    long long N, Cin, Cout, L, K, Lout, G, stride, dil, pl, pr;
    int mode;
};

// The geometry travels by value as 12 int64 kernel parameters
// (N, Cin, Cout, L, K, Lout, G, stride, dil, pl, pr, mode): no global loads per thread.
#define GEO_ARGS long long g0, long long g1, long long g2, long long g3, long long g4, long long g5, \
                 long long g6, long long g7, long long g8, long long g9, long long g10, long long g11
#define GEO_TYPES long long, long long, long long, long long, long long, long long, \
                  long long, long long, long long, long long, long long, long long
#define GEO_MAKE const Geo g = {g0, g1, g2, g3, g4, g5, g6, g7, g8, g9, g10, (int)g11};

// IEEE float32 arithmetic that never flushes subnormals, whatever -ftz the compiler is given
// (CuPy appends -ftz=true for NVRTC): explicit PTX without .ftz. HIP: plain operations.
#if defined(__HIPCC__)
__device__ __forceinline__ float fma_ieee(float a, float b, float c) { return fmaf(a, b, c); }
__device__ __forceinline__ float add_ieee(float a, float b) { return a + b; }
__device__ __forceinline__ float mul_ieee(float a, float b) { return a * b; }
#else
__device__ __forceinline__ float fma_ieee(float a, float b, float c) {
    float d; asm("fma.rn.f32 %0, %1, %2, %3;" : "=f"(d) : "f"(a), "f"(b), "f"(c)); return d;
}
__device__ __forceinline__ float add_ieee(float a, float b) {
    float d; asm("add.rn.f32 %0, %1, %2;" : "=f"(d) : "f"(a), "f"(b)); return d;
}
__device__ __forceinline__ float mul_ieee(float a, float b) {
    float d; asm("mul.rn.f32 %0, %1, %2;" : "=f"(d) : "f"(a), "f"(b)); return d;
}
#endif
__device__ __forceinline__ double fma_ieee(double a, double b, double c) { return fma(a, b, c); }
__device__ __forceinline__ double add_ieee(double a, double b) { return a + b; }
__device__ __forceinline__ double mul_ieee(double a, double b) { return a * b; }

template <typename S, bool CPLX>
__device__ __forceinline__ void load(const S* p, long long e, typename Acc<S>::type& re, typename Acc<S>::type& im) {
    if (CPLX) { re = to_acc(p[2 * e]); im = to_acc(p[2 * e + 1]); }
    else { re = to_acc(p[e]); im = 0; }
}

template <typename S, bool CPLX>
__device__ __forceinline__ void store(S* p, long long e, typename Acc<S>::type re, typename Acc<S>::type im) {
    if (CPLX) { p[2 * e] = from_acc<S>(re); p[2 * e + 1] = from_acc<S>(im); }
    else { p[e] = from_acc<S>(re); }
}

// The unit scale enters as one factor of every product (the weight in the forward and
// grad_x, grad_y in grad_w and grad_b; the bias is scaled too): sums are formed at the scale of
// the result, so an unscaled sum never overflows where the scaled result does not. Each scaled
// factor is rounded once in the compute type (an error the accumulator bound already covers).
template <typename S, bool CPLX>
__device__ __forceinline__ void load_scaled(const S* p, long long e, typename Acc<S>::type s,
                                            typename Acc<S>::type& re, typename Acc<S>::type& im) {
    load<S, CPLX>(p, e, re, im);
    re = mul_ieee(re, s);
    im = mul_ieee(im, s);
}

// acc += a * (CONJ ? conj(b) : b), the textbook complex product, one fma per real product.
template <typename A, bool CPLX, bool CONJ>
__device__ __forceinline__ void mac(A& sr, A& si, A ar, A ai, A br, A bi) {
    if (!CPLX) { sr = fma_ieee(ar, br, sr); return; }
    if (CONJ) bi = -bi;
    sr = fma_ieee(ar, br, sr); sr = fma_ieee(-ai, bi, sr);
    si = fma_ieee(ar, bi, si); si = fma_ieee(ai, br, si);
}

// One forward output y[n, o, t] by the fixed-order scaled loop (c, then k, then the bias).
template <typename S, bool CPLX>
__device__ void fwd_point(const S* __restrict__ x, const S* __restrict__ w, const S* __restrict__ b, const Geo& g,
                          long long n, long long o, long long t, typename Acc<S>::type s,
                          typename Acc<S>::type& sr, typename Acc<S>::type& si) {
    typedef typename Acc<S>::type A;
    long long Cg = g.Cin / g.G, Og = g.Cout / g.G, grp = o / Og;
    sr = 0; si = 0;
    for (long long c = 0; c < Cg; ++c) {
        long long ci = grp * Cg + c;
        for (long long k = 0; k < g.K; ++k) {
            long long j = src_index(t * g.stride + k * g.dil, g.L, g.pl, g.mode);
            A xr = 0, xi = 0, wr, wi;
            if (j >= 0) load<S, CPLX>(x, (n * g.Cin + ci) * g.L + j, xr, xi);
            load_scaled<S, CPLX>(w, (o * Cg + c) * g.K + k, s, wr, wi);
            mac<A, CPLX, false>(sr, si, xr, xi, wr, wi);  // a padded zero still multiplies (IEEE 0*inf)
        }
    }
    if (b) { A br, bi; load_scaled<S, CPLX>(b, o, s, br, bi); sr = add_ieee(sr, br); si = add_ieee(si, bi); }
}

template <typename S, bool CPLX>
__global__ void conv_fwd(const S* __restrict__ x, const S* __restrict__ w, const S* __restrict__ b,
                         S* __restrict__ y, GEO_ARGS, double scale) {
    GEO_MAKE
    typedef typename Acc<S>::type A;
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long total = g.N * g.Cout * g.Lout;
    if (idx >= total) return;
    long long t = idx % g.Lout, o = (idx / g.Lout) % g.Cout, n = idx / (g.Lout * g.Cout);
    A sr, si;
    fwd_point<S, CPLX>(x, w, b, g, n, o, t, (A)scale, sr, si);
    store<S, CPLX>(y, idx, sr, si);
}

// grad_w[o,c,k] = s * sum_{n,t} gy[n,o,t] * conj(xp[n, grp*Cg+c, t*stride + k*dil])
template <typename S, bool CPLX>
__global__ void conv_grad_w(const S* __restrict__ gy, const S* __restrict__ x, S* __restrict__ gw, GEO_ARGS, double scale) {
    GEO_MAKE
    typedef typename Acc<S>::type A;
    long long Cg = g.Cin / g.G, Og = g.Cout / g.G;
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= g.Cout * Cg * g.K) return;
    long long k = idx % g.K, c = (idx / g.K) % Cg, o = idx / (g.K * Cg);
    long long ci = (o / Og) * Cg + c;
    const A s = (A)scale;
    A sr = 0, si = 0;
    for (long long n = 0; n < g.N; ++n) {
        for (long long t = 0; t < g.Lout; ++t) {
            long long j = src_index(t * g.stride + k * g.dil, g.L, g.pl, g.mode);
            A xr = 0, xi = 0, ar, ai;
            if (j >= 0) load<S, CPLX>(x, (n * g.Cin + ci) * g.L + j, xr, xi);
            load_scaled<S, CPLX>(gy, (n * g.Cout + o) * g.Lout + t, s, ar, ai);
            mac<A, CPLX, true>(sr, si, ar, ai, xr, xi);
        }
    }
    store<S, CPLX>(gw, idx, sr, si);
}

// Two-stage deterministic grad_w for long reductions: stage 1 sums chunk p of the flat
// (n, t) range for every weight element into partial[p][e]; stage 2 adds the partials in
// order p = 0, 1, ... and applies the scale. Fixed order: bitwise reproducible.
template <typename S, bool CPLX>
__global__ void conv_grad_w_partial(const S* __restrict__ gy, const S* __restrict__ x,
                                    typename Acc<S>::type* __restrict__ partial, GEO_ARGS,
                                    long long chunks, double scale) {
    typedef typename Acc<S>::type A;
    GEO_MAKE
    const A s = (A)scale;
    long long Cg = g.Cin / g.G, Og = g.Cout / g.G, E = g.Cout * Cg * g.K;
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= E * chunks) return;
    long long e = idx % E, p = idx / E;
    long long k = e % g.K, c = (e / g.K) % Cg, o = e / (g.K * Cg);
    long long ci = (o / Og) * Cg + c;
    long long total = g.N * g.Lout, per = (total + chunks - 1) / chunks;
    long long lo = p * per, hi = lo + per < total ? lo + per : total;
    A sr = 0, si = 0;
    for (long long q = lo; q < hi; ++q) {
        long long n = q / g.Lout, t = q % g.Lout;
        long long j = src_index(t * g.stride + k * g.dil, g.L, g.pl, g.mode);
        A xr = 0, xi = 0, ar, ai;
        if (j >= 0) load<S, CPLX>(x, (n * g.Cin + ci) * g.L + j, xr, xi);
        load_scaled<S, CPLX>(gy, (n * g.Cout + o) * g.Lout + t, s, ar, ai);
        mac<A, CPLX, true>(sr, si, ar, ai, xr, xi);
    }
    partial[(p * E + e) * (CPLX ? 2 : 1)] = sr;
    if (CPLX) partial[(p * E + e) * 2 + 1] = si;
}

template <typename S, bool CPLX>
__global__ void conv_grad_w_final(const typename Acc<S>::type* __restrict__ partial, S* __restrict__ gw,
                                  long long E, long long chunks) {
    typedef typename Acc<S>::type A;
    long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= E) return;
    A sr = 0, si = 0;
    for (long long p = 0; p < chunks; ++p) {
        sr = add_ieee(sr, partial[(p * E + e) * (CPLX ? 2 : 1)]);
        if (CPLX) si = add_ieee(si, partial[(p * E + e) * 2 + 1]);
    }
    store<S, CPLX>(gw, e, sr, si);
}

// grad_b[o] = s * sum_{n,t} gy[n,o,t]
template <typename S, bool CPLX>
__global__ void conv_grad_b(const S* __restrict__ gy, S* __restrict__ gb, GEO_ARGS, double scale) {
    GEO_MAKE
    typedef typename Acc<S>::type A;
    long long o = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= g.Cout) return;
    const A s = (A)scale;
    A sr = 0, si = 0;
    for (long long n = 0; n < g.N; ++n)
        for (long long t = 0; t < g.Lout; ++t) {
            A ar, ai;
            load_scaled<S, CPLX>(gy, (n * g.Cout + o) * g.Lout + t, s, ar, ai);
            sr = add_ieee(sr, ar); si = add_ieee(si, ai);
        }
    store<S, CPLX>(gb, o, sr, si);
}

// The padded positions i whose source is input position j, as up to 4 half-open ranges
// (the adjoint of padding: each copy sends its gradient back to its source).
__device__ __forceinline__ int copies(long long j, const Geo& g, long long lo[4], long long hi[4]) {
    int m = 0;
    lo[m] = j + g.pl; hi[m++] = j + g.pl + 1;
    if (g.mode == 1) {  // reflect: x[j] appears at padded j' = -j and j' = 2(L-1)-j
        if (j >= 1 && j <= g.pl) { lo[m] = g.pl - j; hi[m++] = g.pl - j + 1; }
        long long jr = 2 * (g.L - 1) - j;
        if (jr >= g.L && jr < g.L + g.pr) { lo[m] = g.pl + jr; hi[m++] = g.pl + jr + 1; }
    } else if (g.mode == 2) {  // replicate: the edges repeat
        if (j == 0 && g.pl > 0) { lo[m] = 0; hi[m++] = g.pl; }
        if (j == g.L - 1 && g.pr > 0) { lo[m] = g.pl + g.L; hi[m++] = g.pl + g.L + g.pr; }
    } else if (g.mode == 3) {  // circular: j' = j - L and j' = j + L (pads are <= L)
        if (j - g.L >= -g.pl) { lo[m] = g.pl + j - g.L; hi[m++] = g.pl + j - g.L + 1; }
        if (j + g.L < g.L + g.pr) { lo[m] = g.pl + j + g.L; hi[m++] = g.pl + j + g.L + 1; }
    }
    return m;
}

// Adds the contributions of padded positions [lo, hi) (copies of one input element) to
// grad_x: sum over taps k with (i - k*dil) = t*stride and output channels o of the group of
// gy[n,o,t] * conj(w[o,c,k]).
template <typename S, bool CPLX, typename A>
__device__ __forceinline__ void add_copies(const S* __restrict__ gy, const S* __restrict__ w, const Geo& g,
                                           long long n, long long grp, long long c, long long lo, long long hi,
                                           A s, A& sr, A& si) {
    const long long Cg = g.Cin / g.G, Og = g.Cout / g.G;
    for (long long i = lo; i < hi; ++i)
        for (long long k = 0; k < g.K; ++k) {
            long long u = i - k * g.dil;
            if (u < 0 || u % g.stride) continue;
            long long t = u / g.stride;
            if (t >= g.Lout) continue;
            for (long long oo = 0; oo < Og; ++oo) {
                long long o = grp * Og + oo;
                A ar, ai, wr, wi;
                load<S, CPLX>(gy, (n * g.Cout + o) * g.Lout + t, ar, ai);
                load_scaled<S, CPLX>(w, (o * Cg + c) * g.K + k, s, wr, wi);
                mac<A, CPLX, true>(sr, si, ar, ai, wr, wi);
            }
        }
}

// grad_x[n, grp*Cg + c, j] before its rounding, in conv_grad_x's order: the padded copies of j
// (copies), then for each the taps and the group's output channels (add_copies). Shared by the
// register-window grad_x kernels at positions with padded copies.
template <typename S, bool CPLX, typename A>
__device__ __forceinline__ void grad_x_sum(const S* __restrict__ gy, const S* __restrict__ w, const Geo& g,
                                           long long n, long long grp, long long c, long long j, A s, A& sr, A& si) {
    long long lo[4], hi[4];
    const int m = copies(j, g, lo, hi);
    sr = 0; si = 0;
    for (int r = 0; r < m; ++r) add_copies<S, CPLX, A>(gy, w, g, n, grp, c, lo[r], hi[r], s, sr, si);
}

// grad_x[n,ci,j] = s * sum over copies i of j, taps k with (i - k*dil) = t*stride, o in group:
//                  gy[n,o,t] * conj(w[o, ci%Cg, k])
template <typename S, bool CPLX>
__global__ void conv_grad_x(const S* __restrict__ gy, const S* __restrict__ w, S* __restrict__ gx, GEO_ARGS, double scale) {
    GEO_MAKE
    typedef typename Acc<S>::type A;
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= g.N * g.Cin * g.L) return;
    long long j = idx % g.L, ci = (idx / g.L) % g.Cin, n = idx / (g.L * g.Cin);
    long long Cg = g.Cin / g.G, grp = ci / Cg, c = ci % Cg;
    A sr, si;
    grad_x_sum<S, CPLX, A>(gy, w, g, n, grp, c, j, (A)scale, sr, si);
    store<S, CPLX>(gx, idx, sr, si);
}

#define INSTANTIATE(S, C) \
    template __global__ void conv_fwd<S, C>(const S*, const S*, const S*, S*, GEO_TYPES, double); \
    template __global__ void conv_grad_w<S, C>(const S*, const S*, S*, GEO_TYPES, double); \
    template __global__ void conv_grad_b<S, C>(const S*, S*, GEO_TYPES, double); \
    template __global__ void conv_grad_x<S, C>(const S*, const S*, S*, GEO_TYPES, double); \
    template __global__ void conv_grad_w_partial<S, C>(const S*, const S*, typename Acc<S>::type*, GEO_TYPES, long long, double); \
    template __global__ void conv_grad_w_final<S, C>(const typename Acc<S>::type*, S*, long long, long long);

// ---------------------------------------------------------------------------------------
// Row-tiled kernels for few channels per group (depthwise, depthwise x multiplier, small
// groups): a block owns a tile of one output row; the input (or grad_y) segment the tile
// reads is staged once in shared memory with the padding map applied while loading, so
// global memory is read about once. Fixed loop orders: deterministic.

template <typename A> struct Pair { A r, i; };

// y[n, o, t0 : t0+T]: block = (row n*Cout+o, tile of tile_len outputs); each thread up to PER outputs, strided by
// blockDim so the stores coalesce. Sum order: c, then k (as conv_fwd).
template <typename S, bool CPLX, int PER>
__global__ void conv_fwd_tile(const S* __restrict__ x, const S* __restrict__ w, const S* __restrict__ b,
                              S* __restrict__ y, GEO_ARGS, double scale, int tile_len) {
    typedef typename Acc<S>::type A;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    A* sr_ = reinterpret_cast<A*>(smem_raw);  // real parts; imaginary parts after them
    GEO_MAKE
    // 32-bit index math inside a row (rows are < 2^31 elements; checked by the backend)
    const int L = (int)g.L, K = (int)g.K, Lout = (int)g.Lout, st = (int)g.stride, dil = (int)g.dil, pl = (int)g.pl;
    const int T = tile_len;  // outputs per tile (<= blockDim.x * PER), balanced over the row by the host
    // 32-bit unsigned block decomposition: 64-bit division costs ~100 instructions per thread
    const unsigned tiles = (unsigned)((Lout + T - 1) / T);
    const unsigned urow = blockIdx.x / tiles, Cout = (unsigned)g.Cout;
    const int tile = (int)(blockIdx.x - urow * tiles);
    const unsigned un = urow / Cout, uo = urow - un * Cout;
    const unsigned uCg = (unsigned)g.Cin / (unsigned)g.G, uOg = Cout / (unsigned)g.G;
    const long long row = urow, n = un, o = uo, Cg = uCg, grp = uo / uOg;
    const int t0 = tile * T;
    const int tcount = (Lout - t0) < T ? (Lout - t0) : T;
    const int span = (tcount - 1) * st + (K - 1) * dil + 1;
    A* si_ = sr_ + span;
    const int i0 = t0 * st - pl;  // input position of the tile's first padded element
    const A s = (A)scale;
    A accr[PER], acci[PER];
    for (int r = 0; r < PER; ++r) { accr[r] = 0; acci[r] = 0; }
    for (long long c = 0; c < Cg; ++c) {
        const long long ci = grp * Cg + c;
        const S* xrow = x + (n * g.Cin + ci) * g.L * (CPLX ? 2 : 1);
        for (int q = threadIdx.x; q < span; q += blockDim.x) {
            int j = i0 + q;
            if (j < 0 || j >= L) j = (int)src_index(j + pl, L, pl, g.mode);  // edges only
            A vr = 0, vi = 0;
            if (j >= 0) load<S, CPLX>(xrow, j, vr, vi);
            sr_[q] = vr;
            if (CPLX) si_[q] = vi;
        }
        __syncthreads();
        const S* wrow = w + (o * Cg + c) * g.K * (CPLX ? 2 : 1);
        for (int k = 0; k < K; ++k) {
            A wr, wi;
            load_scaled<S, CPLX>(wrow, k, s, wr, wi);
            int base = threadIdx.x * st + k * dil;
            for (int r = 0; r < PER; ++r, base += blockDim.x * st) {
                if (threadIdx.x + r * blockDim.x < tcount)
                    mac<A, CPLX, false>(accr[r], acci[r], sr_[base], CPLX ? si_[base] : (A)0, wr, wi);
            }
        }
        __syncthreads();
    }
    A br = 0, bi = 0;
    if (b) load_scaled<S, CPLX>(b, o, s, br, bi);
    for (int r = 0; r < PER; ++r) {
        int tl = threadIdx.x + r * blockDim.x;
        if (tl < tcount)
            store<S, CPLX>(y, row * g.Lout + t0 + tl, add_ieee(accr[r], br), add_ieee(acci[r], bi));
    }
}

// grad_x[n, ci, j0 : j0+T]: the main copy (i = j + pl) from a staged grad_y segment for each
// output channel of the group; then, for edge elements only, the extra padding copies.
template <typename S, bool CPLX, int PER>
__global__ void conv_grad_x_tile(const S* __restrict__ gy, const S* __restrict__ w, S* __restrict__ gx,
                                 GEO_ARGS, double scale) {
    typedef typename Acc<S>::type A;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    Pair<A>* sg = reinterpret_cast<Pair<A>*>(smem_raw);
    GEO_MAKE
    const long long T = (long long)blockDim.x * PER;
    // 32-bit unsigned block decomposition (64-bit division costs ~100 instructions per thread)
    const unsigned utiles = (unsigned)((g.L + T - 1) / T), Cin = (unsigned)g.Cin;
    const unsigned urow = blockIdx.x / utiles;
    const long long row = urow, tile = blockIdx.x - urow * utiles;
    const unsigned un = urow / Cin, uci = urow - un * Cin;
    const unsigned uCg = Cin / (unsigned)g.G, ugrp = uci / uCg;
    const long long n = un, Cg = uCg, Og = g.Cout / g.G, grp = ugrp, c = uci - ugrp * uCg;
    const long long j0 = tile * T;
    const long long jcount = (g.L - j0) < T ? (g.L - j0) : T;
    // t range read by the tile's main copies: u = j + pl - k*dil = t*stride
    long long ulo = j0 + g.pl - (g.K - 1) * g.dil, uhi = j0 + jcount - 1 + g.pl;
    long long tlo = ulo <= 0 ? 0 : (ulo + g.stride - 1) / g.stride;
    long long thi = uhi / g.stride;
    if (thi > g.Lout - 1) thi = g.Lout - 1;
    const long long tn = thi >= tlo ? thi - tlo + 1 : 0;
    const A s = (A)scale;
    A sr[PER], si[PER];
    for (int r = 0; r < PER; ++r) { sr[r] = 0; si[r] = 0; }
    for (long long oo = 0; oo < Og; ++oo) {
        const long long o = grp * Og + oo;
        const S* grow = gy + (n * g.Cout + o) * g.Lout * (CPLX ? 2 : 1);
        for (long long q = threadIdx.x; q < tn; q += blockDim.x) {
            A vr, vi;
            load<S, CPLX>(grow, tlo + q, vr, vi);
            sg[q].r = vr; sg[q].i = vi;
        }
        __syncthreads();
        const int st = (int)g.stride, Lout = (int)g.Lout, itlo = (int)tlo;
        for (int k = 0; k < (int)g.K; ++k) {
            A wr, wi;
            load_scaled<S, CPLX>(w, (o * Cg + c) * g.K + k, s, wr, wi);
            int u = (int)j0 + threadIdx.x + (int)g.pl - k * (int)g.dil;  // 32-bit inside a row
            for (int r = 0; r < PER; ++r, u += blockDim.x) {
                if (threadIdx.x + r * (int)blockDim.x >= jcount || u < 0) continue;
                int t = u;
                if (st != 1) {
                    if (u % st) continue;
                    t = u / st;
                }
                if (t >= Lout) continue;
                Pair<A> v = sg[t - itlo];
                mac<A, CPLX, true>(sr[r], si[r], v.r, v.i, wr, wi);
            }
        }
        __syncthreads();
    }
    for (int r = 0; r < PER; ++r) {
        long long jl = threadIdx.x + (long long)r * blockDim.x;
        if (jl >= jcount) continue;
        long long j = j0 + jl;
        if (g.mode != 0) {  // extra copies (reflect/replicate/circular edges), straight from global
            long long lo[4], hi[4];
            int m = copies(j, g, lo, hi);
            for (int q = 1; q < m; ++q)
                add_copies<S, CPLX, A>(gy, w, g, n, grp, c, lo[q], hi[q], s, sr[r], si[r]);
        }
        store<S, CPLX>(gx, row * g.L + j, sr[r], si[r]);
    }
}

// grad_w partial sums for few channels per group: block = (chunk of batch rows, o, c);
// threads stride over t accumulating up to 8 taps at once; then a fixed-order tree
// reduction in shared memory writes partial[p][(o*Cg + c)*K + k].
template <typename S, bool CPLX>
__global__ void conv_grad_w_rows(const S* __restrict__ gy, const S* __restrict__ x,
                                 typename Acc<S>::type* __restrict__ partial, GEO_ARGS, long long chunks,
                                 double scale) {
    typedef typename Acc<S>::type A;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    Pair<A>* red = reinterpret_cast<Pair<A>*>(smem_raw);  // blockDim.x entries
    GEO_MAKE
    const long long Cg = g.Cin / g.G, Og = g.Cout / g.G;
    const long long rows = g.Cout * Cg, E = rows * g.K;
    const long long p = blockIdx.x / rows, oc = blockIdx.x % rows;
    const long long o = oc / Cg, c = oc % Cg, ci = (o / Og) * Cg + c;
    const long long per = (g.N + chunks - 1) / chunks;
    const long long nlo = p * per, nhi = nlo + per < g.N ? nlo + per : g.N;
    const A s = (A)scale;
    for (long long kb = 0; kb < g.K; kb += 8) {
        const int kn = (g.K - kb) < 8 ? (int)(g.K - kb) : 8;
        A sr[8], si[8];
        for (int q = 0; q < 8; ++q) { sr[q] = 0; si[q] = 0; }
        const int L = (int)g.L, Lout = (int)g.Lout, st = (int)g.stride, dil = (int)g.dil, pl = (int)g.pl;
        for (long long n = nlo; n < nhi; ++n) {
            const S* xrow = x + (n * g.Cin + ci) * g.L * (CPLX ? 2 : 1);
            const S* grow = gy + (n * g.Cout + o) * g.Lout * (CPLX ? 2 : 1);
            for (int t = threadIdx.x; t < Lout; t += blockDim.x) {
                A ar, ai;
                load_scaled<S, CPLX>(grow, t, s, ar, ai);
                int j0 = t * st + (int)kb * dil - pl;
                for (int q = 0; q < kn; ++q, j0 += dil) {
                    int j = j0;
                    if (j < 0 || j >= L) j = (int)src_index(j + pl, L, pl, g.mode);
                    A xr = 0, xi = 0;
                    if (j >= 0) load<S, CPLX>(xrow, j, xr, xi);
                    mac<A, CPLX, true>(sr[q], si[q], ar, ai, xr, xi);
                }
            }
        }
        for (int q = 0; q < kn; ++q) {
            red[threadIdx.x].r = sr[q]; red[threadIdx.x].i = si[q];
            __syncthreads();
            for (unsigned h = blockDim.x / 2; h > 0; h >>= 1) {  // blockDim.x is a power of two
                if (threadIdx.x < h) { red[threadIdx.x].r = add_ieee(red[threadIdx.x].r, red[threadIdx.x + h].r); red[threadIdx.x].i = add_ieee(red[threadIdx.x].i, red[threadIdx.x + h].i); }
                __syncthreads();
            }
            if (threadIdx.x == 0) {
                long long e = oc * g.K + kb + q;
                partial[(p * E + e) * (CPLX ? 2 : 1)] = red[0].r;
                if (CPLX) partial[(p * E + e) * 2 + 1] = red[0].i;
            }
            __syncthreads();
        }
    }
}

#define INSTANTIATE_TILES(S, C) \
    template __global__ void conv_fwd_tile<S, C, 8>(const S*, const S*, const S*, S*, GEO_TYPES, double, int); \
    template __global__ void conv_grad_x_tile<S, C, 8>(const S*, const S*, S*, GEO_TYPES, double); \
    template __global__ void conv_grad_w_rows<S, C>(const S*, const S*, typename Acc<S>::type*, GEO_TYPES, long long, double);


// ---------------------------------------------------------------------------------------
// Depthwise (one input and one output channel per group), stride 1, dilation 1, float
// accumulation (16-bit and float32 storage): the forward, and the main copy of grad_x as the
// same correlation of grad_y with the taps reversed. A block stages the input span of a tile
// of T = 8 * blockDim.x outputs of one row in shared memory as float (the padding map only at
// row edges); each thread computes two quads of 4 consecutive outputs from a register window
// read with 16-byte shared loads, taps unrolled up to KMAX; 16-byte (float32) or 8-byte
// (16-bit) stores. Per output: K fused multiply-adds and about 3 other instructions.
// Sum order: taps ascending (forward) / descending (grad_x), then the bias: deterministic.

// Four consecutive values at a 4-element-aligned address, one 16-byte (float32) or 8-byte load.
template <typename S> __device__ __forceinline__ void load4(const S* p, float v[4]) {
    const uint2 u = *reinterpret_cast<const uint2*>(p);
    unsigned short h[4] = {(unsigned short)(u.x & 0xffffu), (unsigned short)(u.x >> 16),
                           (unsigned short)(u.y & 0xffffu), (unsigned short)(u.y >> 16)};
#pragma unroll
    for (int r = 0; r < 4; ++r) v[r] = to_acc(*reinterpret_cast<const S*>(&h[r]));
}
template <> __device__ __forceinline__ void load4<float>(const float* p, float v[4]) {
    const float4 u = *reinterpret_cast<const float4*>(p);
    v[0] = u.x; v[1] = u.y; v[2] = u.z; v[3] = u.w;
}

// Two floats rounded to nearest even into one 32-bit word of two 16-bit values (lo first).
template <typename S> __device__ __forceinline__ unsigned pack2(float a, float b);
template <> __device__ __forceinline__ unsigned pack2<__half>(float a, float b) {
    __half2 v = __floats2half2_rn(a, b);  // one conversion per pair
    return *reinterpret_cast<unsigned*>(&v);
}
template <> __device__ __forceinline__ unsigned pack2<bf16_t>(float a, float b) {
    bf162_t v = __floats2bfloat162_rn(a, b);
    return *reinterpret_cast<unsigned*>(&v);
}

template <typename S> __device__ __forceinline__ void store4(S* p, float a, float b, float c, float d) {
    *reinterpret_cast<uint2*>(p) = make_uint2(pack2<S>(a, b), pack2<S>(c, d));
}
template <> __device__ __forceinline__ void store4<float>(float* p, float a, float b, float c, float d) {
    *reinterpret_cast<float4*>(p) = make_float4(a, b, c, d);
}

// sm[q] = padded input at i0 + q for q < span (span <= 8 * blockDim.x + halo): the 8 loads of
// each thread are issued before any store (latency overlapped); the padding map (forward) or
// zeros (grad_x reading grad_y) only in tiles that touch a row end.
// The register window sm[0 : K+3] of one quad of outputs, in 16-byte shared loads.
template <int NW>
__device__ __forceinline__ void load_window(const float* sm, int K, float win[NW]) {
#pragma unroll
    for (int m = 0; m < NW / 4; ++m) {
        if (4 * m < K + 3) {
            const float4 v = *reinterpret_cast<const float4*>(sm + 4 * m);
            win[4 * m] = v.x; win[4 * m + 1] = v.y; win[4 * m + 2] = v.z; win[4 * m + 3] = v.w;
        }
    }
}

// Two packed 16-bit values to floats, one conversion instruction.
template <typename S> __device__ __forceinline__ float2 pair_to_float2(unsigned v);
template <> __device__ __forceinline__ float2 pair_to_float2<__half>(unsigned v) {
    return __half22float2(*reinterpret_cast<__half2*>(&v));
}
template <> __device__ __forceinline__ float2 pair_to_float2<bf16_t>(unsigned v) {
    return __bfloat1622float2(*reinterpret_cast<bf162_t*>(&v));
}
template <> __device__ __forceinline__ float2 pair_to_float2<float>(unsigned v) { return make_float2(0.f, 0.f); }

// Index of staged element q: q itself, or (PAD) q + 4 * (q / 32) -- four floats of padding after
// every 32, so that the 16-byte loads of 8 lanes 16 elements apart (dw_wide) hit distinct banks.
template <bool PAD> __device__ __forceinline__ int sidx(int q) { return PAD ? q + ((q >> 5) << 2) : q; }

// win[0 .. 4 NV) = staged elements q .. q + 4 NV - 1 of the sidx<true> layout (q a multiple of 4):
// NV 16-byte loads (a padding gap falls only between whole groups of 4).
template <int NV> __device__ __forceinline__ void staged4(const float* sm, int q, float* win) {
#pragma unroll
    for (int m = 0; m < NV; ++m) {
        const float4 v = *reinterpret_cast<const float4*>(sm + sidx<true>(q + 4 * m));
        win[4 * m] = v.x; win[4 * m + 1] = v.y; win[4 * m + 2] = v.z; win[4 * m + 3] = v.w;
    }
}

template <typename S, bool BWD>
__device__ __forceinline__ void stage_row(float* sm, const S* __restrict__ src, int i0, int span, int Lin, const Geo& g) {
    const int nt = (int)blockDim.x;
    if constexpr (sizeof(S) == 2) {
    if (i0 >= 1 && i0 + span + 1 <= Lin && ((((size_t)(src + i0)) & 3) == 0 || (((size_t)(src + i0 - 1)) & 3) == 0)) {
        // 16-bit storage: aligned 32-bit pair loads (the first pair may start one before i0)
        const int a0 = (((size_t)(src + i0)) & 3) == 0 ? i0 : i0 - 1;
        const int npair = (i0 + span - a0 + 1) >> 1;
        const unsigned* p32 = reinterpret_cast<const unsigned*>(src + a0);
        unsigned v[4];
#pragma unroll
        for (int u = 0; u < 4; ++u) {
            const int p = threadIdx.x + u * nt;
            v[u] = p < npair ? p32[p] : 0u;
        }
#pragma unroll
        for (int u = 0; u < 4; ++u) {
            const int p = threadIdx.x + u * nt;
            if (p < npair) {
                const float2 f = pair_to_float2<S>(v[u]);
                const int q = a0 + 2 * p - i0;
                if (q >= 0 && q < span) sm[q] = f.x;
                if (q + 1 < span) sm[q + 1] = f.y;
            }
        }
        for (int p = threadIdx.x + 4 * nt; p < npair; p += nt) {
            unsigned w32 = p32[p];
            unsigned short l16 = (unsigned short)(w32 & 0xffffu), h16 = (unsigned short)(w32 >> 16);
            S lo = *reinterpret_cast<S*>(&l16), hi = *reinterpret_cast<S*>(&h16);
            const int q = a0 + 2 * p - i0;
            if (q >= 0 && q < span) sm[q] = to_acc(lo);
            if (q + 1 < span) sm[q + 1] = to_acc(hi);
        }
        return;
    }
    }
    if (i0 >= 0 && i0 + span <= Lin) {
        float v[8];
#pragma unroll
        for (int u = 0; u < 8; ++u) {
            const int q = threadIdx.x + u * nt;
            v[u] = q < span ? to_acc(src[i0 + q]) : 0.f;
        }
#pragma unroll
        for (int u = 0; u < 8; ++u) {
            const int q = threadIdx.x + u * nt;
            if (q < span) sm[q] = v[u];
        }
        for (int q = threadIdx.x + 8 * nt; q < span; q += nt) sm[q] = to_acc(src[i0 + q]);
    } else {
        const int pl = (int)g.pl, Lpad = (int)(g.L + g.pl + g.pr);
        for (int q = threadIdx.x; q < span; q += nt) {
            const int j = i0 + q;
            float v = 0.f;
            if (j >= 0 && j < Lin) v = to_acc(src[j]);
            else if (!BWD && j + pl < Lpad) {
                const long long jj = src_index(j + pl, g.L, g.pl, g.mode);
                if (jj >= 0) v = to_acc(src[jj]);
            }
            sm[q] = v;
        }
    }
}

// The extra padded copies of x[j] (besides its own position j + pl) as two half-open ranges of
// padded positions [lo[q], hi[q]), empty where absent, in copies()' order: reflect j' = -j and
// 2(L-1) - j, replicate the left / right pad for j = 0 / L - 1, circular j - L and j + L. Fixed
// slots, 32-bit arithmetic: no dynamically indexed array.
__device__ __forceinline__ void extra_copies(int j, const Geo& g, int lo[2], int hi[2]) {
    const int L = (int)g.L, pl = (int)g.pl, pr = (int)g.pr, jr = 2 * (L - 1) - j;
    lo[0] = hi[0] = lo[1] = hi[1] = 0;
    if (g.mode == 1) {
        if (j >= 1 && j <= pl) { lo[0] = pl - j; hi[0] = pl - j + 1; }
        if (jr >= L && jr < L + pr) { lo[1] = pl + jr; hi[1] = pl + jr + 1; }
    } else if (g.mode == 2) {
        if (j == 0 && pl > 0) { lo[0] = 0; hi[0] = pl; }
        if (j == L - 1 && pr > 0) { lo[1] = pl + L; hi[1] = pl + L + pr; }
    } else if (g.mode == 3) {
        if (j - L >= -pl) { lo[0] = pl + j - L; hi[0] = lo[0] + 1; }
        if (j + L < L + pr) { lo[1] = pl + j + L; hi[1] = lo[1] + 1; }
    }
}

// Depthwise grad_x at position j < Lo of row (n, c) with a non-zero padding mode: adds to acc
// the contributions of the extra padded copies of x[j] (SPEC §2's adjoint; they exist only
// within max(pl, pr) + 1 of a row end). gy: grad_y; s: the scale, multiplied into the taps.
// LEAN (dw_bwd_edges), at stride 1 with one output channel per input channel: per copy i
// (extra_copies), taps k ascending with 0 <= t = i - k d < L_out, acc = fma(gy[t], w[c, k] s,
// acc) -- add_copies' operations in its order, in 32-bit arithmetic without its 64-bit
// divisions; otherwise add_copies itself (inlined into dw_wide, the lean loop cost it registers).
template <typename S, bool LEAN = false>
__device__ __forceinline__ void dw_add_copies(const S* __restrict__ gy, const S* __restrict__ w, const Geo& g,
                                              unsigned row, unsigned c, long long j, int Lo, float s, float& acc) {
    const int E = (int)(g.pl > g.pr ? g.pl : g.pr) + 1;
    if (j >= Lo || (j >= E && j < Lo - E)) return;
    if (LEAN && g.stride == 1 && g.Cout == g.Cin && g.G == g.Cin) {
        int lo[2], hi[2];
        extra_copies((int)j, g, lo, hi);
        const int K = (int)g.K, d = (int)g.dil, Lout = (int)g.Lout;
        const S* gr = gy + (long long)row * Lout;
#pragma unroll
        for (int q = 0; q < 2; ++q)
            for (int i = lo[q]; i < hi[q]; ++i)
                for (int k = 0; k < K; ++k) {
                    const int t = i - k * d;
                    if (t >= 0 && t < Lout) acc = fma_ieee(to_acc(gr[t]), mul_ieee(to_acc(w[(long long)c * K + k]), s), acc);
                }
        return;
    }
    long long lo[4], hi[4];
    const int m = copies(j, g, lo, hi);
    float si = 0.f;
    for (int q = 1; q < m; ++q)
        add_copies<S, false, float>(gy, w, g, row / (unsigned)g.Cout, c, 0, lo[q], hi[q], s, acc, si);
}

// Four consecutive outputs t0+qb .. t0+qb+3 of a depthwise row from the staged input sm (the
// tile's span) and the staged taps ws (scaled; reversed for grad_x), plus the bias br; grad_x
// with a non-zero padding mode also adds the extra copies near the row ends. 16- or 8-byte stores
// where aligned.
template <typename S, int KMAX, bool BWD>
__device__ __forceinline__ void dw_out_quad(const float* sm, const float* ws, const S* __restrict__ in,
                                            const S* __restrict__ w, S* __restrict__ out, const Geo& g,
                                            unsigned row, unsigned c, int t0, int qb, int T, int Lo, float br,
                                            float s) {
    constexpr int NW = KMAX + 4;  // window: 4 outputs + KMAX - 1 taps, in whole float4s
    const int K = (int)g.K;
    float win[NW];
    load_window<NW>(sm + qb, K, win);
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int k = 0; k < KMAX; ++k) {
        if (k < K) {
            const float wk = ws[k];
#pragma unroll
            for (int r = 0; r < 4; ++r) acc[r] = fma_ieee(win[r + k], wk, acc[r]);
        }
    }
    if (BWD && g.mode != 0)
        for (int r = 0; r < 4; ++r)
            if (qb + r < T) dw_add_copies<S>(in, w, g, row, c, t0 + qb + r, Lo, s, acc[r]);
    S* dst = out + (long long)row * Lo + t0 + qb;
    if (qb + 4 <= T && t0 + qb + 4 <= Lo && (((long long)row * Lo + t0 + qb) & 3) == 0) {
        store4<S>(dst, add_ieee(acc[0], br), add_ieee(acc[1], br), add_ieee(acc[2], br), add_ieee(acc[3], br));
    } else {
        for (int r = 0; r < 4 && qb + r < T && t0 + qb + r < Lo; ++r) dst[r] = from_acc<S>(add_ieee(acc[r], br));
    }
}

template <typename S, int KMAX, bool BWD>
__global__ void __launch_bounds__(128) dw_vec(const S* __restrict__ in, const S* __restrict__ w,
                                              const S* __restrict__ b, S* __restrict__ out, GEO_ARGS, double scale,
                                              int T) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    float* sm = reinterpret_cast<float*>(smem_raw);
    GEO_MAKE
    const int K = (int)g.K, pl = (int)g.pl;
    // forward: in = x rows of L, out = y rows of Lout; grad_x: in = grad_y rows of Lout, out = grad_x rows of L
    const int Lin = BWD ? (int)g.Lout : (int)g.L, Lo = BWD ? (int)g.L : (int)g.Lout;
    // T: outputs per tile, a multiple of 4 and <= 8 * blockDim.x, balanced over the row by the host
    const unsigned tiles = (unsigned)((Lo + T - 1) / T);
    const unsigned row = blockIdx.x / tiles;  // n * C + c
    const int t0 = (int)(blockIdx.x - row * tiles) * T;
    const unsigned c = row % (unsigned)g.Cout;
    const int span = T + K - 1, alloc = T + K + 4;
    float* ws = sm + alloc;
    const float s = (float)scale;
    if ((int)threadIdx.x < K) {  // scaled taps, reversed for grad_x
        int k = (int)threadIdx.x;
        ws[BWD ? K - 1 - k : k] = mul_ieee(to_acc(w[(long long)c * K + k]), s);
    }
    // staged input: sm[q] = padded input at position i0 + q
    const int i0 = BWD ? t0 + pl - (K - 1) : t0 - pl;
    const S* src = in + (long long)row * Lin;
    stage_row<S, BWD>(sm, src, i0, span, Lin, g);
    for (int q = span + threadIdx.x; q < alloc; q += blockDim.x) sm[q] = 0.f;
    __syncthreads();
    float br = 0.f;
    if (!BWD && b) br = mul_ieee(to_acc(b[c]), s);
    for (int rr = 0; rr < 2; ++rr) {
        const int qb = (rr * (int)blockDim.x + (int)threadIdx.x) * 4;
        if (qb >= T || t0 + qb >= Lo) break;
        dw_out_quad<S, KMAX, BWD>(sm, ws, in, w, out, g, row, c, t0, qb, T, Lo, br, s);
    }
}

// grad_w accumulation of one quad: acc[k] += sum_r gv[r] * win[r + k], win read from smx. Only the
// positions r of the bit mask `valid` (real grad_y positions of the tile) take part: a zero
// stand-in for grad_y outside its row would turn an infinite x into a NaN.
template <int KMAX>
__device__ __forceinline__ void dw_w_quad(const float gv[4], const float* smx, int K, unsigned valid, float acc[KMAX]) {
    constexpr int NW = KMAX + 4;
    float win[NW];
    load_window<NW>(smx, K, win);
#pragma unroll
    for (int k = 0; k < KMAX; ++k) {
        if (k < K) {
#pragma unroll
            for (int r = 0; r < 4; ++r)
                if ((valid >> r) & 1u) acc[k] = fma_ieee(gv[r], win[r + k], acc[k]);
        }
    }
}

// Bit r set where 0 <= t + r < n and q + r < T (r < 4).
__device__ __forceinline__ unsigned quad_mask(long long t, int n, int q, int T) {
    unsigned m = 0u;
#pragma unroll
    for (int r = 0; r < 4; ++r) m |= (t + r >= 0 && t + r < n && q + r < T) ? (1u << r) : 0u;
    return m;
}

// The warp's sum of v in a fixed order (shuffle tree, offsets 16, 8, 4, 2, 1): valid in lane 0.
__device__ __forceinline__ float warp_tree_sum(float v) {
#pragma unroll
    for (int h = 16; h > 0; h >>= 1) v = add_ieee(v, __shfl_down_sync(0xffffffffu, v, h));
    return v;
}

// The block's sum of acc[k] over its threads in a fixed order (shuffle tree per warp, then the
// warps in order) into dst[k]; sm: at least (blockDim.x / 32) * KMAX floats, free to overwrite.
template <int KMAX>
__device__ __forceinline__ void dw_w_partial(const float acc[KMAX], float* sm, int K, float* dst) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int k = 0; k < KMAX; ++k) {
        if (k < K) {
            const float v = warp_tree_sum(acc[k]);
            if (lane == 0) sm[warp * KMAX + k] = v;
        }
    }
    __syncthreads();
    for (int k = (int)threadIdx.x; k < K; k += (int)blockDim.x) {  // K may exceed the block
        float v = sm[k];
        for (int q = 1; q < (int)(blockDim.x >> 5); ++q) v = add_ieee(v, sm[q * KMAX + k]);
        dst[k] = v;
    }
}

// Depthwise grad_w partial sums, stride 1, dilation 1: block = tile of T (up to 32 * blockDim.x)
// outputs of row (n, c); the tile's x span is staged as in the forward, each thread takes up to
// eight quads of grad_y (scaled; the more quads, the fewer K-value block reductions per output) and accumulates sum_t gy[t] * xp[t + k] for every tap; then a fixed
// shuffle tree per warp and the 4 warps in order: partial[(n * tiles + tile) * C + c][k].
// conv_grad_w_final sums the partials in a fixed order. Deterministic.
template <typename S, int KMAX>
__global__ void __launch_bounds__(128) dw_grad_w_vec(const S* __restrict__ gy, const S* __restrict__ x,
                                                     float* __restrict__ partial, GEO_ARGS, double scale, int T) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    float* sm = reinterpret_cast<float*>(smem_raw);
    GEO_MAKE
    const int K = (int)g.K, pl = (int)g.pl, L = (int)g.L, Lout = (int)g.Lout;
    const unsigned tiles = (unsigned)((Lout + T - 1) / T), C = (unsigned)g.Cout;
    const unsigned row = blockIdx.x / tiles;
    const unsigned tile = blockIdx.x - row * tiles;
    const int t0 = (int)tile * T;
    const int span = T + K - 1, alloc = T + K + 4;
    stage_row<S, false>(sm, x + (long long)row * L, t0 - pl, span, L, g);
    for (int q = span + threadIdx.x; q < alloc; q += blockDim.x) sm[q] = 0.f;
    __syncthreads();
    const float s = (float)scale;
    float acc[KMAX];
#pragma unroll
    for (int k = 0; k < KMAX; ++k) acc[k] = 0.f;
    constexpr int NW = KMAX + 4;
    const S* grow = gy + (long long)row * Lout;
    for (int qb = 4 * (int)threadIdx.x; qb < T && t0 + qb < Lout; qb += 4 * (int)blockDim.x) {  // T / (4 * blockDim) quads
        float gv[4];
        if (qb + 4 <= T && t0 + qb + 4 <= Lout && (((long long)row * Lout + t0 + qb) & 3) == 0) {
            load4<S>(grow + t0 + qb, gv);
#pragma unroll
            for (int r = 0; r < 4; ++r) gv[r] = mul_ieee(gv[r], s);
        } else {
#pragma unroll
            for (int r = 0; r < 4; ++r) gv[r] = (qb + r < T && t0 + qb + r < Lout) ? mul_ieee(to_acc(grow[t0 + qb + r]), s) : 0.f;
        }
        dw_w_quad<KMAX>(gv, sm + qb, K, quad_mask(t0 + qb, Lout, qb, T), acc);
    }
    __syncthreads();  // sm is reused for the per-warp results
    const unsigned n = row / C, c = row - n * C;
    dw_w_partial<KMAX>(acc, sm, K, partial + ((long long)(n * tiles + tile) * C + c) * K);
}

// Depthwise backward in one pass (stride 1, dilation 1): grad_x exactly as dw_vec<BWD> and
// grad_w's per-tile partial sums as dw_grad_w_vec, from one staging of grad_y (read once, not
// twice). A tile of T grad_x positions [t0, t0 + T) stages grad_y over [t0 + d, t0 + d + T + K - 1)
// with d = pl - (K - 1), and x over the padded positions of the same range; its grad_w share is
// the grad_y positions [t0 + d, t0 + d + T) (grad_y is zero outside [0, L_out)). Positions no
// share covers (t < d in the first tile, t >= tiles*T + d in the last) are added by thread 0 of
// those tiles from global memory. Partial sums per (n, tile, c): conv_grad_w_final sums them in a
// fixed order. Deterministic.
template <typename S, int KMAX>
__global__ void __launch_bounds__(128) dw_bwd_vec(const S* __restrict__ gy, const S* __restrict__ w,
                                                  const S* __restrict__ x, S* __restrict__ gx,
                                                  float* __restrict__ partial, GEO_ARGS, double s_gx, double s_gw,
                                                  int T) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    float* sm = reinterpret_cast<float*>(smem_raw);  // staged grad_y
    GEO_MAKE
    const int K = (int)g.K, pl = (int)g.pl, L = (int)g.L, Lout = (int)g.Lout, d = pl - (K - 1);
    const unsigned tiles = (unsigned)((L + T - 1) / T), C = (unsigned)g.Cout;
    const unsigned row = blockIdx.x / tiles, tile = blockIdx.x - row * tiles;
    const unsigned n = row / C, c = row - n * C;
    const int t0 = (int)tile * T, span = T + K - 1, alloc = (T + K + 7) & ~3;  // 16-byte aligned spans
    float* smx = sm + alloc;  // staged x: padded positions t0 + d + q
    float* ws = smx + alloc;  // scaled taps, reversed
    const float sx = (float)s_gx, sw = (float)s_gw;
    if ((int)threadIdx.x < K) {
        const int k = (int)threadIdx.x;
        ws[K - 1 - k] = mul_ieee(to_acc(w[(long long)c * K + k]), sx);
    }
    stage_row<S, true>(sm, gy + (long long)row * Lout, t0 + d, span, Lout, g);
    stage_row<S, false>(smx, x + (long long)row * L, t0 + d - pl, span, L, g);
    for (int q = span + threadIdx.x; q < alloc; q += blockDim.x) sm[q] = smx[q] = 0.f;
    __syncthreads();
    float acc[KMAX];
#pragma unroll
    for (int k = 0; k < KMAX; ++k) acc[k] = 0.f;
    for (int rr = 0; rr < 2; ++rr) {
        const int qb = (rr * (int)blockDim.x + (int)threadIdx.x) * 4;
        if (qb >= T) break;
        if (t0 + qb < L) dw_out_quad<S, KMAX, true>(sm, ws, gy, w, gx, g, row, c, t0, qb, T, L, 0.f, sx);
        float gv[4];
#pragma unroll
        for (int r = 0; r < 4; ++r) gv[r] = qb + r < T ? mul_ieee(sm[qb + r], sw) : 0.f;
        dw_w_quad<KMAX>(gv, smx + qb, K, quad_mask(t0 + d + qb, Lout, qb, T), acc);
    }
    if (threadIdx.x == 0) {  // grad_y positions outside every tile's share [d, tiles*T + d)
        auto add = [&](int t) {
            const float gt = mul_ieee(to_acc(gy[(long long)row * Lout + t]), sw);
#pragma unroll
            for (int k = 0; k < KMAX; ++k) {
                if (k < K) {
                    const long long j = src_index(t + k, g.L, g.pl, g.mode);
                    acc[k] = fma_ieee(gt, j >= 0 ? to_acc(x[(long long)row * L + j]) : 0.f, acc[k]);
                }
            }
        };
        if (tile == 0)
            for (int t = 0; t < d && t < Lout; ++t) add(t);
        if (tile == tiles - 1)
            for (int t = max((int)tiles * T + d, 0); t < Lout; ++t) add(t);
    }
    __syncthreads();  // sm is reused for the per-warp results
    dw_w_partial<KMAX>(acc, sm, K, partial + ((long long)(n * tiles + tile) * C + c) * K);
}

// ---------------------------------------------------------------------------------------
// Depthwise with few taps (K <= 4), stride 1, dilation 1, input rows of whole 16-byte vectors
// (L a multiple of 8): register-window kernels, no shared-memory staging. A thread owns chunks
// of 8 consecutive outputs (DWR_CHUNKS of them; a warp's lanes take consecutive chunks) whose
// stores are whole aligned 16-byte vectors: chunks are aligned in the flat output array, so a
// row whose start is not aligned (L_out = L + 3 for K = 4, padding 3) begins and ends with a
// partial chunk. The window of 8 + K - 1 inputs a chunk needs starts anywhere: the thread loads
// the NV aligned 16-byte vectors around it as raw 32-bit words (all its loads issued before any
// use), takes the window out of them at the block-uniform offset (shift_window: 16-bit storage
// by a switch over constant offsets, float32 by word selects), converts it to float once and
// computes the 8 outputs: per output K fused multiply-adds and one
// bias add. Chunks that meet a row end (padding map, zeros, or a row boundary inside the chunk)
// take a scalar path with the same operations in the same order. Sums: taps ascending (forward)
// / descending (grad_x), then the bias (+0 without one): bitwise those of dw_vec / dw_bwd_vec.
// Deterministic.
#define DWR_CHUNKS 2

// 16-byte vectors per window: enough for 8 + K - 1 elements at any offset below a vector.
template <typename S, int K, int ST = 1> struct Dwr {
    static constexpr int VE = 16 / sizeof(S), NW = 8 * ST + K - 1, NV = (VE - 1 + NW + VE - 1) / VE, WORDS = 4 * NV;
};

// A 16-bit pattern as float (exact).
template <typename S> __device__ __forceinline__ float bits_to_float(unsigned h);
template <> __device__ __forceinline__ float bits_to_float<__half>(unsigned h) {
    return __half2float(__ushort_as_half((unsigned short)h));
}
template <> __device__ __forceinline__ float bits_to_float<bf16_t>(unsigned h) {
    return __uint_as_float(h << 16);  // bfloat16 is the high half of a float
}
template <> __device__ __forceinline__ float bits_to_float<float>(unsigned h) { return __uint_as_float(h); }

// The 16-byte vectors at src + A (A a multiple of VE) that hold elements e0 .. e0 + NW - 1, as
// words: NV - 1 of them, or NV where the window reaches into the last (zeros in its place
// otherwise; most rows need one vector less than the worst case).
template <typename S, int K, int ST = 1>
__device__ __forceinline__ void load_vectors(const S* __restrict__ src, long long A, int e0, unsigned* wd) {
    typedef Dwr<S, K, ST> D;
    const uint4* p = reinterpret_cast<const uint4*>(src + A);
#pragma unroll
    for (int v = 0; v < D::NV; ++v) {
        const uint4 u = (v < D::NV - 1 || e0 + D::NW > (D::NV - 1) * D::VE) ? p[v] : make_uint4(0u, 0u, 0u, 0u);
        wd[4 * v] = u.x; wd[4 * v + 1] = u.y; wd[4 * v + 2] = u.z; wd[4 * v + 3] = u.w;
    }
}

// Element h (0: low, 1: high half) of a word of two 16-bit values as float: one instruction (h
// is a constant once the callers' loops are unrolled).
__device__ __forceinline__ float word_elem(unsigned v, int h, const bf16_t*) {
    return __uint_as_float(h ? v & 0xffff0000u : v << 16);  // bfloat16 is the high half of a float
}
__device__ __forceinline__ float word_elem(unsigned v, int h, const __half*) {
    const __half2 p = *reinterpret_cast<const __half2*>(&v);
    return h ? __high2float(p) : __low2float(p);
}

// win[m] = element E0 + m of the 16-bit elements held in wd (E0 a compile-time offset): one
// conversion an element, no shifts.
template <typename S, int NW, int E0>
__device__ __forceinline__ void window_at(const unsigned* wd, float* win) {
#pragma unroll
    for (int m = 0; m < NW; ++m) win[m] = word_elem(wd[(E0 + m) / 2], (E0 + m) % 2, (const S*)nullptr);
}

// win[m] = element e0 + m (m < NW, 0 <= e0 < VE) of the elements held in wd[0 .. D::WORDS).
// 16-bit storage: a switch over the 8 offsets, each case window_at with its offset as a constant
// -- the kernels' e0 is uniform over a block (chunk starts are multiples of 8 apart; dw_reg_gx at
// stride 2 takes two offsets a warp), so the branch does not diverge, and a window of NW elements
// costs NW conversions (H100, dw_reg_bwd fp16 K4: the shifts were ~80 of its ~480 instructions a
// chunk per window). float32, or any storage with DWR_SHIFT_SELECT (the backend's SHIFT_SWITCH =
// False, kept to time both in one run): a barrel shift by whole words (select by 2 words, then by
// 1) and, for 16-bit storage, by half a word (funnel shift); selects past WORDS take 0 (only the
// unused high half of the last funnel shift, for odd NW). float32 keeps the selects: the switch's
// moves raised its registers (ptxas: dw_reg<float, 4> 48 -> 62, dw_reg_gw<float, 1> 90 -> 114).
// Same values either way. Register note (H100, fourth session): __launch_bounds__(128, 4) on
// dw_reg / dw_reg_bwd (16-bit) measured slower (fwd+bwd 78% -> 71% of the floor: fewer resident
// warps), so the kernels keep (128).
template <typename S, int K, int ST = 1>
__device__ __forceinline__ void shift_window(const unsigned* wd, int e0, float* win) {
    typedef Dwr<S, K, ST> D;
    constexpr int EPW = 4 / sizeof(S);                  // elements per word
#ifndef DWR_SHIFT_SELECT
    if constexpr (EPW == 2) {
        static_assert(D::VE == 8, "offsets 0 .. 7");
#define DWR_CASE(E) case E: window_at<S, D::NW, E>(wd, win); break;
        switch (e0) { DWR_CASE(0) DWR_CASE(1) DWR_CASE(2) DWR_CASE(3) DWR_CASE(4) DWR_CASE(5) DWR_CASE(6) DWR_CASE(7) }
#undef DWR_CASE
        return;
    }
#endif
    constexpr int NWW = (D::NW + EPW - 1) / EPW + EPW - 1;  // words before the half-word shift
    const int ws = e0 / EPW;
    unsigned b[NWW + 1], c[NWW];
#pragma unroll
    for (int q = 0; q < NWW + 1; ++q) b[q] = (ws & 2) ? (q + 2 < D::WORDS ? wd[q + 2] : 0u) : (q < D::WORDS ? wd[q] : 0u);
#pragma unroll
    for (int q = 0; q < NWW; ++q) c[q] = (ws & 1) ? b[q + 1] : b[q];
    if constexpr (EPW == 1) {
#pragma unroll
        for (int m = 0; m < D::NW; ++m) win[m] = __uint_as_float(c[m]);
    } else {
        const unsigned sh = 16u * (unsigned)(e0 & 1);
#pragma unroll
        for (int q = 0; q < NWW - 1; ++q) {
            const unsigned d = __funnelshift_r(c[q], c[q + 1], sh);
            if (2 * q < D::NW) win[2 * q] = bits_to_float<S>(d & 0xffffu);
            if (2 * q + 1 < D::NW) win[2 * q + 1] = bits_to_float<S>(d >> 16);
        }
    }
}

// Element i of a row of n through the padding map (MAP: x in the forward, SPEC §2) or zero
// outside [0, n) (grad_y), as float.
template <typename S, bool MAP>
__device__ __forceinline__ float padded_elem(const S* __restrict__ row, int i, int n, const Geo& g) {
    if (i >= 0 && i < n) return to_acc(row[i]);
    if (!MAP || g.mode == 0 || i + g.pl < 0 || i + g.pl >= g.L + g.pl + g.pr) return 0.f;
    // src_index in 32-bit arithmetic, no division: circular pads are <= L (SPEC §2), so one wrap
    const int L = (int)g.L;
    const int j = g.mode == 1 ? (i < 0 ? -i : 2 * (L - 1) - i) : g.mode == 2 ? (i < 0 ? 0 : L - 1) : (i < 0 ? i + L : i - L);
    return to_acc(row[j]);
}

// padded_elem<S, true> (x through the padding map) without a branch around its load: one load
// at an index clamped into [0, L), then a select (not a product by zero: an infinite element
// stays out of a padded zero), so that an unrolled loop's loads are all in flight at once. In
// general use it cost registers (dw_reg 47 -> 56, K4 fp16 forward 0.197 -> 0.220 ms), and in
// dw_reg_bwd's row-end windows too (80 -> 87, K4 fp16 backward 0.443 -> 0.473 ms); dw_reg_bwd
// takes it for x at the grad_y positions past L only (reflect fp16 backward 0.494 -> 0.475 ms,
// circular bf16 0.501 -> 0.484; DWR_SCALAR_ENDS: padded_elem there too).
template <typename S>
__device__ __forceinline__ float mapped_elem_nb(const S* __restrict__ row, int i, const Geo& g) {
    const int L = (int)g.L;
    const bool inside = i >= 0 && i < L;
    const bool mapped = g.mode != 0 && i + g.pl >= 0 && i + g.pl < g.L + g.pl + g.pr;
    const int m = g.mode == 1 ? (i < 0 ? -i : 2 * (L - 1) - i) : g.mode == 2 ? (i < 0 ? 0 : L - 1) : (i < 0 ? i + L : i - L);
    const float v = to_acc(row[min(max(inside ? i : m, 0), L - 1)]);
    return (inside || mapped) ? v : 0.f;
}

// One output from global memory: sum_k elem(i + k * d) * ws[k], k ascending (fused multiply-adds from
// zero), elements through padded_elem<S, MAP>: the register-window kernels' scalar path at row
// ends, the same operations as their vector path.
template <typename S, bool MAP>
__device__ __forceinline__ float dw_point(const S* __restrict__ row, int i, int n, const Geo& g, const float* ws, int K,
                                          int d = 1) {
    float acc = 0.f;
#pragma unroll
    for (int k = 0; k < K; ++k) acc = fma_ieee(padded_elem<S, MAP>(row, i + k * d, n, g), ws[k], acc);
    return acc;
}

// 8 outputs y[r] = sum_k win[r * ST + k] * ws[k], k ascending (fused multiply-adds from zero).
template <int K, int ST = 1>
__device__ __forceinline__ void chunk_conv(const float* win, const float* ws, float y[8]) {
#pragma unroll
    for (int r = 0; r < 8; ++r) {
        float acc = 0.f;
#pragma unroll
        for (int k = 0; k < K; ++k) acc = fma_ieee(win[r * ST + k], ws[k], acc);
        y[r] = acc;
    }
}

// y[0..8) at the aligned address p: one 16-byte store (16-bit storage) or two (float32).
template <typename S> __device__ __forceinline__ void store8(S* p, const float y[8]) {
    if constexpr (sizeof(S) == 4) {
        store4<S>(p, y[0], y[1], y[2], y[3]);
        store4<S>(p + 4, y[4], y[5], y[6], y[7]);
    } else {
        *reinterpret_cast<uint4*>(p) = make_uint4(pack2<S>(y[0], y[1]), pack2<S>(y[2], y[3]), pack2<S>(y[4], y[5]),
                                                  pack2<S>(y[6], y[7]));
    }
}

// Lane-consecutive chunk j of this thread within its tile, chunks of ``per`` outputs (8; complex
// pairs 4): per * ((j * warps + warp) * 32 + lane).
__device__ __forceinline__ int dwr_offset(int j, int per = 8) {
    return per * ((j * (int)(blockDim.x >> 5) + (int)(threadIdx.x >> 5)) * 32 + (int)(threadIdx.x & 31));
}

// A row-end chunk's window, fetched by its warp. A chunk whose window leaves its row (or that
// straddles two rows) cannot use the 16-byte loads; through padded_elem one thread alone waits
// for its window's loads one after another (each behind a branch), and its block with it
// (dw_reg: 21-25 us of a 0.21 ms fp16 forward at L_out = L + 3, where every row has two such
// chunks). Instead, for each such chunk of the warp (ballot of `need`, lowest lane first),
// lane m < NW loads element i + m of the owner's window through padded_elem (MAP: the padding
// map; all NW loads in flight at once) and the owner gathers them by shuffles into win: the
// elements padded_elem gives, so the scalar path's sums bit for bit. Every lane of the warp
// calls it (converged); row and n are warp-uniform. Used by dw_reg and by dw_long with a non-zero
// padding mode (DWR_WARP_ENDS; DWR_SCALAR_ENDS, a KERNEL_DEFINES variant for scripts/gpu_ab.py,
// restores the scalar ends). Not by dw_reg_bwd: measured slower there twice (fp32 K4 backward
// 0.638 -> 0.679 and 0.684 -> 0.721 ms, the second with the vote hoisted to the loads and a
// uniform branch around the fetch; fp16 0.429 -> 0.439 and 0.473 -> 0.480).
#ifdef DWR_SCALAR_ENDS
#define DWR_WARP_ENDS false
#else
#define DWR_WARP_ENDS true
#endif
template <typename S, bool MAP, int NW>
__device__ __forceinline__ void warp_window(bool need, const S* __restrict__ row, int i, int n, const Geo& g, float* win) {
    static_assert(NW <= 32, "an element a lane");
    const int lane = (int)threadIdx.x & 31;
    unsigned todo = __ballot_sync(0xffffffffu, need);
    while (todo) {
        const int src = __ffs(todo) - 1;
        todo &= todo - 1;
        const int a = __shfl_sync(0xffffffffu, i, src);
        const float v = lane < NW ? padded_elem<S, MAP>(row, a + lane, n, g) : 0.f;
#pragma unroll
        for (int m = 0; m < NW; ++m) {
            const float u = __shfl_sync(0xffffffffu, v, m);
            if (lane == src) win[m] = u;
        }
    }
}

// Forward: y[n, c, o] = sum_k xp[n, c / m, o * ST + k] * (w[c, k] * s) + b[c] * s (m = C_out / C_in:
// depth multiplier, one input channel per group; stride ST = 1 or 2: a window of 8 * ST + K - 1). Block: tile of T = 16 *
// blockDim.x (<= 128) consecutive chunks' outputs of one row; chunk starts o0 = t0 - delta + 8m,
// delta = (row * L_out) mod 8, so that the flat output index of every chunk is a multiple of 8.
// A chunk at a row end (window outside the row, or outputs in two rows) takes its window from
// warp_window (DWR_SCALAR_ENDS: dw_point output by output, the same sums; kept compilable so that
// scripts/gpu_ab.py can time the two) and stores its outputs in this row one by one.
template <typename S, int K, int ST = 1>
__global__ void __launch_bounds__(128) dw_reg(const S* __restrict__ x, const S* __restrict__ w,
                                              const S* __restrict__ b, S* __restrict__ y, GEO_ARGS, double scale) {
    GEO_MAKE
    typedef Dwr<S, K, ST> D;
    const int L = (int)g.L, Lout = (int)g.Lout, pl = (int)g.pl, T = 8 * DWR_CHUNKS * (int)blockDim.x;
    const unsigned tiles = (unsigned)((Lout + 7 + T - 1) / T);
    const unsigned row = blockIdx.x / tiles, c = row % (unsigned)g.Cout;  // (n, c) of y
    const unsigned xrow = (row / (unsigned)g.Cout) * (unsigned)g.Cin + c / (unsigned)(g.Cout / g.Cin);  // multipliers
    const int delta = (int)(((long long)row * Lout) & 7);
    const int t0 = (int)(blockIdx.x - row * tiles) * T - delta;
    const long long xend = g.N * g.Cin * g.L;  // elements of x
    const S* xr = x + (long long)xrow * L;
    unsigned wd[DWR_CHUNKS][D::WORDS];
    bool fast[DWR_CHUNKS];
    int e0[DWR_CHUNKS];
#pragma unroll
    for (int j = 0; j < DWR_CHUNKS; ++j) {  // every load first
        const int o0 = t0 + dwr_offset(j), i0 = o0 * ST - pl;  // outputs o0..o0+7 read x[i0 .. i0 + NW)
        const long long A = ((long long)xrow * L + i0) & ~(long long)(D::VE - 1);
        e0[j] = (int)((long long)xrow * L + i0 - A);
        fast[j] = o0 >= 0 && o0 + 8 <= Lout && i0 >= 0 && i0 + D::NW <= L && A + D::NV * D::VE <= xend;
        if (fast[j]) load_vectors<S, K, ST>(x, A, e0[j], wd[j]);
    }
    const float s = (float)scale;
    float ws[K];
#pragma unroll
    for (int k = 0; k < K; ++k) ws[k] = mul_ieee(to_acc(w[(long long)c * K + k]), s);
    const float br = b ? mul_ieee(to_acc(b[c]), s) : 0.f;
    S* yr = y + (long long)row * Lout;
#pragma unroll
    for (int j = 0; j < DWR_CHUNKS; ++j) {
        const int o0 = t0 + dwr_offset(j);
        float win[D::NW], out[8];
#ifdef DWR_SCALAR_ENDS
        if (fast[j]) {
            shift_window<S, K, ST>(wd[j], e0[j], win);
            chunk_conv<K, ST>(win, ws, out);
#pragma unroll
            for (int r = 0; r < 8; ++r) out[r] = add_ieee(out[r], br);
            store8<S>(yr + o0, out);
        } else {
            for (int r = 0; r < 8; ++r) {
                const int o = o0 + r;
                if (o >= 0 && o < Lout) yr[o] = from_acc<S>(add_ieee(dw_point<S, true>(xr, o * ST - pl, L, g, ws, K), br));
            }
        }
#else
        const bool edge = !fast[j] && o0 + 8 > 0 && o0 < Lout;  // a row-end chunk with outputs in this row
        if (fast[j]) shift_window<S, K, ST>(wd[j], e0[j], win);
        warp_window<S, true, D::NW>(edge, xr, o0 * ST - pl, L, g, win);
        if (!fast[j] && !edge) continue;
        chunk_conv<K, ST>(win, ws, out);
#pragma unroll
        for (int r = 0; r < 8; ++r) out[r] = add_ieee(out[r], br);
        if (fast[j]) {
            store8<S>(yr + o0, out);
        } else {
#pragma unroll
            for (int r = 0; r < 8; ++r)
                if (o0 + r >= 0 && o0 + r < Lout) yr[o0 + r] = from_acc<S>(out[r]);
        }
#endif
    }
}

// Backward in one pass, 0 <= pl < K (so PG = K - 1 - pl >= 0): block = tile of T grad_x
// positions of one row (aligned: L is a multiple of 8); per chunk o0 .. o0+7:
// grad_x[o0 + r] = sum_k' gy[o0 + r - PG + k'] * (w[K-1-k'] * s_gx) (k' ascending, then +0: dw_vec's
// sums; the extra padded copies near the row ends are added by dw_bwd_edges afterwards), and
// grad_w's share sum_t (gy[t] * s_gw) * xp[t - pl + k] over t = o0 + r < L_out (the last chunk of a
// row also takes t in [L, L_out)), summed over the thread's chunks in order, a fixed shuffle tree
// per warp and the warps in order: partial[(n * tiles + tile) * C + c][k]. conv_grad_w_final sums
// the partials in a fixed order. Deterministic.
template <typename S, int K>
__global__ void __launch_bounds__(128) dw_reg_bwd(const S* __restrict__ gy, const S* __restrict__ w,
                                                  const S* __restrict__ x, S* __restrict__ gx,
                                                  float* __restrict__ partial, GEO_ARGS, double s_gx, double s_gw) {
    __shared__ float red[4 * K];
    GEO_MAKE
    typedef Dwr<S, K> D;
    const int L = (int)g.L, Lout = (int)g.Lout, pl = (int)g.pl, PG = K - 1 - pl, T = 8 * DWR_CHUNKS * (int)blockDim.x;
    const unsigned tiles = (unsigned)((L + T - 1) / T), C = (unsigned)g.Cout;
    const unsigned row = blockIdx.x / tiles, tile = blockIdx.x - row * tiles;
    const unsigned n = row / C, c = row - n * C;
    const int t0 = (int)tile * T;
    const long long xend = g.N * g.Cout * g.L, gend = g.N * g.Cout * g.Lout;
    const S* gr = gy + (long long)row * Lout;
    const S* xr = x + (long long)row * L;
    unsigned gwd[DWR_CHUNKS][D::WORDS], xwd[DWR_CHUNKS][D::WORDS];
    bool fast[DWR_CHUNKS];
    int eg[DWR_CHUNKS], ex[DWR_CHUNKS];
#pragma unroll
    for (int j = 0; j < DWR_CHUNKS; ++j) {
        const int o0 = t0 + dwr_offset(j), g0 = o0 - PG, i0 = o0 - pl;
        const long long Ag = ((long long)row * Lout + g0) & ~(long long)(D::VE - 1);
        const long long Ax = ((long long)row * L + i0) & ~(long long)(D::VE - 1);
        eg[j] = (int)((long long)row * Lout + g0 - Ag);
        ex[j] = (int)((long long)row * L + i0 - Ax);
        fast[j] = o0 < L && g0 >= 0 && g0 + D::NW <= Lout && i0 >= 0 && i0 + D::NW <= L &&
                  Ag + D::NV * D::VE <= gend && Ax + D::NV * D::VE <= xend;
        if (fast[j]) {
            load_vectors<S, K>(gy, Ag, eg[j], gwd[j]);
            load_vectors<S, K>(x, Ax, ex[j], xwd[j]);
        }
    }
    const float sx = (float)s_gx, sw = (float)s_gw;
    float ws[K], acc[K];
#pragma unroll
    for (int k = 0; k < K; ++k) {
        ws[k] = mul_ieee(to_acc(w[(long long)c * K + K - 1 - k]), sx);
        acc[k] = 0.f;
    }
    S* gxr = gx + (long long)row * L;
#pragma unroll
    for (int j = 0; j < DWR_CHUNKS; ++j) {
        const int o0 = t0 + dwr_offset(j);
        if (o0 >= L) continue;
        float gwin[D::NW], xwin[D::NW], out[8];
        if (fast[j]) {
            shift_window<S, K>(gwd[j], eg[j], gwin);
            shift_window<S, K>(xwd[j], ex[j], xwin);
        } else {
#pragma unroll
            for (int m = 0; m < D::NW; ++m) {  // unrolled: the windows stay in registers
                gwin[m] = padded_elem<S, false>(gr, o0 - PG + m, Lout, g);
                xwin[m] = padded_elem<S, true>(xr, o0 - pl + m, L, g);
            }
        }
        chunk_conv<K>(gwin, ws, out);
#pragma unroll
        for (int r = 0; r < 8; ++r) out[r] = add_ieee(out[r], 0.f);
        store8<S>(gxr + o0, out);
#pragma unroll
        for (int r = 0; r < 8; ++r) {
            if (o0 + r < Lout) {  // grad_w: gy[o0 + r] is window position PG + r
                const float gs = mul_ieee(gwin[PG + r], sw);
#pragma unroll
                for (int k = 0; k < K; ++k) acc[k] = fma_ieee(gs, xwin[r + k], acc[k]);
            }
        }
        if (o0 + 8 == L)  // grad_y positions past L (L_out > L)
            for (int t = L; t < Lout; ++t) {
                const float gs = mul_ieee(to_acc(gr[t]), sw);
#pragma unroll
                for (int k = 0; k < K; ++k) {
                    const float xv = DWR_WARP_ENDS ? mapped_elem_nb<S>(xr, t - pl + k, g) : padded_elem<S, true>(xr, t - pl + k, L, g);
                    acc[k] = fma_ieee(gs, xv, acc[k]);
                }
            }
    }
    dw_w_partial<K>(acc, red, K, partial + ((long long)(n * tiles + tile) * C + c) * K);
}

// Depthwise with many taps (K <= 64), stride 1, dilation DIL (1, or 2 for K <= 16): the
// register-window design of dw_reg with the taps in blocks of 8 (scaled, in shared memory, read
// as broadcasts) and the window slid over the input 8 * DIL elements at a time: group g = window
// elements 8g .. 8g+7, formed from two 16-byte-aligned segments of the row by the runtime shift
// (near a row end by warp_window, a group at a time, through the padding map forward and zeros
// outside grad_y's row); tap block b uses groups b * DIL
// .. b * DIL + DIL (output r, tap k: window element r + k * DIL). Forward (BWD
// false: x rows, padding map, bias) or grad_x (BWD: grad_y rows, zeros outside, taps reversed,
// the extra padded copies added by dw_bwd_edges). Taps unrolled up to KMAX (8, 16, 32, 64), all
// the window's segments loaded before any use. One chunk of 8 outputs a thread, chunks
// aligned in the flat output as in dw_reg; chunks straddling a row boundary take the scalar
// path. Same sums in the same order as dw_vec (taps ascending, then the bias): bitwise.
template <typename S>
__device__ __forceinline__ void load_segment(const S* __restrict__ src, long long A, unsigned* wd) {
#pragma unroll
    for (int v = 0; v < (int)sizeof(S) / 2; ++v) {  // 8 elements: one 16-byte vector, two for float32
        const uint4 u = reinterpret_cast<const uint4*>(src + A)[v];
        wd[4 * v] = u.x; wd[4 * v + 1] = u.y; wd[4 * v + 2] = u.z; wd[4 * v + 3] = u.w;
    }
}

// Window group from two segments a (elements 0..7) and b (8..15) shifted by e0 (< VE): 8 floats.
template <typename S>
__device__ __forceinline__ void group_from(const unsigned* a, const unsigned* b, int e0, float* out) {
    constexpr int SW = 8 * sizeof(S) / 4;  // words per segment
    unsigned wd[2 * SW];
#pragma unroll
    for (int q = 0; q < SW; ++q) { wd[q] = a[q]; wd[SW + q] = b[q]; }
    shift_window<S, 1>(wd, e0, out);  // NW = 8
}

// Taps 8 b .. 8 b + 7 of the staged (scaled) taps ws as two 16-byte broadcast loads.
__device__ __forceinline__ void taps8(const float* ws, int b, float tk[8]) {
    const float4 u0 = *reinterpret_cast<const float4*>(ws + 8 * b);
    const float4 u1 = *reinterpret_cast<const float4*>(ws + 8 * b + 4);
    tk[0] = u0.x; tk[1] = u0.y; tk[2] = u0.z; tk[3] = u0.w; tk[4] = u1.x; tk[5] = u1.y; tk[6] = u1.z; tk[7] = u1.w;
}

template <typename S, int KMAX, bool BWD, int DIL = 1>
__global__ void __launch_bounds__(128) dw_long(const S* __restrict__ in, const S* __restrict__ w,
                                               const S* __restrict__ b, S* __restrict__ out, GEO_ARGS, double scale) {
    constexpr int NB = KMAX / 8, SW = 8 * sizeof(S) / 4, VE = 16 / sizeof(S), NSEG = NB * DIL + 2;
    __shared__ __align__(16) float ws[KMAX];
    GEO_MAKE
    const int K = (int)g.K, nb = (K + 7) / 8, T = 8 * (int)blockDim.x;  // K <= KMAX; g.dil == DIL
    const int Lin = BWD ? (int)g.Lout : (int)g.L, Lo = BWD ? (int)g.L : (int)g.Lout;
    const int lead = BWD ? (K - 1) * DIL - (int)g.pl : (int)g.pl;  // window start = o - lead
    const unsigned tiles = (unsigned)((Lo + 7 + T - 1) / T);
    const unsigned row = blockIdx.x / tiles, c = row % (unsigned)g.Cout;
    const int delta = (int)(((long long)row * Lo) & 7);
    const int o0 = (int)(blockIdx.x - row * tiles) * T - delta + 8 * (int)threadIdx.x;
    const int i0 = o0 - lead;  // window element m = input i0 + m, m < 8 * nb * DIL + 8
    const long long F = (long long)row * Lin + i0, A = F & ~(long long)(VE - 1);
    const long long iend = BWD ? g.N * g.Cout * g.Lout : g.N * g.Cout * g.L;
    const bool whole = o0 >= 0 && o0 + 8 <= Lo;  // else the chunk straddles a row boundary
    const bool fast = whole && i0 >= 0 && i0 + (K - 1) * DIL + 8 <= Lin && A + 8LL * (nb * DIL + 2) <= iend;
    unsigned seg[NSEG][SW];
    if (fast) {  // every segment of the window, loads issued before any use
#pragma unroll
        for (int q = 0; q < NSEG; ++q)
            if (q < nb * DIL + 2) load_segment<S>(in, A + 8 * q, seg[q]);
    }
    const float s = (float)scale;
    for (int k = threadIdx.x; k < KMAX; k += blockDim.x)
        ws[k] = k < K ? mul_ieee(to_acc(w[(long long)c * K + (BWD ? K - 1 - k : k)]), s) : 0.f;
    __syncthreads();
    const float br = (!BWD && b) ? mul_ieee(to_acc(b[c]), s) : 0.f;
    const S* ir = in + (long long)row * Lin;
    S* orow = out + (long long)row * Lo;
    // with warp_window (warp_ends) every lane stays to the end (the warp fetches row-end windows
    // together); lanes without a whole chunk in the row compute on garbage and store nothing
    const bool live = o0 + 8 > 0 && o0 < Lo, go = live && whole, edge = go && !fast;
    // zeros padding keeps the scalar ends: its padded elements are no loads, and the warp's
    // fetch measured slower there (K9 fp32 forward 0.109 -> 0.111 ms in two runs; dilation 2
    // 0.129 -> 0.131 in one, 0.138 -> 0.132 in the other: noise)
    const bool warp_ends = DWR_WARP_ENDS && g.mode != 0;
    if (!warp_ends && !live) return;
    if (live && !whole) {  // scalar, the same operations in the same order
        for (int r = 0; r < 8; ++r) {
            const int o = o0 + r;
            if (o >= 0 && o < Lo) orow[o] = from_acc<S>(add_ieee(dw_point<S, !BWD>(ir, o - lead, Lin, g, ws, K, DIL), br));
        }
        if (!warp_ends) return;
    }
    const int e0 = (int)(F - A);
    // win: groups bk * DIL .. bk * DIL + DIL of the window (tap block bk reads win[r + k * DIL])
    float win[8 * (DIL + 1)], acc[8];
#pragma unroll
    for (int r = 0; r < 8; ++r) acc[r] = 0.f;
    if (fast) group_from<S>(seg[0], seg[1], e0, win);
    else if (!warp_ends) {
#pragma unroll
        for (int m = 0; m < 8; ++m) win[m] = padded_elem<S, !BWD>(ir, i0 + m, Lin, g);
    }
    if (warp_ends) warp_window<S, !BWD, 8>(edge, ir, i0, Lin, g, win);
#pragma unroll
    for (int bk = 0; bk < NB; ++bk) {
        if (bk < nb) {
#pragma unroll
            for (int q = 1; q <= DIL; ++q) {
                const int gq = bk * DIL + q;  // window group gq into slot q
                if (fast) group_from<S>(seg[gq], seg[gq + 1], e0, win + 8 * q);
                else if (!warp_ends) {
#pragma unroll
                    for (int m = 0; m < 8; ++m) win[8 * q + m] = padded_elem<S, !BWD>(ir, i0 + 8 * gq + m, Lin, g);
                }
                if (warp_ends) warp_window<S, !BWD, 8>(edge, ir, i0 + 8 * gq, Lin, g, win + 8 * q);
            }
            float tk[8];
            taps8(ws, bk, tk);
            const int kn = K - 8 * bk;  // taps of this block: 8, or fewer in the last
#pragma unroll
            for (int k = 0; k < 8; ++k) {
                if (k < kn) {
#pragma unroll
                    for (int r = 0; r < 8; ++r) acc[r] = fma_ieee(win[r + k * DIL], tk[k], acc[r]);
                }
            }
#pragma unroll
            for (int m = 0; m < 8; ++m) win[m] = win[8 * DIL + m];
        }
    }
    if (!go) return;
#pragma unroll
    for (int r = 0; r < 8; ++r) acc[r] = add_ieee(acc[r], br);
    store8<S>(orow + o0, acc);
}

// Depthwise grad_x at position j of row (n, c) from global memory, before the bias: the taps
// (reversed, d apart, grad_y zero outside its row) ascending from zero, then the extra padded copies
// of x[j] -- the sums of dw_vec and the register-window kernels.
template <typename S, bool LEAN = false>
__device__ __forceinline__ float dw_gx_point(const S* __restrict__ gy, const S* __restrict__ w, const Geo& g,
                                             unsigned row, unsigned c, int j, float s) {
    const int K = (int)g.K, Lout = (int)g.Lout, d = (int)g.dil, PG = (K - 1) * d - (int)g.pl;
    float acc = 0.f;
    for (int k = 0; k < K; ++k) {
        const float v = padded_elem<S, false>(gy + (long long)row * Lout, j - PG + k * d, Lout, g);
        acc = fma_ieee(v, mul_ieee(to_acc(w[(long long)c * K + K - 1 - k]), s), acc);
    }
    dw_add_copies<S, LEAN>(gy, w, g, row, c, j, (int)g.L, s, acc);
    return acc;
}

// dw_gx_point at positions o0 .. o0 + n - 1 of a row, stored (+0), out of line: dw_wide's threads
// near the row ends with a non-zero padding mode (its accumulators stay in registers elsewhere).
template <typename S>
__device__ __noinline__ void dw_gx_points(const S* __restrict__ gy, const S* __restrict__ w, S* __restrict__ gx,
                                          const Geo g, unsigned row, unsigned c, int o0, int n, float s) {
    for (int r = 0; r < n; ++r)
        gx[(long long)row * g.L + o0 + r] = from_acc<S>(add_ieee(dw_gx_point<S>(gy, w, g, row, c, o0 + r, s), 0.f));
}

// grad_x near the row ends after dw_reg_bwd, dw_long or dw_dil, for a non-zero padding mode: one
// thread per position j within E = max(pl, pr) + 1 of either end recomputes their sum (the same
// operations in the same order, grad_y zero outside its row; taps d apart) and adds the extra
// padded copies of x[j].
template <typename S>
__global__ void dw_bwd_edges(const S* __restrict__ gy, const S* __restrict__ w, S* __restrict__ gx, GEO_ARGS,
                             double s_gx) {
    GEO_MAKE
    const int L = (int)g.L;
    const int E = (int)(g.pl > g.pr ? g.pl : g.pr) + 1, nE = 2 * E < L ? 2 * E : L;
    const long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= g.N * g.Cout * nE) return;
    const unsigned row = (unsigned)(idx / nE), c = row % (unsigned)g.Cout;
    const int q = (int)(idx - (long long)row * nE), j = (q < E || nE == L) ? q : L - nE + q;
    gx[(long long)row * L + j] = from_acc<S>(add_ieee(dw_gx_point<S, true>(gy, w, g, row, c, j, (float)s_gx), 0.f));
}

// sm[sidx<true>(q)] = element i0 + q of a row of n (padded_elem<S, MAP>: the padding map for x,
// zeros outside grad_y's row) for q < span, zeros for span <= q < alloc. The row's elements in
// whole 16-byte vectors (up to DWW_VECS a thread, every load issued before any store: a block's
// span is ~2000 elements, and one dependent load a thread in flight leaves the staging
// latency-bound), the ragged ends and the padded positions element by element.
#define DWW_VECS 5
// The first element at or after a of a row that starts a 16-byte vector.
template <typename S> __device__ __forceinline__ int vec_start(const S* row, int a) {
    const int mis = (int)((reinterpret_cast<size_t>(row + a) & 15) / sizeof(S));
    return a + (mis ? 16 / (int)sizeof(S) - mis : 0);
}
// A 16-byte vector of S as floats at staged elements q .. q + 16 / sizeof(S) - 1 (sidx<true>).
template <typename S>
__device__ __forceinline__ void stage_vec(float* sm, int q, uint4 u) {
    const unsigned wd[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int m = 0; m < 16 / (int)sizeof(S); ++m) {
        if constexpr (sizeof(S) == 4) sm[sidx<true>(q + m)] = __uint_as_float(wd[m]);
        else sm[sidx<true>(q + m)] = bits_to_float<S>((wd[m / 2] >> (16 * (m & 1))) & 0xffffu);
    }
}
template <typename S, bool MAP>
__device__ __forceinline__ void stage_span(float* sm, const S* __restrict__ row, int i0, int span, int alloc, int n,
                                           const Geo& g) {
    constexpr int VE = 16 / sizeof(S);
    const int nt = (int)blockDim.x, a = i0 > 0 ? i0 : 0, e = i0 + span < n ? i0 + span : n;  // row elements [a, e)
    const int pa = vec_start<S>(row, a);
    const int nv = e > pa ? (e - pa) / VE : 0, pe = pa + nv * VE;
    const uint4* vp = reinterpret_cast<const uint4*>(row + pa);
    for (int v0 = 0; v0 < nv; v0 += DWW_VECS * nt) {
        uint4 u[DWW_VECS];
#pragma unroll
        for (int j = 0; j < DWW_VECS; ++j) {
            const int v = v0 + j * nt + (int)threadIdx.x;
            if (v < nv) u[j] = vp[v];
        }
#pragma unroll
        for (int j = 0; j < DWW_VECS; ++j) {
            const int v = v0 + j * nt + (int)threadIdx.x;
            if (v < nv) stage_vec<S>(sm, pa + v * VE - i0, u[j]);
        }
    }
    // the rest: the ragged ends and padded positions (q < qa, qe <= q < span), zeros past the span
    const int qa = min(max(pa - i0, 0), span), qe = max(min(pe - i0, span), qa);
    for (int q = (int)threadIdx.x; q < qa; q += nt) sm[sidx<true>(q)] = padded_elem<S, MAP>(row, i0 + q, n, g);
    for (int q = qe + (int)threadIdx.x; q < alloc; q += nt)
        sm[sidx<true>(q)] = q < span ? padded_elem<S, MAP>(row, i0 + q, n, g) : 0.f;
}

// Depthwise forward (BWD false) or grad_x (BWD: grad_y rows, reversed taps) for long filters,
// stride 1, dilation 1, 8 * ceil(K / 8) = KMAX (24 .. 64): a tile of T outputs of one row, its span of inputs
// staged in shared memory as floats by stage_span (through the padding map forward, zeros outside
// grad_y's row), laid out with sidx<true> (bank-conflict-free 16-byte loads), and DWW_PER = 16
// consecutive outputs a thread: per block of 8 taps the window of 24 inputs slides by 8 (two
// 16-byte loads) for 128 fused multiply-adds, the taps read as two broadcast 16-byte loads (dw_vec
// re-reads a window of KMAX + 4 inputs for every 4 outputs: 17 loads per 256 FMAs at K = 64, the
// shared-memory pipe's limit). Same sums in the same order as dw_vec (taps ascending from zero,
// grad_x's extra padded copies, then the bias; threads within max(pl, pr) + 1 of a row end
// with a non-zero padding mode through dw_gx_points): bitwise. Shared memory: KMAX taps, then
// sidx<true>(alloc) floats, alloc = T + 8 * ceil(K / 8) (zeros past the span). Tiles of T (a
// multiple of 16, at most 16 * blockDim.x) cover a row from its aligned start (as dw_reg's), so
// that every whole chunk of 8 outputs is one 16-byte store (two for float32).
#define DWW_PER 16

// The 16 outputs of a chunk at staged element q (sidx<true> layout): acc[r] += win[r + k] *
// taps[k], taps ascending in NB blocks of 8 (in the last block only k < kn_last), the window of
// 24 staged inputs slid by 8 a block (two 16-byte loads; the slide is register renaming once
// unrolled), the block's taps as two broadcasts: dw_wide's and grp_wide's inner loop. nb <= NB
// (runtime; dw_wide_bwd's KMAX covers several K): blocks past nb are skipped, the last taken block
// only up to kn_last (nb = NB, a constant, elsewhere: the same code as without it).
template <int NB>
__device__ __forceinline__ void wide_fwd_taps(const float* sm, int q, const float* taps, int kn_last,
                                              float acc[DWW_PER], int nb = NB) {
    float win[24];
    staged4<4>(sm, q, win);  // inputs q .. q + 15
#pragma unroll
    for (int bk = 0; bk < NB; ++bk) {
        staged4<2>(sm, q + 8 * bk + 16, win + 16);  // inputs q + 8 bk + 16 .. + 23
        float tk[8];
        taps8(taps, bk, tk);
#pragma unroll
        for (int k = 0; k < 8; ++k) {
            if (bk < nb - 1 || (bk == nb - 1 && k < kn_last)) {
#pragma unroll
                for (int r = 0; r < DWW_PER; ++r) acc[r] = fma_ieee(win[r + k], tk[k], acc[r]);
            }
        }
#pragma unroll
        for (int m = 0; m < 16; ++m) win[m] = win[m + 8];
    }
}

// grad_w's counterpart for a chunk's 16 scaled grad_y values gv: acc[8 bk + k] += gv[r] *
// staged[q + r + 8 bk + k], r ascending, NB tap blocks (in the last only k < kn_last), the same
// sliding window: dw_wide_gw's, grp_wide_gw's and dw_wide_bwd's inner loop (nb as in wide_fwd_taps).
template <int NB>
__device__ __forceinline__ void wide_gw_taps(const float* sm, int q, const float gv[DWW_PER], int kn_last, float* acc,
                                             int nb = NB) {
    float win[24];
    staged4<4>(sm, q, win);  // staged q .. q + 15
#pragma unroll
    for (int bk = 0; bk < NB; ++bk) {
        staged4<2>(sm, q + 8 * bk + 16, win + 16);  // staged q + 8 bk + 16 .. + 23
#pragma unroll
        for (int k = 0; k < 8; ++k) {
            if (bk < nb - 1 || (bk == nb - 1 && k < kn_last)) {
#pragma unroll
                for (int r = 0; r < DWW_PER; ++r) acc[8 * bk + k] = fma_ieee(gv[r], win[r + k], acc[8 * bk + k]);
            }
        }
#pragma unroll
        for (int m = 0; m < 16; ++m) win[m] = win[m + 8];
    }
}
template <typename S, int KMAX, bool BWD>
__global__ void __launch_bounds__(256) dw_wide(const S* __restrict__ in, const S* __restrict__ w,
                                               const S* __restrict__ b, S* __restrict__ out, GEO_ARGS, double scale,
                                               int T) {
    constexpr int NB = KMAX / 8;  // tap blocks: exactly ceil(K / 8) (the host's instantiation)
    extern __shared__ __align__(16) unsigned char smem_raw[];
    float* ws = reinterpret_cast<float*>(smem_raw);
    float* sm = ws + KMAX;
    GEO_MAKE
    const int K = (int)g.K, pl = (int)g.pl;
    const int Lin = BWD ? (int)g.Lout : (int)g.L, Lo = BWD ? (int)g.L : (int)g.Lout;
    // tiles from the aligned start before the row (delta = flat row start mod 8; rows of whole
    // 8-element chunks start aligned): every chunk of 8 outputs at a flat multiple of 8
    const unsigned tiles = (unsigned)(((Lo % 8 ? Lo + 7 : Lo) + T - 1) / T);
    const unsigned row = blockIdx.x / tiles;  // n * C + c
    const int delta = (int)(((long long)row * Lo) & 7);
    const int t0 = (int)(blockIdx.x - row * tiles) * T - delta;
    const unsigned c = row % (unsigned)g.Cout;
    const int span = T + K - 1, alloc = T + 8 * NB;  // T: a multiple of DWW_PER
    const float s = (float)scale;
    for (int k = threadIdx.x; k < KMAX; k += blockDim.x)  // scaled taps (reversed for grad_x), zeros past K
        ws[k] = k < K ? mul_ieee(to_acc(w[(long long)c * K + (BWD ? K - 1 - k : k)]), s) : 0.f;
    const int i0 = BWD ? t0 + pl - (K - 1) : t0 - pl;
    stage_span<S, !BWD>(sm, in + (long long)row * Lin, i0, span, alloc, Lin, g);
    __syncthreads();
    const int qb = DWW_PER * (int)threadIdx.x, o0 = t0 + qb;  // outputs o0 .. o0 + 15 (those in the row and tile)
    if (qb >= T || o0 >= Lo || o0 + DWW_PER <= 0) return;
    S* orow = out + (long long)row * Lo;
    if (BWD && g.mode != 0) {  // near a row end: the extra padded copies, the whole chunk out of line
        const int E = (int)(g.pl > g.pr ? g.pl : g.pr) + 1;
        if (o0 < E || o0 + DWW_PER > Lo - E) {
            const int lo = o0 > 0 ? o0 : 0, hi = min(o0 + DWW_PER, Lo);
            dw_gx_points<S>(in, w, out, g, row, c, lo, hi - lo, s);
            return;
        }
    }
    float acc[DWW_PER];
#pragma unroll
    for (int r = 0; r < DWW_PER; ++r) acc[r] = 0.f;
    wide_fwd_taps<NB>(sm, qb, ws, K - 8 * (NB - 1), acc);
    const float br = (!BWD && b) ? mul_ieee(to_acc(b[c]), s) : 0.f;
#pragma unroll
    for (int r = 0; r < DWW_PER; ++r) acc[r] = add_ieee(acc[r], br);
#pragma unroll
    for (int h = 0; h < DWW_PER / 8; ++h) {  // two chunks of 8: one aligned store8 each, or element by element
        const int oh = o0 + 8 * h;
        if (oh >= 0 && oh + 8 <= Lo) {
            store8<S>(orow + oh, acc + 8 * h);
        } else {
            for (int r = 0; r < 8; ++r)
                if (oh + r >= 0 && oh + r < Lo) orow[oh + r] = from_acc<S>(acc[8 * h + r]);
        }
    }
}

// Depthwise grad_w partial sums for long filters (stride 1, dilation 1, 8 * ceil(K / 8) = KMAX):
// block = tile of T grad_y positions t of row (n, c), tiles from the aligned start before the row
// as in dw_wide (T a multiple of 16); the tile's x span (positions t - pl + k, through the padding
// map) staged by stage_span as in dw_wide's forward (zeros up to T + 2 KH). The taps are split in
// two halves of KH = 8 ceil(KMAX / 16) (half the accumulators and half the unrolled body a thread:
// with all 64 taps a thread, ncu saw 128 registers, 22% occupancy and instruction-cache stalls):
// warp w takes half w % 2 of the chunks of warp pair w / 2 (blockDim.x a multiple of 64), chunks of
// 16 positions qb = 16 (p * 32 + lane + j * 32 * pairs) (j = 0, 1, ..: the more chunks, the fewer
// block reductions per product): acc[k] += gy[r] * xp[t + r - pl + k], r ascending, only for positions t = tb + r
// inside the row (a zero stand-in would turn an infinite x into a NaN): a whole chunk with its
// grad_y (scaled) in registers (8- or 16-byte loads) and, per block of 8 taps, the window of 24
// staged x slid by 8; a chunk at a row end position by position from shared memory. Then per tap
// a fixed shuffle tree per warp and the warps of its half in order: partial[(n * tiles + tile) * C + c][k]; conv_grad_w_final sums them in a
// fixed order. Deterministic.
template <typename S, int KMAX>
__global__ void __launch_bounds__(128) dw_wide_gw(const S* __restrict__ gy, const S* __restrict__ x,
                                                  float* __restrict__ partial, GEO_ARGS, double scale, int T) {
    constexpr int NH = (KMAX / 8 + 1) / 2, KH = 8 * NH;  // tap blocks and taps of a half
    extern __shared__ __align__(16) unsigned char smem_raw[];
    float* sm = reinterpret_cast<float*>(smem_raw);
    GEO_MAKE
    const int K = (int)g.K, pl = (int)g.pl, L = (int)g.L, Lout = (int)g.Lout;
    const unsigned tiles = (unsigned)(((Lout % 8 ? Lout + 7 : Lout) + T - 1) / T), C = (unsigned)g.Cout;
    const unsigned row = blockIdx.x / tiles, tile = blockIdx.x - row * tiles;
    const int t0 = (int)tile * T - (int)(((long long)row * Lout) & 7);
    const int span = T + K - 1, alloc = T + 2 * KH;  // both halves' windows inside (zeros past the span)
    stage_span<S, true>(sm, x + (long long)row * L, t0 - pl, span, alloc, L, g);
    __syncthreads();
    const float s = (float)scale;
    // warp w takes taps h * KH .. h * KH + KH - 1 (h = w % 2) of the chunks of warp pair w / 2
    const int warp = (int)threadIdx.x >> 5, lane = (int)threadIdx.x & 31, h = warp & 1, tap0 = h * KH;
    const int pairs = (int)blockDim.x >> 6;
    float acc[KH];
#pragma unroll
    for (int k = 0; k < KH; ++k) acc[k] = 0.f;
    const S* grow = gy + (long long)row * Lout;
    for (int qb = DWW_PER * ((warp >> 1) * 32 + lane); qb < T; qb += DWW_PER * 32 * pairs) {
        const int tb = t0 + qb;  // positions tb .. tb + 15
        if (tb >= Lout) break;
        if (tb + DWW_PER <= 0) continue;
        if (tb < 0 || tb + DWW_PER > Lout) {  // a row end: the positions inside it, one at a time (same order)
            for (int r = 0; r < DWW_PER; ++r) {
                if (tb + r < 0 || tb + r >= Lout) continue;
                const float gr = mul_ieee(to_acc(grow[tb + r]), s);
#pragma unroll
                for (int k = 0; k < KH; ++k) acc[k] = fma_ieee(gr, sm[sidx<true>(qb + r + tap0 + k)], acc[k]);
            }
            continue;
        }
        float gv[DWW_PER];  // whole chunk: flat index a multiple of 8
#pragma unroll
        for (int m = 0; m < DWW_PER / 4; ++m) load4<S>(grow + tb + 4 * m, gv + 4 * m);
#pragma unroll
        for (int r = 0; r < DWW_PER; ++r) gv[r] = mul_ieee(gv[r], s);
        wide_gw_taps<NH>(sm, qb + tap0, gv, 8, acc);  // every tap of the half (those past K are never written)
    }
    __syncthreads();  // sm is reused for the per-warp results
    // per warp a fixed shuffle tree per tap of its half; then per tap the warps of its half in order
#pragma unroll
    for (int k = 0; k < KH; ++k) {
        const float v = warp_tree_sum(acc[k]);
        if (lane == 0) sm[warp * KH + k] = v;
    }
    __syncthreads();
    const unsigned n = row / C, c = row - n * C;
    float* dst = partial + ((long long)(n * tiles + tile) * C + c) * K;
    for (int kk = (int)threadIdx.x; kk < K; kk += (int)blockDim.x) {
        const int hh = kk / KH, k = kk - hh * KH;
        float v = sm[hh * KH + k];
        for (int p = 1; p < pairs; ++p) v = add_ieee(v, sm[(2 * p + hh) * KH + k]);
        dst[kk] = v;
    }
}

// Depthwise backward in one pass for K > DWR_KMAX taps (stride 1, dilation 1, 0 <= pl < K, K <=
// KMAX in 8, 16, 32 -- the backend's DWWB_KMAXES; KMAX 64 took 113 registers and was slower than
// the two kernels; the tap blocks actually used, nb = ceil(K / 8), at run time): grad_x as
// dw_wide<BWD> and grad_w's partial sums as dw_wide_gw, from one block's staged rows, so that
// grad_y is read from memory once (the two-kernel backward reads it twice: a quarter of its bytes).
// Block = tile of T positions of row (n, c), tiles from the aligned start before the x row
// (delta = (row * L) mod 8, for grad_x's aligned stores) covering max(L, L_out): positions
// t0 .. t0 + T - 1 are the tile's grad_x outputs (those < L) and its grad_y positions for grad_w
// (those < L_out). Shared memory: KMAX reversed scaled taps; the grad_y span t0 - PG .. (PG = K - 1
// - pl; zeros outside the row), alloc T + 8 * NB; the x span t0 - pl .. (padding map), alloc T + 2 KH.
// grad_x: thread tid owns outputs t0 + 16 tid .. + 15 (wide_fwd_taps on the staged grad_y, then
// +0; near a row end with a non-zero padding mode dw_gx_points): dw_wide<BWD>'s sums. grad_w:
// warp w takes taps h KH .. h KH + KH - 1 (h = w % 2; KH = 8 ceil(KMAX / 16)) of the chunks of warp
// pair w / 2, chunks qb = 16 (p * 32 + lane + j * 32 * pairs), acc[k] += (gy[t] * s_gw) * xp[t - pl
// + k], positions t ascending, only t inside [0, L_out) (grad_y from the staged span: staged
// element qb + r + PG is position t0 + qb + r); then per tap a fixed shuffle tree per warp and the
// warps of its half in order (per-warp sums after the x span): partial[(n * tiles + tile) * C +
// c][k], summed by conv_grad_w_final in a fixed order; grad_x after it. Deterministic (grad_w's tiles are not dw_wide_gw's, so its sums are grouped
// differently; each is a fixed-order fp32 sum).
template <typename S, int KMAX>
__global__ void __launch_bounds__(256) dw_wide_bwd(const S* __restrict__ gy, const S* __restrict__ w,
                                                   const S* __restrict__ x, S* __restrict__ gx,
                                                   float* __restrict__ partial, GEO_ARGS, double s_gx, double s_gw,
                                                   int T) {
    constexpr int NB = KMAX / 8, NH = (NB + 1) / 2, KH = 8 * NH;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    float* ws = reinterpret_cast<float*>(smem_raw);
    GEO_MAKE
    const int K = (int)g.K, pl = (int)g.pl, L = (int)g.L, Lout = (int)g.Lout, PG = K - 1 - pl;
    const int nb = (K + 7) / 8, Lt = L > Lout ? L : Lout;
    const int allocg = T + 8 * NB, allocx = T + 2 * KH, span = T + K - 1;
    float* sg = ws + KMAX;
    float* sx = sg + allocg + 4 * ((allocg - 1) >> 5);  // after the staged grad_y (sidx<true> layout)
    float* red = sx + allocx + 4 * ((allocx - 1) >> 5);  // the per-warp sums of grad_w
    const unsigned tiles = (unsigned)(((L % 8 ? Lt + 7 : Lt) + T - 1) / T), C = (unsigned)g.Cout;
    const unsigned row = blockIdx.x / tiles, tile = blockIdx.x - row * tiles;
    const unsigned n = row / C, c = row - n * C;
    const int t0 = (int)tile * T - (int)(((long long)row * L) & 7);
    const float sxs = (float)s_gx, sws = (float)s_gw;
    for (int k = threadIdx.x; k < KMAX; k += blockDim.x)  // grad_x's taps: reversed, scaled; zeros past K
        ws[k] = k < K ? mul_ieee(to_acc(w[(long long)c * K + K - 1 - k]), sxs) : 0.f;
    stage_span<S, false>(sg, gy + (long long)row * Lout, t0 - PG, span, allocg, Lout, g);
    stage_span<S, true>(sx, x + (long long)row * L, t0 - pl, span, allocx, L, g);
    __syncthreads();
    {  // grad_w: half h of the taps, the chunks of warp pair warp / 2
        const int warp = (int)threadIdx.x >> 5, lane = (int)threadIdx.x & 31, h = warp & 1, tap0 = h * KH;
        const int pairs = (int)blockDim.x >> 6;
        const int nbh = min(NH, max(0, (K - tap0 + 7) / 8)), knl = K - tap0 - 8 * (nbh - 1);  // this half's blocks
        float acc[KH];
#pragma unroll
        for (int k = 0; k < KH; ++k) acc[k] = 0.f;
        for (int qb = DWW_PER * ((warp >> 1) * 32 + lane); qb < T; qb += DWW_PER * 32 * pairs) {
            const int tb = t0 + qb;  // positions tb .. tb + 15
            if (tb >= Lout) break;
            if (tb + DWW_PER <= 0) continue;
            if (tb < 0 || tb + DWW_PER > Lout) {  // a row end: the positions inside it, one at a time (same order)
                for (int r = 0; r < DWW_PER; ++r) {
                    if (tb + r < 0 || tb + r >= Lout) continue;
                    const float gr = mul_ieee(sg[sidx<true>(qb + r + PG)], sws);
#pragma unroll
                    for (int k = 0; k < KH; ++k) acc[k] = fma_ieee(gr, sx[sidx<true>(qb + r + tap0 + k)], acc[k]);
                }
                continue;
            }
            float gv[DWW_PER];
#pragma unroll
            for (int r = 0; r < DWW_PER; ++r) gv[r] = mul_ieee(sg[sidx<true>(qb + r + PG)], sws);
            if (nbh > 0) wide_gw_taps<NH>(sx, qb + tap0, gv, knl, acc, nbh);
        }
#pragma unroll
        for (int k = 0; k < KH; ++k) {  // per warp a fixed shuffle tree per tap
            const float v = warp_tree_sum(acc[k]);
            if (lane == 0) red[warp * KH + k] = v;
        }
        __syncthreads();
        float* dst = partial + ((long long)(n * tiles + tile) * C + c) * K;
        for (int kk = (int)threadIdx.x; kk < K; kk += (int)blockDim.x) {  // per tap the warps of its half in order
            const int hh = kk / KH, k = kk - hh * KH;
            float v = red[hh * KH + k];
            for (int p = 1; p < pairs; ++p) v = add_ieee(v, red[(2 * p + hh) * KH + k]);
            dst[kk] = v;
        }
    }
    // grad_x (last, as in dw_wide: a thread near a row end returns after its out-of-line points; with
    // more work after that call, NVRTC's code for the other threads of its warp stored zeros and
    // wrong addresses for KMAX >= 32 -- H100, CUDA 13 -- so nothing follows it)
    const int qb = DWW_PER * (int)threadIdx.x, o0 = t0 + qb;  // outputs o0 .. o0 + 15
    if (qb >= T || o0 >= L || o0 + DWW_PER <= 0) return;
    S* orow = gx + (long long)row * L;
    if (g.mode != 0) {  // near a row end: the extra padded copies, the whole chunk out of line
        const int E = (int)(g.pl > g.pr ? g.pl : g.pr) + 1;
        if (o0 < E || o0 + DWW_PER > L - E) {
            const int lo = o0 > 0 ? o0 : 0, hi = min(o0 + DWW_PER, L);
            dw_gx_points<S>(gy, w, gx, g, row, c, lo, hi - lo, sxs);
            return;
        }
    }
    float acc[DWW_PER];
#pragma unroll
    for (int r = 0; r < DWW_PER; ++r) acc[r] = 0.f;
    wide_fwd_taps<NB>(sg, qb, ws, K - 8 * (nb - 1), acc, nb);
#pragma unroll
    for (int r = 0; r < DWW_PER; ++r) acc[r] = add_ieee(acc[r], 0.f);
#pragma unroll
    for (int hh = 0; hh < DWW_PER / 8; ++hh) {  // two chunks of 8: one aligned store8 each, or element by element
        const int oh = o0 + 8 * hh;
        if (oh >= 0 && oh + 8 <= L) {
            store8<S>(orow + oh, acc + 8 * hh);
        } else {
            for (int r = 0; r < 8; ++r)
                if (oh + r >= 0 && oh + r < L) orow[oh + r] = from_acc<S>(acc[8 * hh + r]);
        }
    }
}

// Elements e .. e + 7 of a row (row start rb in the flat array, n elements) as floats: from two
// 16-byte segments by the runtime shift where all 8 lie inside the row and the segments inside
// the array (end), else element by element through padded_elem<S, MAP> (the padding map for x,
// zeros for grad_y).
template <typename S, bool MAP>
__device__ __forceinline__ void dil_group(const S* __restrict__ base, const S* __restrict__ row, long long rb, int e,
                                          int n, long long end, const Geo& g, float* grp) {
    constexpr int SW = 8 * sizeof(S) / 4, VE = 16 / sizeof(S);
    const long long F = rb + e, A = F & ~(long long)(VE - 1);
    if (e >= 0 && e + 8 <= n && A + 16 <= end) {
        unsigned a[SW], b[SW];
        load_segment<S>(base, A, a);
        load_segment<S>(base, A + 8, b);
        group_from<S>(a, b, (int)(F - A), grp);
    } else {
#pragma unroll
        for (int m = 0; m < 8; ++m) grp[m] = padded_elem<S, MAP>(row, e + m, n, g);
    }
}

// Depthwise forward (BWD false; depth multipliers too) or grad_x (BWD; one output channel per
// group) with dilation d > 1, stride 1: chunks of 8 outputs aligned in the flat output as in
// dw_long; per tap k (a runtime loop) the 8 inputs o0 - lead + k * d + r (lead = pl forward,
// (K - 1) * d - pl for grad_x, whose taps are reversed) are one group from two 16-byte segments
// (dil_group; padded_elem near a row end: the padding map forward, zeros for grad_y). Sum order
// per output: taps ascending (forward) / descending (grad_x), then the bias (+0): that of dw_vec,
// dw_point and dw_bwd_edges, which adds grad_x's padded copies afterwards. Chunks that straddle
// a row boundary take the scalar path. Deterministic.
template <typename S, bool BWD>
__global__ void __launch_bounds__(128) dw_dil(const S* __restrict__ in, const S* __restrict__ w,
                                              const S* __restrict__ b, S* __restrict__ out, GEO_ARGS, double scale) {
    GEO_MAKE
    const int K = (int)g.K, d = (int)g.dil, T = 8 * (int)blockDim.x;
    const int Lin = BWD ? (int)g.Lout : (int)g.L, Lo = BWD ? (int)g.L : (int)g.Lout;
    const int lead = BWD ? (K - 1) * d - (int)g.pl : (int)g.pl;
    const unsigned tiles = (unsigned)((Lo + 7 + T - 1) / T);
    const unsigned row = blockIdx.x / tiles, c = row % (unsigned)g.Cout;
    const unsigned inrow = BWD ? row : (row / (unsigned)g.Cout) * (unsigned)g.Cin + c / (unsigned)(g.Cout / g.Cin);
    const int o0 = (int)(blockIdx.x - row * tiles) * T - (int)(((long long)row * Lo) & 7) + 8 * (int)threadIdx.x;
    if (o0 + 8 <= 0 || o0 >= Lo) return;
    const float s = (float)scale;
    const float br = (!BWD && b) ? mul_ieee(to_acc(b[c]), s) : 0.f;
    const S* ir = in + (long long)inrow * Lin;
    S* orow = out + (long long)row * Lo;
    const S* wc = w + (long long)c * K;
    if (o0 < 0 || o0 + 8 > Lo) {  // straddles a row boundary: one output at a time, same order
        for (int r = 0; r < 8; ++r) {
            const int o = o0 + r;
            if (o < 0 || o >= Lo) continue;
            float acc = 0.f;
            for (int k = 0; k < K; ++k)
                acc = fma_ieee(padded_elem<S, !BWD>(ir, o - lead + k * d, Lin, g),
                               mul_ieee(to_acc(wc[BWD ? K - 1 - k : k]), s), acc);
            orow[o] = from_acc<S>(add_ieee(acc, br));
        }
        return;
    }
    const long long iend = BWD ? g.N * g.Cout * g.Lout : g.N * g.Cin * g.L;
    float acc[8];
#pragma unroll
    for (int r = 0; r < 8; ++r) acc[r] = 0.f;
#pragma unroll 4
    for (int k = 0; k < K; ++k) {
        const float tk = mul_ieee(to_acc(wc[BWD ? K - 1 - k : k]), s);
        float grp[8];
        dil_group<S, !BWD>(in, ir, (long long)inrow * Lin, o0 - lead + k * d, Lin, iend, g, grp);
#pragma unroll
        for (int r = 0; r < 8; ++r) acc[r] = fma_ieee(grp[r], tk, acc[r]);
    }
#pragma unroll
    for (int r = 0; r < 8; ++r) acc[r] = add_ieee(acc[r], br);
    store8<S>(orow + o0, acc);
}

// Depthwise grad_w partial sums on register windows (one input channel per group, depth
// multipliers m = C_out / C_in, stride ST = 1 or 2, dilation DIL = 1 or 2, any K; at stride 1 with
// DIL = 1 any other dilation d through one group per tap, dil_group):
// grad_w[c, k] = sum_{n, o} (gy[n, c, o] * s) * xp[n, c / m, o * ST + k * d]. A thread takes J chunks
// of 8 consecutive grad_y positions (aligned in the flat grad_y array as dw_reg's outputs, so each
// chunk is one or two aligned 16-byte loads). Tap blocks of 8 are the outer loop (runtime: small
// loop bodies, 8 accumulators; an unrolled 64-tap body measured slower than the staged kernel,
// K64 fp16 backward 1.42 vs 1.26 ms, and a 16-tap one slower than this, K9 fp32 0.36 vs 0.31 ms,
// H100): per pass bk over NP blocks (TB = 8 NP taps; NP = 2 halves the grad_y reloads, window
// shifts and passes for K > 8), acc[kk] (tap TB bk + kk) sums g[r] * win[r * ST + kk * DIL] over the thread's
// chunks, the window xp[o0 * ST - pl + TB bk DIL + e] formed 8 elements at a time (ST + NP DIL groups
// from one more 16-byte segment by the runtime shift, or element by element through the padding map
// near a row end); then dw_w_partial (a fixed shuffle tree per warp, the warps in order) writes
// partial[(n * tiles + tile) * C_out + c][TB bk + kk], and conv_grad_w_final sums the partials in
// a fixed order. Chunks that straddle a row boundary take a scalar path over their positions
// inside the row (no zero stand-ins for grad_y: 0 * inf would be a NaN). Each acc sums its
// products in ascending o. Deterministic.
// Small groups (Cg = C_in / G input channels a group, Og = C_out / G): the rows are the (n, c,
// ci) triples, ci < Cg fastest (the blocks of one grad_y row run together, its rereads hit L2):
// grad_w[c, ci, k] = sum (gy[n, c, o] * s) * xp[n, (c / Og) * Cg + ci, o * ST + k * d], partial
// slot (n * tiles + tile) * C_out * Cg + c * Cg + ci. Cg = 1: the depthwise layout above.
template <typename S, int ST, int DIL = 1, int NP = 1>
__global__ void __launch_bounds__(128) dw_reg_gw(const S* __restrict__ gy, const S* __restrict__ x,
                                                 float* __restrict__ partial, GEO_ARGS, double scale, int J) {
    constexpr int SW = 8 * sizeof(S) / 4, VE = 16 / sizeof(S), TB = 8 * NP, NG = ST + NP * DIL;  // taps, window groups of a pass
    __shared__ float red[4 * TB];
    GEO_MAKE
    const int K = (int)g.K, nb = (K + TB - 1) / TB, L = (int)g.L, Lout = (int)g.Lout, pl = (int)g.pl;
    const int T = 8 * J * (int)blockDim.x;
    // chunks start up to 7 before a row (flat alignment), except where every row starts aligned
    const int span = Lout + ((Lout & 7) ? 7 : 0);  // L_out % 8 == 0: delta = (row * L_out) & 7 = 0
    const unsigned tiles = (unsigned)((span + T - 1) / T), C = (unsigned)g.Cout;
    const unsigned Cg = (unsigned)(g.Cin / g.G), Og = C / (unsigned)g.G;
    const unsigned rc = blockIdx.x / tiles, tile = blockIdx.x - rc * tiles;  // rc = (n * C + c) * Cg + ci
    const unsigned row = rc / Cg, ci = rc - row * Cg;  // row: the grad_y row n * C + c
    const unsigned n = row / C, c = row - n * C;
    const unsigned xrow = n * (unsigned)g.Cin + (c / Og) * Cg + ci;
    const int tb = (int)tile * T - (int)(((long long)row * Lout) & 7);
    const S* gr = gy + (long long)row * Lout;
    const S* xr = x + (long long)xrow * L;
    const long long xend = g.N * g.Cin * g.L;
    const float s = (float)scale;
    const int d = (int)g.dil;  // DIL, or (stride 1, DIL 1) any dilation: tap k reads x at o * ST - pl + k * d
    float* dst = partial + ((long long)(n * tiles + tile) * C * Cg + c * Cg + ci) * K;
#pragma unroll 1
    for (int bk = 0; bk < nb; ++bk) {
        const int kn = K - TB * bk < TB ? K - TB * bk : TB;  // taps of this pass
        float acc[TB];
#pragma unroll
        for (int kk = 0; kk < TB; ++kk) acc[kk] = 0.f;
        for (int j = 0; j < J; ++j) {
            const int o0 = tb + dwr_offset(j), i0 = o0 * ST - pl + TB * bk * d;
            if (o0 + 8 <= 0 || o0 >= Lout) continue;
            if (o0 < 0 || o0 + 8 > Lout) {  // straddles a row boundary: positions inside the row only
                for (int r = 0; r < 8; ++r) {
                    const int o = o0 + r;
                    if (o < 0 || o >= Lout) continue;
                    const float gs = mul_ieee(to_acc(gr[o]), s);
#pragma unroll
                    for (int kk = 0; kk < TB; ++kk)
                        if (kk < kn) acc[kk] = fma_ieee(gs, padded_elem<S, true>(xr, o * ST - pl + (TB * bk + kk) * d, L, g), acc[kk]);
                }
                continue;
            }
            if constexpr (ST == 1 && DIL == 1) {
                if (d != 1) {  // other dilations: one 8-element group per tap, x[o0 - pl + k * d + r]
                    float gv[8];
                    load4<S>(gr + o0, gv);
                    load4<S>(gr + o0 + 4, gv + 4);
#pragma unroll
                    for (int r = 0; r < 8; ++r) gv[r] = mul_ieee(gv[r], s);
#pragma unroll
                    for (int kk = 0; kk < TB; ++kk) {
                        if (kk < kn) {
                            float grp[8];
                            dil_group<S, true>(x, xr, (long long)xrow * L, i0 + kk * d, L, xend, g, grp);
#pragma unroll
                            for (int r = 0; r < 8; ++r) acc[kk] = fma_ieee(gv[r], grp[r], acc[kk]);
                        }
                    }
                    continue;
                }
            }
            const long long F = (long long)xrow * L + i0, A = F & ~(long long)(VE - 1);
            const bool fast = i0 >= 0 && i0 + 7 * ST + (kn - 1) * DIL < L && A + 8LL * (NG + 1) <= xend;
            unsigned seg[NG + 1][SW];
            if (fast) {
#pragma unroll
                for (int q = 0; q < NG + 1; ++q) load_segment<S>(x, A + 8 * q, seg[q]);
            }
            float gv[8];
            load4<S>(gr + o0, gv);
            load4<S>(gr + o0 + 4, gv + 4);
#pragma unroll
            for (int r = 0; r < 8; ++r) gv[r] = mul_ieee(gv[r], s);
            float win[8 * NG];
#pragma unroll
            for (int q = 0; q < NG; ++q) {
                if (fast) group_from<S>(seg[q], seg[q + 1], (int)(F - A), win + 8 * q);
                else {
#pragma unroll
                    for (int m = 0; m < 8; ++m) win[8 * q + m] = padded_elem<S, true>(xr, i0 + 8 * q + m, L, g);
                }
            }
#pragma unroll
            for (int kk = 0; kk < TB; ++kk) {
                if (kk < kn) {
#pragma unroll
                    for (int r = 0; r < 8; ++r) acc[kk] = fma_ieee(gv[r], win[r * ST + kk * DIL], acc[kk]);
                }
            }
        }
        dw_w_partial<TB>(acc, red, kn, dst + TB * bk);
        __syncthreads();  // red is reused by the next pass
    }
}

// Depthwise grad_x with depth multipliers m = C_out / C_in and stride ST = 1 or 2 (dilation 1,
// K <= 64): grad_x[n, ci, i] = sum_{j < m} sum_k gy[n, ci*m + j, t] * (w[ci*m + j, k] * s) over the
// taps with i + pl - k = t * ST (SPEC §5's transpose; no term for the other phases of a stride),
// grad_y zero outside [0, L_out) (a zero stand-in near the row ends, as in dw_long), then + 0.
// A thread owns a chunk of 8 outputs aligned in the flat grad_x array (as dw_long); per (j, tap
// block bk) the grad_y window of the block is formed from 16-byte segments: stride 1: t = U +
// r - 8 bk - kk with U = o0 + pl, 15 elements from W0 = U - 8 bk - 7; stride 2: U = 2 h + p, t =
// h - 4 bk + (p + r - kk) / 2 where p + r - kk is even, 8 elements from W0 = h - 4 bk - 3. Sum
// order per output: j, then k ascending. Chunks that straddle a row boundary, and for a non-zero
// padding mode the chunks within max(pl, pr) + 1 of a row end, take conv_grad_x's loop per output
// (the padded copies, then the taps, then the channels: a different order, each output one
// order). Deterministic.
template <typename S, int ST>
__global__ void __launch_bounds__(128) dw_reg_gx(const S* __restrict__ gy, const S* __restrict__ w,
                                                 S* __restrict__ gx, GEO_ARGS, double scale) {
    constexpr int SW = 8 * sizeof(S) / 4, VE = 16 / sizeof(S);
    constexpr int NWIN = ST == 1 ? 16 : 8, NSEG = NWIN / 8 + 1;
    GEO_MAKE
    const int K = (int)g.K, nb = (K + 7) / 8, L = (int)g.L, Lout = (int)g.Lout, pl = (int)g.pl;
    const unsigned m = (unsigned)(g.Cout / g.Cin), T = 8 * blockDim.x;
    const unsigned tiles = (unsigned)((L + 7 + T - 1) / T);
    const unsigned row = blockIdx.x / tiles;  // n * C_in + ci
    const unsigned n = row / (unsigned)g.Cin, ci = row - n * (unsigned)g.Cin;
    const int o0 = (int)((blockIdx.x - row * tiles) * T) - (int)(((long long)row * L) & 7) + 8 * (int)threadIdx.x;
    if (o0 + 8 <= 0 || o0 >= L) return;
    const float s = (float)scale;
    S* gxr = gx + (long long)row * L;
    const int E = (int)(g.pl > g.pr ? g.pl : g.pr) + 1;
    if (o0 < 0 || o0 + 8 > L || (g.mode != 0 && (o0 < E || o0 + 8 > L - E))) {
        for (int r = 0; r < 8; ++r) {
            const int i = o0 + r;
            if (i < 0 || i >= L) continue;
            float sr, si;
            grad_x_sum<S, false, float>(gy, w, g, n, ci, 0, i, s, sr, si);
            gxr[i] = from_acc<S>(add_ieee(sr, 0.f));
        }
        return;
    }
    const int U = o0 + pl, p = U & 1, h = U >> 1;
    float acc[8];
#pragma unroll
    for (int r = 0; r < 8; ++r) acc[r] = 0.f;
    for (unsigned jm = 0; jm < m; ++jm) {
        const unsigned co = ci * m + jm;
        const long long grow = ((long long)n * g.Cout + co) * Lout;
        const S* gr = gy + grow;
#pragma unroll 1
        for (int bk = 0; bk < nb; ++bk) {
            const int kn = K - 8 * bk < 8 ? K - 8 * bk : 8;
            const int W0 = ST == 1 ? U - 8 * bk - 7 : h - 4 * bk - 3;
            const long long F = grow + W0, A = F & ~(long long)(VE - 1);
            const bool fast = W0 >= 0 && W0 + NWIN <= Lout && A + 8LL * NSEG <= g.N * g.Cout * g.Lout;
            float win[NWIN], tk[8];
            if (fast) {
                unsigned seg[NSEG][SW];
#pragma unroll
                for (int q = 0; q < NSEG; ++q) load_segment<S>(gy, A + 8 * q, seg[q]);
#pragma unroll
                for (int q = 0; q < NWIN / 8; ++q) group_from<S>(seg[q], seg[q + 1], (int)(F - A), win + 8 * q);
            } else {
#pragma unroll
                for (int e = 0; e < NWIN; ++e) win[e] = padded_elem<S, false>(gr, W0 + e, Lout, g);
            }
#pragma unroll
            for (int kk = 0; kk < 8; ++kk) tk[kk] = kk < kn ? mul_ieee(to_acc(w[(long long)co * K + 8 * bk + kk]), s) : 0.f;
#pragma unroll
            for (int kk = 0; kk < 8; ++kk) {
                if (kk < kn) {
                    if constexpr (ST == 1) {
#pragma unroll
                        for (int r = 0; r < 8; ++r) acc[r] = fma_ieee(win[r - kk + 7], tk[kk], acc[r]);
                    } else if (p == 0) {
#pragma unroll
                        for (int r = 0; r < 8; ++r)
                            if (((r - kk) & 1) == 0) acc[r] = fma_ieee(win[(r - kk + 6) / 2], tk[kk], acc[r]);
                    } else {
#pragma unroll
                        for (int r = 0; r < 8; ++r)
                            if (((r - kk) & 1) != 0) acc[r] = fma_ieee(win[(r - kk + 7) / 2], tk[kk], acc[r]);
                    }
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < 8; ++r) acc[r] = add_ieee(acc[r], 0.f);
    store8<S>(gxr + o0, acc);
}

// Grouped forward with at most 8 input and 8 output channels a group (stride 1, dilation 1,
// K <= KMAX = 8 or 16, L_out a multiple of 8): register windows as in dw_long, one chunk of 8
// positions a thread for all the group's output channels (acc[co][r]: 64 accumulators). Per
// input channel ci of the group the window x[n, ci, o0 - pl + e] is formed 8 elements at a time
// from 16-byte segments (the padding map near a row end); the scaled taps sit in shared memory as
// ws[(ci * KMAX + k) * 8 + co], so a (ci, k) pair gives the 8 output channels' taps in two
// 16-byte broadcasts. Sum order per output: input channels ascending, taps ascending, then the
// bias: conv_fwd_tile's, bitwise. Rows are whole chunks (L_out % 8 == 0), so every store is an
// aligned 16-byte vector. Deterministic.
// BWD: grad_x by the same loop with the roles swapped (SPEC §5's transpose at stride 1,
// dilation 1): grad_x[n, g*Cg + c, j] = sum_o sum_k' gy[n, g*Og + o, j - (K-1-pl) + k'] *
// (w[g*Og + o, c, K-1-k'] * s), grad_y zero outside [0, L_out), then + 0; "input" channels
// are the group's Og output channels (ascending), taps k' ascending (w's taps descending); L a
// multiple of 8. For a non-zero padding mode the chunks within max(pl, pr) + 1 of a row end
// take conv_grad_x's loop per output (the padded copies, then the taps, then the channels).
template <typename S, int KMAX, bool BWD = false>
__global__ void __launch_bounds__(128) grp_reg(const S* __restrict__ in, const S* __restrict__ w,
                                               const S* __restrict__ b, S* __restrict__ out, GEO_ARGS, double scale) {
    constexpr int NB = KMAX / 8, SW = 8 * sizeof(S) / 4, VE = 16 / sizeof(S);
    __shared__ __align__(16) float ws[8 * KMAX * 8];
    GEO_MAKE
    const int K = (int)g.K, nb = (K + 7) / 8, pl = (int)g.pl;
    const int G = (int)g.G, Cg = (int)(g.Cin / g.G), Og = (int)(g.Cout / g.G), T = 8 * (int)blockDim.x;
    // channels a group and row lengths of the input and output arrays (forward: x, y; BWD: grad_y, grad_x)
    const int Ci = BWD ? Og : Cg, Co = BWD ? Cg : Og;
    const int Lin = BWD ? (int)g.Lout : (int)g.L, Lo = BWD ? (int)g.L : (int)g.Lout;
    const long long Cin_a = BWD ? g.Cout : g.Cin, Cout_a = BWD ? g.Cin : g.Cout;
    const int lead = BWD ? K - 1 - pl : pl;  // window start = o0 - lead
    const unsigned tiles = (unsigned)((Lo + T - 1) / T);
    const unsigned rg = blockIdx.x / tiles;  // n * G + group
    const unsigned n = rg / (unsigned)G, grp = rg - n * (unsigned)G;
    const int o0 = (int)(blockIdx.x - rg * tiles) * T + 8 * (int)threadIdx.x;
    const float s = (float)scale;
    for (int q = threadIdx.x; q < 8 * KMAX * 8; q += blockDim.x) {  // ws[(ci * KMAX + k) * 8 + co]
        const int co = q & 7, k = (q >> 3) % KMAX, ci = (q >> 3) / KMAX;
        const long long wi = BWD ? (((long long)grp * Og + ci) * Cg + co) * K + (K - 1 - k)
                                 : (((long long)grp * Og + co) * Cg + ci) * K + k;
        ws[q] = (co < Co && ci < Ci && k < K) ? mul_ieee(to_acc(w[wi]), s) : 0.f;
    }
    __syncthreads();
    if (o0 >= Lo) return;
    if constexpr (BWD) {
        const int E = (int)(g.pl > g.pr ? g.pl : g.pr) + 1;
        if (g.mode != 0 && (o0 < E || o0 + 8 > Lo - E)) {  // padded copies: conv_grad_x's loop
            for (int c = 0; c < Co; ++c) {
                S* gxr = out + ((long long)n * Cout_a + (long long)grp * Co + c) * Lo;
                for (int r = 0; r < 8; ++r) {
                    float sr, si;
                    grad_x_sum<S, false, float>(in, w, g, n, grp, c, o0 + r, s, sr, si);
                    gxr[o0 + r] = from_acc<S>(add_ieee(sr, 0.f));
                }
            }
            return;
        }
    }
    const long long iend = g.N * Cin_a * Lin;
    float acc[8][8];
#pragma unroll
    for (int co = 0; co < 8; ++co)
#pragma unroll
        for (int r = 0; r < 8; ++r) acc[co][r] = 0.f;
    for (int ci = 0; ci < Ci; ++ci) {
        const long long irow = (long long)n * Cin_a + (long long)grp * Ci + ci;
        const S* ir = in + irow * Lin;
        const int i0 = o0 - lead;
        const long long F = irow * Lin + i0, A = F & ~(long long)(VE - 1);
        const bool fast = i0 >= 0 && i0 + K + 7 <= Lin && A + 8LL * (nb + 2) <= iend;
        unsigned seg[NB + 2][SW];
        if (fast) {
#pragma unroll
            for (int q = 0; q < NB + 2; ++q)
                if (q < nb + 2) load_segment<S>(in, A + 8 * q, seg[q]);
        }
        const int e0 = (int)(F - A);
        float lo[8], hi[8];
        if (fast) group_from<S>(seg[0], seg[1], e0, lo);
        else {
#pragma unroll
            for (int m = 0; m < 8; ++m) lo[m] = padded_elem<S, !BWD>(ir, i0 + m, Lin, g);
        }
#pragma unroll
        for (int bk = 0; bk < NB; ++bk) {
            if (bk < nb) {
                if (fast) group_from<S>(seg[bk + 1], seg[bk + 2], e0, hi);
                else {
#pragma unroll
                    for (int m = 0; m < 8; ++m) hi[m] = padded_elem<S, !BWD>(ir, i0 + 8 * bk + 8 + m, Lin, g);
                }
                const int kn = K - 8 * bk;
#pragma unroll
                for (int k = 0; k < 8; ++k) {
                    if (k < kn) {
                        const float* t = ws + (ci * KMAX + 8 * bk + k) * 8;
                        const float4 t0 = *reinterpret_cast<const float4*>(t);
                        const float4 t1 = *reinterpret_cast<const float4*>(t + 4);
                        const float tk[8] = {t0.x, t0.y, t0.z, t0.w, t1.x, t1.y, t1.z, t1.w};
#pragma unroll
                        for (int co = 0; co < 8; ++co) {
                            if (co < Co) {
#pragma unroll
                                for (int r = 0; r < 8; ++r)
                                    acc[co][r] = fma_ieee(r + k < 8 ? lo[r + k] : hi[r + k - 8], tk[co], acc[co][r]);
                            }
                        }
                    }
                }
#pragma unroll
                for (int m = 0; m < 8; ++m) lo[m] = hi[m];
            }
        }
    }
#pragma unroll
    for (int co = 0; co < 8; ++co) {
        if (co < Co) {
            const long long o = (long long)grp * Co + co;
            const float br = (!BWD && b) ? mul_ieee(to_acc(b[o]), s) : 0.f;
#pragma unroll
            for (int r = 0; r < 8; ++r) acc[co][r] = add_ieee(acc[co][r], br);
            store8<S>(out + ((long long)n * Cout_a + o) * Lo + o0, acc[co]);
        }
    }
}

// stage_span for R rows at once (row r at row0 + r * gstride; staged at sm + r * RS): every row's
// whole 16-byte vectors are loaded before any is stored (one round trip to memory for the
// group's rows, not R), then the ragged ends and padded positions of all rows, flattened the same
// way. Row r's vectors start at its first aligned element pa_r (rows may differ in alignment);
// the same elements as R calls of stage_span.
template <typename S, bool MAP>
__device__ __forceinline__ void stage_rows(float* sm, const S* __restrict__ row0, long long gstride, int R, int RS,
                                           int i0, int span, int alloc, int n, const Geo& g) {
    constexpr int VE = 16 / sizeof(S);
    const int nt = (int)blockDim.x, a = i0 > 0 ? i0 : 0, e = i0 + span < n ? i0 + span : n;  // row elements [a, e)
    const int nvm = e > a ? (e - a) / VE : 0;  // whole vectors a row, at most
    const int tot = R * nvm;
    for (int v0 = 0; v0 < tot; v0 += DWW_VECS * nt) {
        uint4 u[DWW_VECS];
        int dst[DWW_VECS];
#pragma unroll
        for (int j = 0; j < DWW_VECS; ++j) {
            const int v = v0 + j * nt + (int)threadIdx.x;
            dst[j] = -1;
            if (v < tot) {
                const int r = v / nvm, vv = v - r * nvm;
                const S* row = row0 + r * gstride;
                const int pa = vec_start<S>(row, a);
                if (vv < (e > pa ? (e - pa) / VE : 0)) {
                    u[j] = reinterpret_cast<const uint4*>(row + pa)[vv];
                    dst[j] = r * RS + (pa + vv * VE - i0);  // staged row r, element q (sidx applied below)
                }
            }
        }
#pragma unroll
        for (int j = 0; j < DWW_VECS; ++j) {
            if (dst[j] >= 0) {
                const int r = dst[j] / RS;
                stage_vec<S>(sm + r * RS, dst[j] - r * RS, u[j]);
            }
        }
    }
    // the rest of row r: q < qa_r and qe_r <= q < alloc (padding map inside the span, zeros past it);
    // W = the most such positions a row: index r * W + j, j < qa_r first, then qe_r + (j - qa_r)
    const int W = alloc - (nvm > 0 ? (nvm - 1) * VE : 0);
    for (int idx = (int)threadIdx.x; idx < R * W; idx += nt) {
        const int r = idx / W, j = idx - r * W;
        const S* row = row0 + r * gstride;
        const int pa = vec_start<S>(row, a);
        const int nv = e > pa ? (e - pa) / VE : 0, pe = pa + nv * VE;
        const int qa = min(max(pa - i0, 0), span), qe = max(min(pe - i0, span), qa);
        const int q = j < qa ? j : qe + (j - qa);
        if (q < alloc) sm[r * RS + sidx<true>(q)] = q < span ? padded_elem<S, MAP>(row, i0 + q, n, g) : 0.f;
    }
}

// Floats between consecutive staged rows of grp_wide / grp_wide_gw: alloc floats in the
// sidx<true> layout (alloc a multiple of 8, so the rows stay 16-byte aligned).
__device__ __forceinline__ int staged_row(int alloc) { return alloc + 4 * ((alloc - 1) >> 5); }

// grad_x at positions o0 .. o0 + m - 1 of row (n, grp * Cg + c) through grad_x_sum (the padded
// copies, conv_grad_x's order), stored (+0), out of line: grp_wide's chunks near the row ends with a
// non-zero padding mode (its window and accumulators stay in registers elsewhere).
template <typename S>
__device__ __noinline__ void grp_gx_points(const S* __restrict__ gy, const S* __restrict__ w, S* __restrict__ gxr,
                                           const Geo g, unsigned n, unsigned grp, int c, int o0, int m, float s) {
    for (int r = 0; r < m; ++r) {
        float sr, si;
        grad_x_sum<S, false, float>(gy, w, g, n, grp, c, o0 + r, s, sr, si);
        gxr[o0 + r] = from_acc<S>(add_ieee(sr, 0.f));
    }
}

// Grouped forward (BWD false) or grad_x (BWD) with at most 8 channels a group in and out, stride
// 1, dilation 1, K <= KMAX = 8 * ceil(K / 8) (8 or 16), output rows (L_out; grad_x: L) a multiple
// of 8: dw_wide's staged design over the group's input rows (grp_reg forms every window from
// global memory with runtime shifts: 125 registers, issue- and latency-bound). Block = (n, group,
// tile of T outputs, T a multiple of 16); the tile's span of each of the group's Ci input rows (x
// through the padding map; BWD: grad_y, zeros outside its row) staged by stage_span, rows
// staged_row(alloc) floats apart, alloc = T + KMAX; the scaled taps in shared memory as
// ws[(co * 8 + ci) * KMAX + k] (BWD: w[g Og + ci, co, K - 1 - k], SPEC section 5's transpose as
// in grp_reg). Thread (co = tid / P, slot = tid % P) computes chunks of DWW_PER = 16 outputs
// qb = 16 (slot + j P): per input channel ci and tap block the window of 24 staged inputs slid
// by 8 (two 16-byte loads, conflict-free across a quarter warp by the sidx padding), the taps as
// two broadcasts, 128 FMAs. Sum order per output: ci ascending, taps ascending, then the bias:
// grp_reg's (conv_fwd_tile's), bitwise. BWD with a non-zero padding mode: chunks within
// max(pl, pr) + 1 of a row end through grad_x_sum per output (grp_reg's loop).
template <typename S, int KMAX, bool BWD>
__global__ void __launch_bounds__(128) grp_wide(const S* __restrict__ in, const S* __restrict__ w,
                                                const S* __restrict__ b, S* __restrict__ out, GEO_ARGS, double scale,
                                                int T, int P) {
    constexpr int NB = KMAX / 8;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    float* ws = reinterpret_cast<float*>(smem_raw);  // 64 * KMAX scaled taps
    float* sm = ws + 64 * KMAX;
    GEO_MAKE
    const int K = (int)g.K, pl = (int)g.pl;
    const int G = (int)g.G, Cg = (int)(g.Cin / g.G), Og = (int)(g.Cout / g.G);
    const int Ci = BWD ? Og : Cg, Co = BWD ? Cg : Og;
    const int Lin = BWD ? (int)g.Lout : (int)g.L, Lo = BWD ? (int)g.L : (int)g.Lout;
    const long long Cin_a = BWD ? g.Cout : g.Cin, Cout_a = BWD ? g.Cin : g.Cout;
    const unsigned tiles = (unsigned)((Lo + T - 1) / T);
    const unsigned rg = blockIdx.x / tiles;  // n * G + group
    const unsigned n = rg / (unsigned)G, grp = rg - n * (unsigned)G;
    const int t0 = (int)(blockIdx.x - rg * tiles) * T;
    const int span = T + K - 1, alloc = T + KMAX, RS = staged_row(alloc);
    const float s = (float)scale;
    for (int q = threadIdx.x; q < 64 * KMAX; q += blockDim.x) {
        const int k = q % KMAX, ci = (q / KMAX) & 7, co = q / (8 * KMAX);
        const long long wi = BWD ? (((long long)grp * Og + ci) * Cg + co) * K + (K - 1 - k)
                                 : (((long long)grp * Og + co) * Cg + ci) * K + k;
        ws[q] = (co < Co && ci < Ci && k < K) ? mul_ieee(to_acc(w[wi]), s) : 0.f;
    }
    const int i0 = t0 - (BWD ? K - 1 - pl : pl);
    stage_rows<S, !BWD>(sm, in + ((long long)n * Cin_a + (long long)grp * Ci) * Lin, Lin, Ci, RS, i0, span, alloc, Lin,
                        g);
    __syncthreads();
    const int co = (int)threadIdx.x / P, slot = (int)threadIdx.x - co * P;
    if (co >= Co) return;
    S* orow = out + ((long long)n * Cout_a + (long long)grp * Co + co) * Lo;
    const float br = (!BWD && b) ? mul_ieee(to_acc(b[(long long)grp * Co + co]), s) : 0.f;
    const float* wr = ws + co * 8 * KMAX;
    for (int qb = DWW_PER * slot; qb < T; qb += DWW_PER * P) {
        const int o0 = t0 + qb;  // outputs o0 .. o0 + 15 (those in the row: L_out % 8 == 0, whole chunks of 8)
        if (o0 >= Lo) break;
        if (BWD && g.mode != 0) {
            const int E = (int)(g.pl > g.pr ? g.pl : g.pr) + 1;
            if (o0 < E || o0 + DWW_PER > Lo - E) {  // padded copies: grp_reg's per-output loop
                grp_gx_points<S>(in, w, orow, g, n, grp, co, o0, min(DWW_PER, Lo - o0), s);
                continue;
            }
        }
        float acc[DWW_PER];
#pragma unroll
        for (int r = 0; r < DWW_PER; ++r) acc[r] = 0.f;
        for (int ci = 0; ci < Ci; ++ci) wide_fwd_taps<NB>(sm + ci * RS, qb, wr + ci * KMAX, K - 8 * (NB - 1), acc);
#pragma unroll
        for (int r = 0; r < DWW_PER; ++r) acc[r] = add_ieee(acc[r], br);
        store8<S>(orow + o0, acc);
        if (o0 + 8 < Lo) store8<S>(orow + o0 + 8, acc + 8);
    }
}

// Grouped grad_w partial sums with at most 8 channels a group in and out (stride 1, dilation 1,
// K <= KMAX = 8 * ceil(K / 8), L_out a multiple of 8): block = (n, group, tile of T grad_y
// positions), the tile's x span of the group's Cg input rows staged as in grp_wide's forward;
// warp ci (blockDim.x = 32 Cg) takes input channel ci and, for each output channel o of the
// group in turn, its lanes chunks of 16 positions qb = 16 (lane + 32 j): acc[k] += (gy[o, t] *
// s) * x[ci, t - pl + k] over the chunk's positions (r ascending), grad_y's chunk in registers
// (16-byte loads; the group's warps share it through L1), the staged x window of 24 slid by 8
// per tap block; a chunk at the row end position by position (no zero stand-in: an infinite x
// would give NaN). Then per tap a fixed shuffle tree and lane 0 writes
// partial[(n * tiles + tile) * E + ((g Og + o) * Cg + ci) * K + k], E = Cout Cg K (dw_reg_gw's
// layout: grad_y is read once, not Cg times); conv_grad_w_final sums the slots in order.
// Deterministic.
template <typename S, int KMAX>
__global__ void __launch_bounds__(256, 4) grp_wide_gw(const S* __restrict__ gy, const S* __restrict__ x,
                                                   float* __restrict__ partial, GEO_ARGS, double scale, int T) {
    constexpr int NB = KMAX / 8;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    float* sm = reinterpret_cast<float*>(smem_raw);
    GEO_MAKE
    const int K = (int)g.K, pl = (int)g.pl, L = (int)g.L, Lout = (int)g.Lout;
    const int G = (int)g.G, Cg = (int)(g.Cin / g.G), Og = (int)(g.Cout / g.G);
    const unsigned tiles = (unsigned)((Lout + T - 1) / T);
    const unsigned rg = blockIdx.x / tiles, tile = blockIdx.x - rg * tiles;
    const unsigned n = rg / (unsigned)G, grp = rg - n * (unsigned)G;
    const int t0 = (int)tile * T;
    const int span = T + K - 1, alloc = T + KMAX, RS = staged_row(alloc);
    stage_rows<S, true>(sm, x + ((long long)n * g.Cin + (long long)grp * Cg) * L, L, Cg, RS, t0 - pl, span, alloc, L, g);
    __syncthreads();
    const int ci = (int)threadIdx.x >> 5, lane = (int)threadIdx.x & 31;
    const float* xr = sm + ci * RS;
    const float s = (float)scale;
    for (int o = 0; o < Og; ++o) {
        const long long orow = (long long)n * g.Cout + (long long)grp * Og + o;
        const S* grow = gy + orow * Lout;
        float acc[KMAX];
#pragma unroll
        for (int k = 0; k < KMAX; ++k) acc[k] = 0.f;
        for (int qb = DWW_PER * lane; qb < T; qb += DWW_PER * 32) {
            const int tb = t0 + qb;  // positions tb .. tb + 15
            if (tb >= Lout) break;
            if (tb + DWW_PER > Lout) {  // the row's last 8 positions (L_out % 8 == 0), one at a time
                for (int r = 0; r < Lout - tb; ++r) {
                    const float gr = mul_ieee(to_acc(grow[tb + r]), s);
#pragma unroll
                    for (int k = 0; k < KMAX; ++k)
                        if (k < K) acc[k] = fma_ieee(gr, xr[sidx<true>(qb + r + k)], acc[k]);
                }
                continue;
            }
            float gv[DWW_PER];
#pragma unroll
            for (int m = 0; m < DWW_PER / 4; ++m) load4<S>(grow + tb + 4 * m, gv + 4 * m);
#pragma unroll
            for (int r = 0; r < DWW_PER; ++r) gv[r] = mul_ieee(gv[r], s);
            wide_gw_taps<NB>(xr, qb, gv, K - 8 * (NB - 1), acc);
        }
        float* dst = partial + ((((long long)n * tiles + tile) * g.Cout + (long long)grp * Og + o) * Cg + ci) * K;
#pragma unroll
        for (int k = 0; k < KMAX; ++k) {
            if (k < K) {
                const float v = warp_tree_sum(acc[k]);
                if (lane == 0) dst[k] = v;
            }
        }
    }
}

// complex64 element i of a row of n (interleaved re, im) through the padding map (MAP: x in the
// forward, SPEC §2) or zero outside [0, n) (grad_y): padded_elem for pairs.
template <bool MAP>
__device__ __forceinline__ float2 padded_c(const float* __restrict__ row, int i, int n, const Geo& g) {
    if (i >= 0 && i < n) return make_float2(row[2 * i], row[2 * i + 1]);
    if (!MAP || g.mode == 0 || i + g.pl < 0 || i + g.pl >= g.L + g.pl + g.pr) return make_float2(0.f, 0.f);
    const int L = (int)g.L;
    const int j = g.mode == 1 ? (i < 0 ? -i : 2 * (L - 1) - i) : g.mode == 2 ? (i < 0 ? 0 : L - 1) : (i < 0 ? i + L : i - L);
    return make_float2(row[2 * j], row[2 * j + 1]);
}

// Pairs i .. i + 3 of a row through padded_c<MAP>, as 8 floats (re, im interleaved): a window
// group of the complex kernels near a row end.
template <bool MAP>
__device__ __forceinline__ void pair_group(const float* __restrict__ row, int i, int n, const Geo& g, float* out) {
#pragma unroll
    for (int m = 0; m < 4; ++m) {
        const float2 v = padded_c<MAP>(row, i + m, n, g);
        out[2 * m] = v.x; out[2 * m + 1] = v.y;
    }
}

// complex64 depthwise on register windows (stride 1, dilation 1, one channel a group, K <=
// KMAX = 4, 8, 16 or 32): dw_long's design on (re, im) pairs. A thread owns a chunk of 4 complex
// outputs (8 floats, 32 bytes), chunks aligned in the flat output so that every store is two
// aligned 16-byte vectors (delta = (row * L_out) mod 2); window group q = complex window elements
// 4q .. 4q + 3, formed from two 32-byte segments by the runtime shift (e0 = 0 or 2 floats) or
// pair by pair through the padding map near a row end; tap block bk (4 taps) uses groups bk and
// bk + 1 (output r, tap k: window element r + k). Forward (BWD false: x rows, padding map, bias):
// y = sum_k x * (w[k] * s) by mac (the textbook product, one fma per real product: re += xr wr,
// re += -xi wi, im += xr wi, im += xi wr), taps ascending, then + b * s: conv_fwd_tile's sums in its
// order, bitwise. grad_x (BWD: grad_y rows, zeros outside, taps reversed and conjugated, + 0):
// SPEC §5's transpose at stride 1; chunks straddling a row boundary take the scalar path, and for a
// non-zero padding mode the chunks within max(pl, pr) + 1 of a row end take conv_grad_x's loop
// per output (the padded copies). Deterministic.
// complex64 depthwise grad_x at positions o0 .. o0 + 3 of row (n, c) (those inside the row) by
// conv_grad_x's loop: the padded copies, then the taps (then + 0). Not inlined: its registers
// (the copy ranges) stay out of dwc_reg's window path.
__device__ __noinline__ void dwc_copies_chunk(const float* __restrict__ gy, const float* __restrict__ w,
                                              float* __restrict__ gxr, const Geo g, unsigned n, unsigned c, int o0,
                                              float s) {
    for (int r = 0; r < 4; ++r) {
        const int j = o0 + r;
        if (j < 0 || j >= (int)g.L) continue;
        float sr, si;
        grad_x_sum<float, true, float>(gy, w, g, n, c, 0, j, s, sr, si);
        gxr[2 * j] = add_ieee(sr, 0.f);
        gxr[2 * j + 1] = add_ieee(si, 0.f);
    }
}

template <int KMAX, bool BWD>
__global__ void __launch_bounds__(128) dwc_reg(const float* __restrict__ in, const float* __restrict__ w,
                                               const float* __restrict__ b, float* __restrict__ out, GEO_ARGS,
                                               double scale) {
    constexpr int NB = KMAX / 4, NSEG = NB + 2;
    __shared__ __align__(16) float2 ws[KMAX];
    GEO_MAKE
    const int K = (int)g.K, nb = (K + 3) / 4, T = 4 * (int)blockDim.x;
    const int Lin = BWD ? (int)g.Lout : (int)g.L, Lo = BWD ? (int)g.L : (int)g.Lout;
    const int lead = BWD ? K - 1 - (int)g.pl : (int)g.pl;  // window start = o0 - lead
    const unsigned tiles = (unsigned)((Lo + 1 + T - 1) / T);
    const unsigned row = blockIdx.x / tiles, c = row % (unsigned)g.Cout;
    const int delta = (int)(((long long)row * Lo) & 1);
    const int o0 = (int)(blockIdx.x - row * tiles) * T - delta + 4 * (int)threadIdx.x;
    const int i0 = o0 - lead;
    const long long F = 2 * ((long long)row * Lin + i0), A = F & ~3LL;  // floats; A 16-byte aligned
    const long long iend = 2 * g.N * g.Cout * Lin;
    const bool whole = o0 >= 0 && o0 + 4 <= Lo;
    const bool fast = whole && i0 >= 0 && i0 + K + 3 <= Lin && A + 8LL * (nb + 2) <= iend;
    unsigned seg[NSEG][8];
    if (fast) {  // every segment of the window, loads issued before any use
#pragma unroll
        for (int q = 0; q < NSEG; ++q)
            if (q < nb + 2) load_segment<float>(in, A + 8 * q, seg[q]);
    }
    const float s = (float)scale;
    for (int k = threadIdx.x; k < KMAX; k += blockDim.x) {
        float2 t = make_float2(0.f, 0.f);
        if (k < K) {
            const long long e = (long long)c * K + (BWD ? K - 1 - k : k);
            t = make_float2(mul_ieee(w[2 * e], s), mul_ieee(w[2 * e + 1], s));
            if (BWD) t.y = -t.y;  // conj(w): mac's CONJ
        }
        ws[k] = t;
    }
    __syncthreads();
    float br = 0.f, bi = 0.f;
    if (!BWD && b) { br = mul_ieee(b[2 * c], s); bi = mul_ieee(b[2 * c + 1], s); }
    const float* ir = in + 2 * (long long)row * Lin;
    float* orow = out + 2 * (long long)row * Lo;
    if (o0 + 4 <= 0 || o0 >= Lo) return;
    if constexpr (BWD) {
        const int E = (int)(g.pl > g.pr ? g.pl : g.pr) + 1;
        if (g.mode != 0 && (o0 < E || o0 + 4 > Lo - E)) {  // padded copies: conv_grad_x's loop
            dwc_copies_chunk(in, w, orow, g, row / (unsigned)g.Cout, c, o0, s);
            return;
        }
    }
    if (!whole) {  // scalar, the same operations in the same order
        for (int r = 0; r < 4; ++r) {
            const int o = o0 + r;
            if (o < 0 || o >= Lo) continue;
            float sr = 0.f, si = 0.f;
            for (int k = 0; k < K; ++k) {
                const float2 v = padded_c<!BWD>(ir, o - lead + k, Lin, g);
                mac<float, true, false>(sr, si, v.x, v.y, ws[k].x, ws[k].y);
            }
            orow[2 * o] = add_ieee(sr, br);
            orow[2 * o + 1] = add_ieee(si, bi);
        }
        return;
    }
    const int e0 = (int)(F - A);
    float lo[8], hi[8], ar[4], ai[4];
#pragma unroll
    for (int r = 0; r < 4; ++r) { ar[r] = 0.f; ai[r] = 0.f; }
    if (fast) group_from<float>(seg[0], seg[1], e0, lo);
    else pair_group<!BWD>(ir, i0, Lin, g, lo);
#pragma unroll
    for (int bk = 0; bk < NB; ++bk) {
        if (bk < nb) {
            if (fast) group_from<float>(seg[bk + 1], seg[bk + 2], e0, hi);
            else pair_group<!BWD>(ir, i0 + 4 * bk + 4, Lin, g, hi);
            const int kn = K - 4 * bk;
#pragma unroll
            for (int k = 0; k < 4; ++k) {
                if (k < kn) {
                    const float2 t = ws[4 * bk + k];
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
                        const int m = r + k;  // window element of output r, tap k
                        const float xr = m < 4 ? lo[2 * m] : hi[2 * m - 8], xi = m < 4 ? lo[2 * m + 1] : hi[2 * m - 7];
                        mac<float, true, false>(ar[r], ai[r], xr, xi, t.x, t.y);
                    }
                }
            }
#pragma unroll
            for (int m = 0; m < 8; ++m) lo[m] = hi[m];
        }
    }
    float y[8];
#pragma unroll
    for (int r = 0; r < 4; ++r) { y[2 * r] = add_ieee(ar[r], br); y[2 * r + 1] = add_ieee(ai[r], bi); }
    store8<float>(orow + 2 * o0, y);
}

// complex64 depthwise grad_w partial sums on register windows (stride 1, dilation 1, one
// channel a group, any K): dw_reg_gw's design on pairs. grad_w[c, k] = sum_{n, o} (gy[n, c, o] * s)
// * conj(xp[n, c, o - pl + k]) by mac<CONJ> (as conv_grad_w). A thread takes J chunks of 4
// complex grad_y positions (chunks aligned in the flat grad_y array as dwc_reg's outputs: two
// 16-byte loads); passes of 4 taps are the outer loop, each with 4 complex accumulators over the
// thread's chunks and the window of 7 pairs formed from three 32-byte segments by the runtime
// shift (the padding map near a row end); chunks straddling a row boundary take a scalar path over
// their positions inside the row. Then dw_w_partial (a fixed shuffle tree per warp, the warps in
// order) on the 8 floats (re, im of 4 taps) into partial[((n * tiles + tile) * C + c) * K + k]
// as pairs, and conv_grad_w_final<float, true> sums the partials in a fixed order.
// Deterministic.
__global__ void __launch_bounds__(128) dwc_reg_gw(const float* __restrict__ gy, const float* __restrict__ x,
                                                  float* __restrict__ partial, GEO_ARGS, double scale, int J) {
    __shared__ float red[4 * 8];
    GEO_MAKE
    const int K = (int)g.K, nb = (K + 3) / 4, L = (int)g.L, Lout = (int)g.Lout, pl = (int)g.pl;
    const int T = 4 * J * (int)blockDim.x;
    const unsigned tiles = (unsigned)((Lout + 1 + T - 1) / T), C = (unsigned)g.Cout;
    const unsigned row = blockIdx.x / tiles, tile = blockIdx.x - row * tiles;
    const unsigned n = row / C, c = row - n * C;
    const int tb = (int)tile * T - (int)(((long long)row * Lout) & 1);
    const float* gr = gy + 2 * (long long)row * Lout;
    const float* xr = x + 2 * (long long)row * L;  // depthwise: the x row of (n, c)
    const long long xend = 2 * g.N * g.Cin * g.L;
    const float s = (float)scale;
    float* dst = partial + 2 * ((long long)(n * tiles + tile) * C + c) * K;
#pragma unroll 1
    for (int bk = 0; bk < nb; ++bk) {
        const int kn = K - 4 * bk < 4 ? K - 4 * bk : 4;
        float acc[8];  // re, im of taps 4 bk + kk
#pragma unroll
        for (int q = 0; q < 8; ++q) acc[q] = 0.f;
        for (int j = 0; j < J; ++j) {
            const int o0 = tb + dwr_offset(j, 4);
            const int i0 = o0 - pl + 4 * bk;
            if (o0 + 4 <= 0 || o0 >= Lout) continue;
            if (o0 < 0 || o0 + 4 > Lout) {  // straddles a row boundary: positions inside the row only
                for (int r = 0; r < 4; ++r) {
                    const int o = o0 + r;
                    if (o < 0 || o >= Lout) continue;
                    const float gs_r = mul_ieee(gr[2 * o], s), gs_i = mul_ieee(gr[2 * o + 1], s);
#pragma unroll
                    for (int kk = 0; kk < 4; ++kk)
                        if (kk < kn) {
                            const float2 v = padded_c<true>(xr, o - pl + 4 * bk + kk, L, g);
                            mac<float, true, true>(acc[2 * kk], acc[2 * kk + 1], gs_r, gs_i, v.x, v.y);
                        }
                }
                continue;
            }
            const long long F = 2 * ((long long)row * L + i0), A = F & ~3LL;
            const bool fast = i0 >= 0 && i0 + 3 + kn <= L && A + 24 <= xend;
            float gv[8], lo[8], hi[8];
            load4<float>(gr + 2 * o0, gv);
            load4<float>(gr + 2 * o0 + 4, gv + 4);
#pragma unroll
            for (int q = 0; q < 8; ++q) gv[q] = mul_ieee(gv[q], s);
            if (fast) {
                unsigned seg[3][8];
#pragma unroll
                for (int q = 0; q < 3; ++q) load_segment<float>(x, A + 8 * q, seg[q]);
                group_from<float>(seg[0], seg[1], (int)(F - A), lo);
                group_from<float>(seg[1], seg[2], (int)(F - A), hi);
            } else {
                pair_group<true>(xr, i0, L, g, lo);
                pair_group<true>(xr, i0 + 4, L, g, hi);
            }
#pragma unroll
            for (int r = 0; r < 4; ++r) {
#pragma unroll
                for (int kk = 0; kk < 4; ++kk) {
                    if (kk < kn) {
                        const int m = r + kk;
                        const float vr = m < 4 ? lo[2 * m] : hi[2 * m - 8], vi = m < 4 ? lo[2 * m + 1] : hi[2 * m - 7];
                        mac<float, true, true>(acc[2 * kk], acc[2 * kk + 1], gv[2 * r], gv[2 * r + 1], vr, vi);
                    }
                }
            }
        }
        dw_w_partial<8>(acc, red, 2 * kn, dst + 8 * bk);
        __syncthreads();  // red is reused by the next pass
    }
}

#define INSTANTIATE_DWC() \
    template __global__ void dwc_reg<4, false>(const float*, const float*, const float*, float*, GEO_TYPES, double); \
    template __global__ void dwc_reg<8, false>(const float*, const float*, const float*, float*, GEO_TYPES, double); \
    template __global__ void dwc_reg<16, false>(const float*, const float*, const float*, float*, GEO_TYPES, double); \
    template __global__ void dwc_reg<32, false>(const float*, const float*, const float*, float*, GEO_TYPES, double); \
    template __global__ void dwc_reg<4, true>(const float*, const float*, const float*, float*, GEO_TYPES, double); \
    template __global__ void dwc_reg<8, true>(const float*, const float*, const float*, float*, GEO_TYPES, double); \
    template __global__ void dwc_reg<16, true>(const float*, const float*, const float*, float*, GEO_TYPES, double); \
    template __global__ void dwc_reg<32, true>(const float*, const float*, const float*, float*, GEO_TYPES, double);

#define DWR_INST1(S, K) \
    template __global__ void dw_reg<S, K>(const S*, const S*, const S*, S*, GEO_TYPES, double); \
    template __global__ void dw_reg_bwd<S, K>(const S*, const S*, const S*, S*, float*, GEO_TYPES, double, double);
#define DWL_INST1(S, KMAX) \
    template __global__ void dw_long<S, KMAX, false>(const S*, const S*, const S*, S*, GEO_TYPES, double); \
    template __global__ void dw_long<S, KMAX, true>(const S*, const S*, const S*, S*, GEO_TYPES, double);
#define DWL_INST2(S, KMAX) \
    template __global__ void dw_long<S, KMAX, false, 2>(const S*, const S*, const S*, S*, GEO_TYPES, double); \
    template __global__ void dw_long<S, KMAX, true, 2>(const S*, const S*, const S*, S*, GEO_TYPES, double);
#define DWR_INST2(S, K) template __global__ void dw_reg<S, K, 2>(const S*, const S*, const S*, S*, GEO_TYPES, double);
#define DWD_INST(S) \
    template __global__ void dw_dil<S, false>(const S*, const S*, const S*, S*, GEO_TYPES, double); \
    template __global__ void dw_dil<S, true>(const S*, const S*, const S*, S*, GEO_TYPES, double);
#define DWG_INST(S, ST) \
    template __global__ void dw_reg_gw<S, ST>(const S*, const S*, float*, GEO_TYPES, double, int); \
    template __global__ void dw_reg_gw<S, ST, 2>(const S*, const S*, float*, GEO_TYPES, double, int); \
    template __global__ void dw_reg_gx<S, ST>(const S*, const S*, S*, GEO_TYPES, double);
#define INSTANTIATE_DWR(S) \
    template __global__ void dw_bwd_edges<S>(const S*, const S*, S*, GEO_TYPES, double); \
    DWR_INST1(S, 1) DWR_INST1(S, 2) DWR_INST1(S, 3) DWR_INST1(S, 4) \
    DWR_INST2(S, 1) DWR_INST2(S, 2) DWR_INST2(S, 3) DWR_INST2(S, 4) \
    DWL_INST1(S, 8) DWL_INST1(S, 16) DWL_INST1(S, 32) DWL_INST1(S, 64) \
    DWG_INST(S, 1) DWG_INST(S, 2) DWD_INST(S) DWL_INST2(S, 8) DWL_INST2(S, 16) \
    template __global__ void dw_reg_gw<S, 1, 1, 2>(const S*, const S*, float*, GEO_TYPES, double, int); \
    template __global__ void grp_reg<S, 8>(const S*, const S*, const S*, S*, GEO_TYPES, double); \
    template __global__ void grp_reg<S, 16>(const S*, const S*, const S*, S*, GEO_TYPES, double); \
    template __global__ void grp_reg<S, 8, true>(const S*, const S*, const S*, S*, GEO_TYPES, double); \
    template __global__ void grp_reg<S, 16, true>(const S*, const S*, const S*, S*, GEO_TYPES, double); \
    template __global__ void grp_wide<S, 8, false>(const S*, const S*, const S*, S*, GEO_TYPES, double, int, int); \
    template __global__ void grp_wide<S, 16, false>(const S*, const S*, const S*, S*, GEO_TYPES, double, int, int); \
    template __global__ void grp_wide<S, 8, true>(const S*, const S*, const S*, S*, GEO_TYPES, double, int, int); \
    template __global__ void grp_wide<S, 16, true>(const S*, const S*, const S*, S*, GEO_TYPES, double, int, int); \
    template __global__ void grp_wide_gw<S, 8>(const S*, const S*, float*, GEO_TYPES, double, int); \
    template __global__ void grp_wide_gw<S, 16>(const S*, const S*, float*, GEO_TYPES, double, int);

#define INSTANTIATE_DWWB(S, KB) \
    template __global__ void dw_wide_bwd<S, KB>(const S*, const S*, const S*, S*, float*, GEO_TYPES, double, double, int);
#define INSTANTIATE_DWW(S, KB) \
    template __global__ void dw_wide_gw<S, KB>(const S*, const S*, float*, GEO_TYPES, double, int); \
    template __global__ void dw_wide<S, KB, false>(const S*, const S*, const S*, S*, GEO_TYPES, double, int); \
    template __global__ void dw_wide<S, KB, true>(const S*, const S*, const S*, S*, GEO_TYPES, double, int);
#define INSTANTIATE_DW(S) \
    template __global__ void dw_bwd_vec<S, 4>(const S*, const S*, const S*, S*, float*, GEO_TYPES, double, double, int); \
    template __global__ void dw_bwd_vec<S, 8>(const S*, const S*, const S*, S*, float*, GEO_TYPES, double, double, int); \
    template __global__ void dw_bwd_vec<S, 16>(const S*, const S*, const S*, S*, float*, GEO_TYPES, double, double, int); \
    template __global__ void dw_grad_w_vec<S, 4>(const S*, const S*, float*, GEO_TYPES, double, int); \
    template __global__ void dw_grad_w_vec<S, 8>(const S*, const S*, float*, GEO_TYPES, double, int); \
    template __global__ void dw_grad_w_vec<S, 16>(const S*, const S*, float*, GEO_TYPES, double, int); \
    template __global__ void dw_grad_w_vec<S, 32>(const S*, const S*, float*, GEO_TYPES, double, int); \
    template __global__ void dw_grad_w_vec<S, 64>(const S*, const S*, float*, GEO_TYPES, double, int); \
    template __global__ void dw_vec<S, 4, false>(const S*, const S*, const S*, S*, GEO_TYPES, double, int); \
    template __global__ void dw_vec<S, 8, false>(const S*, const S*, const S*, S*, GEO_TYPES, double, int); \
    template __global__ void dw_vec<S, 16, false>(const S*, const S*, const S*, S*, GEO_TYPES, double, int); \
    template __global__ void dw_vec<S, 32, false>(const S*, const S*, const S*, S*, GEO_TYPES, double, int); \
    template __global__ void dw_vec<S, 64, false>(const S*, const S*, const S*, S*, GEO_TYPES, double, int); \
    template __global__ void dw_vec<S, 4, true>(const S*, const S*, const S*, S*, GEO_TYPES, double, int); \
    template __global__ void dw_vec<S, 8, true>(const S*, const S*, const S*, S*, GEO_TYPES, double, int); \
    template __global__ void dw_vec<S, 16, true>(const S*, const S*, const S*, S*, GEO_TYPES, double, int); \
    template __global__ void dw_vec<S, 32, true>(const S*, const S*, const S*, S*, GEO_TYPES, double, int); \
    template __global__ void dw_vec<S, 64, true>(const S*, const S*, const S*, S*, GEO_TYPES, double, int); \
    INSTANTIATE_DWW(S, 24) INSTANTIATE_DWW(S, 32) INSTANTIATE_DWW(S, 40) INSTANTIATE_DWW(S, 48) \
    INSTANTIATE_DWW(S, 56) INSTANTIATE_DWW(S, 64) \
    INSTANTIATE_DWWB(S, 8) INSTANTIATE_DWWB(S, 16) INSTANTIATE_DWWB(S, 32)

// ---------------------------------------------------------------------------------------
// Dense / wide-group forward as an implicit GEMM on the SIMT cores (no tensor cores, IEEE
// fused multiply-adds: the class of the other kernels). Per group: Y[o, (n,t)] =
// sum_q Ws[o, q] * B[q, (n,t)] with q = c*K + k, Ws = w * scale, B[q, (n,t)] = xp[n, c, t*stride
// + k*dil] read through the padding map (never materialized). Block tile 128 (o) x 128 (t of
// one n) x 8 (q); 256 threads, 8 x 8 outputs each; operands staged in shared memory as Acc.
// Sum order per output: q ascending, then the bias. Deterministic.
// A-tile value Ws[o0 + m, q] for element e of the tile (4 per thread; q fastest in memory).
template <typename S, typename A>
__device__ __forceinline__ A gemm_a(const S* __restrict__ wg, int e, int o0, int q0, int Og, int Q, A s) {
    const int kk = e & 7, m = e >> 3, o = o0 + m, q = q0 + kk;
    return (o < Og && q < Q) ? mul_ieee(to_acc(wg[(long long)o * Q + q]), s) : (A)0;
}

// B-tile value xp[n, c, t*stride + k*dil] for element e (t fastest: coalesced); the thread's
// (c, k) of that tile row is tracked incrementally (no division per element).
template <typename S, typename A>
__device__ __forceinline__ A gemm_b(const S* __restrict__ xg, int e, int c, int k, int t0, int Cg, int Lout,
                                    int L, int st, int dil, int pl, const Geo& g) {
    const int t = t0 + (e & 127);
    if (c >= Cg || t >= Lout) return (A)0;
    int i = t * st + k * dil - pl;
    if ((unsigned)i >= (unsigned)L) i = (int)src_index(i + pl, g.L, g.pl, g.mode);
    return i >= 0 ? to_acc(xg[(long long)c * L + i]) : (A)0;
}

template <typename S>
__global__ void __launch_bounds__(256) conv_fwd_gemm(const S* __restrict__ x, const S* __restrict__ w,
                                                     const S* __restrict__ b, S* __restrict__ y, GEO_ARGS,
                                                     double scale) {
    typedef typename Acc<S>::type A;
    constexpr int BM = 128, BN = 128, BK = 8;
    __shared__ __align__(16) A As[BK][BM];
    __shared__ __align__(16) A Bs[BK][BN];
    GEO_MAKE
    const int Cg = (int)(g.Cin / g.G), Og = (int)(g.Cout / g.G), K = (int)g.K, Q = Cg * K;
    const int Lout = (int)g.Lout, L = (int)g.L, st = (int)g.stride, dil = (int)g.dil, pl = (int)g.pl;
    const int tiles_t = (Lout + BN - 1) / BN;
    const int n = blockIdx.x / tiles_t, t0 = (blockIdx.x - n * tiles_t) * BN;
    const int o0 = blockIdx.y * BM, grp = blockIdx.z;
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;  // 16 x 16 threads
    const A s = (A)scale;
    const S* xg = x + ((long long)n * g.Cin + (long long)grp * Cg) * L;
    const S* wg = w + (long long)grp * Og * Q;
    A acc[8][8];
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = 0;
    // the next tile's operands are loaded into registers while the current one is multiplied
    A ra[4], rb[4];
    int bc[4], bk[4];  // (c, k) of this thread's B rows q = c*K + k (row kk = e >> 7 of the tile)
#pragma unroll
    for (int r = 0; r < 4; ++r) {
        const int e = threadIdx.x + r * 256, q = e >> 7;
        bc[r] = q / K;
        bk[r] = q - bc[r] * K;
        ra[r] = gemm_a<S, A>(wg, e, o0, 0, Og, Q, s);
        rb[r] = gemm_b<S, A>(xg, e, bc[r], bk[r], t0, Cg, Lout, L, st, dil, pl, g);
    }
    for (int q0 = 0; q0 < Q; q0 += BK) {
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            const int e = threadIdx.x + r * 256;
            As[e & 7][e >> 3] = ra[r];
            Bs[e >> 7][e & 127] = rb[r];
        }
        __syncthreads();
        if (q0 + BK < Q) {
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                const int e = threadIdx.x + r * 256;
                bk[r] += BK;  // advance q by BK
                while (bk[r] >= K) { bk[r] -= K; ++bc[r]; }
                ra[r] = gemm_a<S, A>(wg, e, o0, q0 + BK, Og, Q, s);
                rb[r] = gemm_b<S, A>(xg, e, bc[r], bk[r], t0, Cg, Lout, L, st, dil, pl, g);
            }
        }
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            A a[8], bv[8];
            if constexpr (sizeof(A) == 4) {  // 16-byte shared loads
                const float4 a0 = *reinterpret_cast<const float4*>(&As[kk][ty * 8]);
                const float4 a1 = *reinterpret_cast<const float4*>(&As[kk][ty * 8 + 4]);
                const float4 b0 = *reinterpret_cast<const float4*>(&Bs[kk][tx * 8]);
                const float4 b1 = *reinterpret_cast<const float4*>(&Bs[kk][tx * 8 + 4]);
                a[0] = a0.x; a[1] = a0.y; a[2] = a0.z; a[3] = a0.w; a[4] = a1.x; a[5] = a1.y; a[6] = a1.z; a[7] = a1.w;
                bv[0] = b0.x; bv[1] = b0.y; bv[2] = b0.z; bv[3] = b0.w; bv[4] = b1.x; bv[5] = b1.y; bv[6] = b1.z; bv[7] = b1.w;
            } else {
#pragma unroll
                for (int i = 0; i < 8; ++i) a[i] = As[kk][ty * 8 + i];
#pragma unroll
                for (int j = 0; j < 8; ++j) bv[j] = Bs[kk][tx * 8 + j];
            }
#pragma unroll
            for (int i = 0; i < 8; ++i)
#pragma unroll
                for (int j = 0; j < 8; ++j) acc[i][j] = fma_ieee(a[i], bv[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const int o = o0 + ty * 8 + i;
        if (o >= Og) continue;
        const long long oc = (long long)grp * Og + o;
        A br = 0;
        if (b) br = mul_ieee(to_acc(b[oc]), s);
        S* yrow = y + ((long long)n * g.Cout + oc) * Lout;
#pragma unroll
        for (int j = 0; j < 8; ++j) {
            const int t = t0 + tx * 8 + j;
            if (t < Lout) yrow[t] = from_acc<S>(add_ieee(acc[i][j], br));
        }
    }
}

#define INSTANTIATE_GEMM(S) \
    template __global__ void conv_fwd_gemm<S>(const S*, const S*, const S*, S*, GEO_TYPES, double);

// ---------------------------------------------------------------------------------------
// Dense / wide-group forward on the tensor cores (float16, bfloat16): mma.sync m16n8k16 with
// float32 accumulators. Both operands are first packed (one cheap pass each) into zero-padded
// channels-last copies, xt[n, g, p, c] = xp[n, g*Cg + c, p] (padding mode applied; p over
// [0, P), c over [0, Cp)) and wt[g, k, o, c] = w[g*Og + o, c, k] (o over [0, Op)), so the GEMM
// has no bounds checks and moves 16-byte rows with cp.async (two-stage pipeline). Per group,
// unscaled: Y[o, t] = sum_c sum_k wt[k, o, c] * xt[t*stride + k*dil, c]; block tile 128 (o) x
// 128 (t of one n) x 32 (c), all K taps of a channel chunk from one shared x tile (the taps are
// row shifts of it: ldmatrix takes a row address per lane). Products of 16-bit values are exact
// in float32; the tensor cores' float32 additions truncate (declared class "tc-fp32-acc").
// Epilogue: fma(acc, scale, scale*bias) rounded once to S. An accumulator that is not finite
// (the unscaled sum overflowed, or non-finite inputs) is recomputed by conv_fwd's scaled loop,
// so those outputs are exactly the IEEE kernels'. Deterministic: fixed tiles and order.
// (Both 16-bit formats are packed as raw bits: all-zero bits are +0.)
typedef unsigned short u16;
__global__ void pack_x(const u16* __restrict__ x, u16* __restrict__ xt, GEO_ARGS, int P, int Cp) {
    // One 64 (c) x 64 (p) tile per block of 32 x 8 threads; each thread moves pairs: two
    // positions of a row on the way in (coalesced along p), two channels on the way out (one
    // 32-bit store, coalesced along c). Index maps only at the edges.
    GEO_MAKE
    __shared__ __align__(4) u16 tile[64][66];  // [c][p]
    const int Cg = (int)(g.Cin / g.G), L = (int)g.L, pl = (int)g.pl, Lp = (int)(g.L + g.pl + g.pr);
    const long long ng = blockIdx.x, n = ng / g.G, grp = ng - n * g.G;
    const int p0 = blockIdx.y * 64, c0 = blockIdx.z * 64, tx = threadIdx.x, ty = threadIdx.y;
    const int pa = p0 + 2 * tx;
    int i0 = pa - pl, i1 = i0 + 1;
    if ((unsigned)i0 >= (unsigned)L) i0 = pa < Lp ? (int)src_index(pa, g.L, g.pl, g.mode) : -1;
    if ((unsigned)i1 >= (unsigned)L) i1 = pa + 1 < Lp ? (int)src_index(pa + 1, g.L, g.pl, g.mode) : -1;
    const u16* xr = x + (n * g.Cin + grp * Cg + c0) * g.L;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        const int cl = ty + 8 * j;
        u16 v0 = 0, v1 = 0;
        if (c0 + cl < Cg) {
            const u16* row = xr + (long long)cl * L;
            if (i0 >= 0) v0 = row[i0];
            if (i1 >= 0) v1 = row[i1];
        }
        *reinterpret_cast<unsigned*>(&tile[cl][2 * tx]) = v0 | ((unsigned)v1 << 16);
    }
    __syncthreads();
    if (c0 + 2 * tx >= Cp) return;
    u16* out = xt + (ng * P + p0) * Cp + c0 + 2 * tx;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        const int r = ty + 8 * j;
        if (p0 + r < P)
            *reinterpret_cast<unsigned*>(out + (long long)r * Cp) = tile[2 * tx][r] | ((unsigned)tile[2 * tx + 1][r] << 16);
    }
}

// The weights are packed by pack_w_wide<u16> (below, with the float64 tensor-core kernel).

// The tensor-core kernels' PTX (cp.async, ldmatrix, mma.sync: sm_80 and newer) is compiled only
// where it exists; elsewhere (older GPUs, HIP) these helpers trap and the host never launches
// the kernels that use them (CupyBackend._tensor_cores), so the rest of the module still builds.
#if !defined(__HIPCC__) && (!defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800)
#define USCONV_SM80 1
#else
#define USCONV_SM80 0
#endif
#if defined(__HIPCC__)
#define USCONV_UNREACHABLE() abort()
#else
#define USCONV_UNREACHABLE() __trap()
#endif

__device__ __forceinline__ unsigned smem_u32(const void* p) {
#if USCONV_SM80
    return (unsigned)__cvta_generic_to_shared(p);
#else
    USCONV_UNREACHABLE();
    return 0u;
#endif
}
__device__ __forceinline__ void cp_async16(unsigned dst, const void* src) {
#if USCONV_SM80
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src));
#else
    USCONV_UNREACHABLE();
#endif
}
__device__ __forceinline__ void cp_async_commit() {
#if USCONV_SM80
    asm volatile("cp.async.commit_group;\n" ::);
#endif
}
template <int N> __device__ __forceinline__ void cp_async_wait() {
#if USCONV_SM80
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}
__device__ __forceinline__ void ldsm_x4(unsigned addr, unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3) {
#if USCONV_SM80
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
#else
    r0 = r1 = r2 = r3 = 0u;
    USCONV_UNREACHABLE();
#endif
}
template <typename S> __device__ __forceinline__ void mma16816(float c[4], const unsigned a[4], unsigned b0, unsigned b1);
template <> __device__ __forceinline__ void mma16816<__half>(float c[4], const unsigned a[4], unsigned b0, unsigned b1) {
#if USCONV_SM80
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
    USCONV_UNREACHABLE();
#endif
}
template <> __device__ __forceinline__ void mma16816<bf16_t>(float c[4], const unsigned a[4], unsigned b0, unsigned b1) {
#if USCONV_SM80
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
    USCONV_UNREACHABLE();
#endif
}

// The packed-operand pipeline of both tensor-core forwards: block (n * tiles + t-tile, o-tile,
// group) computes BM output channels x BN positions from packed channels-last operands (xt: [N][G]
// [P][Cp], wt: [G][K][Op][Cp], elements E) in chunks of BK channels; a stage holds the K weight
// tiles [K][BM][LD] and the x tile [span][LD] (rows of BK elements padded to LD), filled by
// 16-byte cp.async copies (NT threads). begin(ch) waits for chunk ch (issuing ch + 1 first when
// two stages fit) and returns its stage; end(ch) follows its products.
template <typename E, int BM, int BN, int BK, int LD, int NT>
struct PackedPipe {
    static constexpr int PER = 16 / (int)sizeof(E), CH = BK / PER;  // elements per copy, copies per row
    E* Ws;  // [stages][K][BM][LD]
    E* Xs;  // [stages][span][LD]
    const E* wsrc;
    const E* xsrc;
    int K, Cp, Op, span, stages, w_stage, x_stage, nchunks, n, t0, o0, grp;
    __device__ __forceinline__ PackedPipe(unsigned char* smem, const E* xt, const E* wt, const Geo& g, int P, int Op_,
                                          int Cp_, int span_, int stages_) {
        K = (int)g.K; Cp = Cp_; Op = Op_; span = span_; stages = stages_;
        const int tiles_t = ((int)g.Lout + BN - 1) / BN;
        n = blockIdx.x / tiles_t; t0 = (blockIdx.x - n * tiles_t) * BN;
        o0 = blockIdx.y * BM; grp = blockIdx.z;
        w_stage = K * BM * LD; x_stage = span * LD; nchunks = Cp / BK;
        Ws = reinterpret_cast<E*>(smem);
        Xs = Ws + stages * w_stage;
        wsrc = wt + ((long long)grp * K * Op + o0) * Cp;
        xsrc = xt + (((long long)n * g.G + grp) * P + (long long)t0 * g.stride) * Cp;
    }
    __device__ __forceinline__ void issue(int chunk, int stage) const {
        const int c0 = chunk * BK;
        E* wd = Ws + stage * w_stage;
        E* xd = Xs + stage * x_stage;
        for (int e = threadIdx.x; e < K * BM * CH; e += NT) {
            const int cl = (e % CH) * PER, row = e / CH, k = row / BM, r = row - k * BM;
            cp_async16(smem_u32(wd + row * LD + cl), wsrc + ((long long)k * Op + r) * Cp + c0 + cl);
        }
        for (int e = threadIdx.x; e < span * CH; e += NT) {
            const int cl = (e % CH) * PER, row = e / CH;
            cp_async16(smem_u32(xd + row * LD + cl), xsrc + (long long)row * Cp + c0 + cl);
        }
        cp_async_commit();
    }
    // After chunk ch's products: with one stage, the next chunk is loaded only now.
    __device__ __forceinline__ void end(int ch) const {
        __syncthreads();
        if (stages == 1 && ch + 1 < nchunks) issue(ch + 1, 0);
    }
    __device__ __forceinline__ int begin(int ch) const {
        const int cur = stages == 2 ? (ch & 1) : 0;
        if (stages == 2 && ch + 1 < nchunks) {
            issue(ch + 1, cur ^ 1);
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        return cur;
    }
};

constexpr int MMA_BM = 128, MMA_BN = 128, MMA_BK = 32, MMA_LD = MMA_BK + 8;  // LD: 80-byte rows, ldmatrix conflict-free

template <typename S>
__global__ void __launch_bounds__(256, 2) conv_fwd_mma(const S* __restrict__ xt, const S* __restrict__ wt,
                                                       const S* __restrict__ x, const S* __restrict__ w,
                                                       const S* __restrict__ b, S* __restrict__ y, GEO_ARGS,
                                                       double scale, int P, int Op, int Cp, int span, int stages) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    GEO_MAKE
    const int K = (int)g.K, st = (int)g.stride, dil = (int)g.dil, Og = (int)(g.Cout / g.G), Lout = (int)g.Lout;
    const PackedPipe<S, MMA_BM, MMA_BN, MMA_BK, MMA_LD, 256> pipe(smem_raw, xt, wt, g, P, Op, Cp, span, stages);
    const int n = pipe.n, t0 = pipe.t0, o0 = pipe.o0, grp = pipe.grp;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int wm = warp >> 2, wn = warp & 3;  // 2 x 4 warps, warp tile 64 (o) x 32 (t)
    float acc[4][4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
#pragma unroll
            for (int r = 0; r < 4; ++r) acc[i][j][r] = 0.f;
    pipe.issue(0, 0);
    for (int ch = 0; ch < pipe.nchunks; ++ch) {  // two stages: the next chunk loads during this one's products
        const int cur = pipe.begin(ch);
        const S* wsb = pipe.Ws + cur * pipe.w_stage;
        const S* xsb = pipe.Xs + cur * pipe.x_stage;
        for (int k = 0; k < K; ++k) {
#pragma unroll
            for (int ks = 0; ks < MMA_BK / 16; ++ks) {
                unsigned a[4][4], bf[4][2];
#pragma unroll
                for (int mi = 0; mi < 4; ++mi)
                    ldsm_x4(smem_u32(wsb + (k * MMA_BM + wm * 64 + mi * 16 + (lane & 15)) * MMA_LD + ks * 16 +
                                     8 * (lane >> 4)),
                            a[mi][0], a[mi][1], a[mi][2], a[mi][3]);
#pragma unroll
                for (int nj = 0; nj < 2; ++nj) {
                    const int tl = wn * 32 + (nj * 2 + (lane >> 4)) * 8 + (lane & 7);
                    ldsm_x4(smem_u32(xsb + (tl * st + k * dil) * MMA_LD + ks * 16 + 8 * ((lane >> 3) & 1)),
                            bf[2 * nj][0], bf[2 * nj][1], bf[2 * nj + 1][0], bf[2 * nj + 1][1]);
                }
#pragma unroll
                for (int mi = 0; mi < 4; ++mi)
#pragma unroll
                    for (int ni = 0; ni < 4; ++ni) mma16816<S>(acc[mi][ni], a[mi], bf[ni][0], bf[ni][1]);
            }
        }
        pipe.end(ch);
    }
    // Epilogue: scaled results into shared memory (the pipeline's buffers are free now), then
    // 16-byte row segments to y (element by element where L_out is not a multiple of 8).
    constexpr int YLD = MMA_BN + 8;  // 272-byte rows: fragment writes conflict-free
    S* Ys = reinterpret_cast<S*>(smem_raw);
    const float s = (float)scale;
#pragma unroll
    for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int ol = wm * 64 + mi * 16 + (lane >> 2) + 8 * h, o = o0 + ol;
            const long long oc = (long long)grp * Og + (o < Og ? o : Og - 1);
            const float br = b ? mul_ieee(to_acc(b[oc]), s) : 0.f;
#pragma unroll
            for (int ni = 0; ni < 4; ++ni)
#pragma unroll
                for (int j = 0; j < 2; ++j) {
                    const int tl = wn * 32 + ni * 8 + 2 * (lane & 3) + j, t = t0 + tl;
                    float v = acc[mi][ni][2 * h + j];
                    if (isfinite(v)) {
                        v = fma_ieee(v, s, br);
                    } else if (o < Og && t < Lout) {
                        float vi;
                        fwd_point<S, false>(x, w, b, g, n, oc, t, s, v, vi);
                    }
                    Ys[ol * YLD + tl] = from_acc<S>(v);
                }
        }
    __syncthreads();
    const bool vec = (Lout & 7) == 0;
    for (int e = threadIdx.x; e < MMA_BM * (MMA_BN / 8); e += 256) {
        const int r = e / (MMA_BN / 8), seg = e - r * (MMA_BN / 8), o = o0 + r, t = t0 + seg * 8;
        if (o >= Og || t >= Lout) continue;
        S* dst = y + ((long long)n * g.Cout + (long long)grp * Og + o) * Lout + t;
        const S* src = Ys + r * YLD + seg * 8;
        if (vec) {
            *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
        } else {
            for (int q = 0; q < 8 && t + q < Lout; ++q) dst[q] = src[q];
        }
    }
}

#define INSTANTIATE_MMA(S) \
    template __global__ void conv_fwd_mma<S>(const S*, const S*, const S*, const S*, const S*, S*, GEO_TYPES, \
                                             double, int, int, int, int, int);

// ---------------------------------------------------------------------------------------
// Dense / wide-group float32, float64, complex64 and complex128 forwards on the float64 tensor
// cores (DMMA: mma.sync m16n8k8 .f64, IEEE double fused operations). float32 parts widen to
// double exactly as they are read from shared memory, so products are exact and sums carry 53
// bits: at least as accurate as the float32 class (no TF32 anywhere). Operands packed as for
// the 16-bit kernel, in their own width (pack_x_wide / pack_w_wide). Complex outputs by the
// textbook product, re += xr*wr - xi*wi, im += xr*wi + xi*wr: four DMMAs per fragment pair.
// Unscaled sums; the epilogue forms fma(acc, scale, scale*bias) in double (the scale as the
// class declares it: rounded to float32 for 32-bit parts) and recomputes non-finite
// accumulators by conv_fwd's scaled loop. Block tile 64 (o) x 64 (t) x 8 (c); 4 warps of
// 32 x 32. Deterministic.
template <typename E>
__global__ void pack_x_wide(const E* __restrict__ x, E* __restrict__ xt, GEO_ARGS, int P, int Cp) {
    GEO_MAKE
    __shared__ E tile[32][33];  // [c][p]
    const int Cg = (int)(g.Cin / g.G), L = (int)g.L, pl = (int)g.pl, Lp = (int)(g.L + g.pl + g.pr);
    const long long ng = blockIdx.x, n = ng / g.G, grp = ng - n * g.G;
    const int p0 = blockIdx.y * 32, c0 = blockIdx.z * 32, tx = threadIdx.x, ty = threadIdx.y;
    const int pa = p0 + tx;
    int i = pa - pl;
    if ((unsigned)i >= (unsigned)L) i = pa < Lp ? (int)src_index(pa, g.L, g.pl, g.mode) : -1;
    const E* xr = x + (n * g.Cin + grp * Cg + c0) * g.L;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const int cl = ty + 8 * j;
        E v{};
        if (c0 + cl < Cg && i >= 0) v = xr[(long long)cl * L + i];
        tile[cl][tx] = v;
    }
    __syncthreads();
    if (c0 + tx >= Cp) return;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const int r = ty + 8 * j;
        if (p0 + r < P) xt[(ng * P + p0 + r) * Cp + c0 + tx] = tile[tx][r];
    }
}

template <typename E>
__global__ void pack_w_wide(const E* __restrict__ w, E* __restrict__ wt, GEO_ARGS, int Op, int Cp) {
    GEO_MAKE
    const long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const int Cg = (int)(g.Cin / g.G), Og = (int)(g.Cout / g.G), K = (int)g.K;
    if (e >= g.G * K * (long long)Op * Cp) return;
    const int c = (int)(e % Cp);
    long long r = e / Cp;
    const int o = (int)(r % Op);
    r /= Op;
    const int k = (int)(r % K);
    const long long grp = r / K;
    E v{};
    if (o < Og && c < Cg) v = w[((grp * Og + o) * Cg + c) * K + k];
    wt[e] = v;
}

__device__ __forceinline__ void dmma884(double& c0, double& c1, double a, double b) {
#if USCONV_SM80
    asm volatile("mma.sync.aligned.m8n8k4.row.col.f64.f64.f64.f64 {%0,%1}, {%2}, {%3}, {%0,%1};\n"
                 : "+d"(c0), "+d"(c1) : "d"(a), "d"(b));
#else
    USCONV_UNREACHABLE();
#endif
}
// c (16 x 8) += a (16 x 8) b (8 x 8). Fragments (g = lane/4, q = lane%4): a = (g, q), (g+8, q),
// (g, q+4), (g+8, q+4); b = (q, g), (q+4, g); c = (g, 2q), (g, 2q+1), (g+8, 2q), (g+8, 2q+1).
// sm_90 has the m16n8k8 shape (four times the work of m8n8k4 per instruction); earlier
// architectures get the same product as four m8n8k4 (the fragments line up; the rounding of
// the partial sums may differ in the last bit between the two forms).
__device__ __forceinline__ void dmma1688(double c[4], const double a[4], const double b[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f64.f64.f64.f64 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+d"(c[0]), "+d"(c[1]), "+d"(c[2]), "+d"(c[3])
                 : "d"(a[0]), "d"(a[1]), "d"(a[2]), "d"(a[3]), "d"(b[0]), "d"(b[1]));
#else
    dmma884(c[0], c[1], a[0], b[0]);
    dmma884(c[0], c[1], a[2], b[1]);
    dmma884(c[2], c[3], a[1], b[0]);
    dmma884(c[2], c[3], a[3], b[1]);
#endif
}
// a packed element's (re, im) as doubles (32-bit parts widen exactly)
__device__ __forceinline__ void parts(float v, double& r, double& i) { r = v; i = 0.0; }
__device__ __forceinline__ void parts(double v, double& r, double& i) { r = v; i = 0.0; }
__device__ __forceinline__ void parts(float2 v, double& r, double& i) { r = v.x; i = v.y; }
__device__ __forceinline__ void parts(double2 v, double& r, double& i) { r = v.x; i = v.y; }

constexpr int Z_BM = 64, Z_BN = 64, Z_BK = 8, Z_LD = 12;  // LD: 12-element rows, fragment loads conflict-free
template <typename S, bool CPLX> struct Packed { typedef S type; };  // packed element of the DMMA kernel
template <> struct Packed<float, true> { typedef float2 type; };
template <> struct Packed<double, true> { typedef double2 type; };

template <typename S, bool CPLX>
__global__ void __launch_bounds__(128) conv_fwd_dmma(const void* __restrict__ xt_, const void* __restrict__ wt_,
                                                     const S* __restrict__ x, const S* __restrict__ w,
                                                     const S* __restrict__ b, S* __restrict__ y, GEO_ARGS,
                                                     double scale, int P, int Op, int Cp, int span, int stages) {
    typedef typename Packed<S, CPLX>::type E;
    typedef typename Acc<S>::type A;
    const E* __restrict__ xt = static_cast<const E*>(xt_);
    const E* __restrict__ wt = static_cast<const E*>(wt_);
    extern __shared__ __align__(16) unsigned char smem_raw[];
    GEO_MAKE
    const int K = (int)g.K, st = (int)g.stride, dil = (int)g.dil, Og = (int)(g.Cout / g.G), Lout = (int)g.Lout;
    const PackedPipe<E, Z_BM, Z_BN, Z_BK, Z_LD, 128> pipe(smem_raw, xt, wt, g, P, Op, Cp, span, stages);
    const int n = pipe.n, t0 = pipe.t0, o0 = pipe.o0, grp = pipe.grp;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gq = lane >> 2, q = lane & 3;
    const int wm = warp >> 1, wn = warp & 1;  // 2 x 2 warps of 32 (o) x 32 (t): 2 x 4 fragments
    double accr[2][4][4], acci[2][4][4];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
#pragma unroll
            for (int r = 0; r < 4; ++r) accr[i][j][r] = acci[i][j][r] = 0.0;
    pipe.issue(0, 0);
    for (int ch = 0; ch < pipe.nchunks; ++ch) {
        const int cur = pipe.begin(ch);
        const E* wsb = pipe.Ws + cur * pipe.w_stage;
        const E* xsb = pipe.Xs + cur * pipe.x_stage;
        for (int k = 0; k < K; ++k) {  // one k8 step per tap (Z_BK = 8)
            double ar[2][4], ai[2][4], nai[2][4], br[4][2], bi[4][2];
#pragma unroll
            for (int mi = 0; mi < 2; ++mi)
#pragma unroll
                for (int r = 0; r < 4; ++r) {
                    parts(wsb[(k * Z_BM + wm * 32 + mi * 16 + gq + 8 * (r & 1)) * Z_LD + q + 4 * (r >> 1)], ar[mi][r],
                          ai[mi][r]);
                    nai[mi][r] = -ai[mi][r];
                }
#pragma unroll
            for (int ni = 0; ni < 4; ++ni)
#pragma unroll
                for (int r = 0; r < 2; ++r)
                    parts(xsb[((wn * 32 + ni * 8 + gq) * st + k * dil) * Z_LD + q + 4 * r], br[ni][r], bi[ni][r]);
#pragma unroll
            for (int mi = 0; mi < 2; ++mi)
#pragma unroll
                for (int ni = 0; ni < 4; ++ni) {
                    dmma1688(accr[mi][ni], ar[mi], br[ni]);
                    if (CPLX) {
                        dmma1688(accr[mi][ni], nai[mi], bi[ni]);
                        dmma1688(acci[mi][ni], ar[mi], bi[ni]);
                        dmma1688(acci[mi][ni], ai[mi], br[ni]);
                    }
                }
        }
        pipe.end(ch);
    }
    const double sd = (double)(A)scale;  // the scale as declared: float32 for 32-bit parts
#pragma unroll
    for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int o = o0 + wm * 32 + mi * 16 + gq + 8 * h;
            if (o >= Og) continue;
            const long long oc = (long long)grp * Og + o;
            double bre = 0.0, bim = 0.0;
            if (b) {
                A r, i;
                load<S, CPLX>(b, oc, r, i);
                bre = (double)r * sd;
                bim = (double)i * sd;
            }
#pragma unroll
            for (int ni = 0; ni < 4; ++ni)
#pragma unroll
                for (int j = 0; j < 2; ++j) {
                    const int t = t0 + wn * 32 + ni * 8 + 2 * q + j;
                    if (t >= Lout) continue;
                    double vr = accr[mi][ni][2 * h + j], vi = acci[mi][ni][2 * h + j];
                    A outr, outi;
                    if (isfinite(vr) && isfinite(vi)) {
                        outr = (A)fma(vr, sd, bre);
                        outi = (A)fma(vi, sd, bim);
                    } else {
                        fwd_point<S, CPLX>(x, w, b, g, n, oc, t, (A)scale, outr, outi);
                    }
                    store<S, CPLX>(y, ((long long)n * g.Cout + oc) * Lout + t, outr, outi);
                }
        }
}

#define INSTANTIATE_DMMA(S, E, C) \
    template __global__ void pack_x_wide<E>(const E*, E*, GEO_TYPES, int, int); \
    template __global__ void pack_w_wide<E>(const E*, E*, GEO_TYPES, int, int); \
    template __global__ void conv_fwd_dmma<S, C>(const void*, const void*, const S*, const S*, const S*, S*, GEO_TYPES, \
                                                 double, int, int, int, int, int);
template __global__ void pack_w_wide<u16>(const u16*, u16*, GEO_TYPES, int, int);  // conv_fwd_mma's weights
INSTANTIATE_DMMA(float, float, false)
INSTANTIATE_DMMA(double, double, false)
INSTANTIATE_DMMA(float, float2, true)
INSTANTIATE_DMMA(double, double2, true)
