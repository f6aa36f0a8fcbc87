// usconv CuPy backend: the unit-scaled conv1d written from scratch (no cuDNN/cuBLAS).
// One thread per output element, sequential fixed-order loops: deterministic, no atomics.
// S: storage type of one real part (__half, __nv_bfloat16, float, double);
// CPLX: interleaved (re, im) parts; accumulation in Acc<S> (float for 16-bit and float32,
// double for float64). Padding modes are index maps (SPEC §2); no padded copy is made.
// Scales are applied in the epilogue as the compute type (declared by the backend).
// HIP-compatible except for the 16-bit headers (guarded below).
#if defined(__HIPCC__)
#include <hip/hip_fp16.h>
#include <hip/hip_bf16.h>
typedef __hip_bfloat16 bf16_t;
#else
#include <cuda_fp16.h>
#include <cuda_bf16.h>
typedef __nv_bfloat16 bf16_t;
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

// The geometry travels as 12 int64 (N, Cin, Cout, L, K, Lout, G, stride, dil, pl, pr, mode).
__device__ __forceinline__ Geo geo_of(const long long* p) {
    Geo g = {p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], (int)p[11]};
    return g;
}

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

// acc += a * (CONJ ? conj(b) : b), the textbook complex product, one fma per real product.
template <typename A, bool CPLX, bool CONJ>
__device__ __forceinline__ void mac(A& sr, A& si, A ar, A ai, A br, A bi) {
    if (!CPLX) { sr = fma(ar, br, sr); return; }
    if (CONJ) bi = -bi;
    sr = fma(ar, br, sr); sr = fma(-ai, bi, sr);
    si = fma(ar, bi, si); si = fma(ai, br, si);
}

template <typename S, bool CPLX>
__global__ void conv_fwd(const S* __restrict__ x, const S* __restrict__ w, const S* __restrict__ b,
                         S* __restrict__ y, const long long* gp, double scale) {
    const Geo g = geo_of(gp);
    typedef typename Acc<S>::type A;
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long total = g.N * g.Cout * g.Lout;
    if (idx >= total) return;
    long long t = idx % g.Lout, o = (idx / g.Lout) % g.Cout, n = idx / (g.Lout * g.Cout);
    long long Cg = g.Cin / g.G, Og = g.Cout / g.G, grp = o / Og;
    A sr = 0, si = 0;
    for (long long c = 0; c < Cg; ++c) {
        long long ci = grp * Cg + c;
        for (long long k = 0; k < g.K; ++k) {
            long long j = src_index(t * g.stride + k * g.dil, g.L, g.pl, g.mode);
            A xr = 0, xi = 0, wr, wi;
            if (j >= 0) load<S, CPLX>(x, (n * g.Cin + ci) * g.L + j, xr, xi);
            load<S, CPLX>(w, (o * Cg + c) * g.K + k, wr, wi);
            mac<A, CPLX, false>(sr, si, xr, xi, wr, wi);  // a padded zero still multiplies (IEEE 0*inf)
        }
    }
    if (b) { A br, bi; load<S, CPLX>(b, o, br, bi); sr += br; si += bi; }
    A s = (A)scale;
    store<S, CPLX>(y, idx, sr * s, si * s);
}

// grad_w[o,c,k] = s * sum_{n,t} gy[n,o,t] * conj(xp[n, grp*Cg+c, t*stride + k*dil])
template <typename S, bool CPLX>
__global__ void conv_grad_w(const S* __restrict__ gy, const S* __restrict__ x, S* __restrict__ gw, const long long* gp, double scale) {
    const Geo g = geo_of(gp);
    typedef typename Acc<S>::type A;
    long long Cg = g.Cin / g.G, Og = g.Cout / g.G;
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= g.Cout * Cg * g.K) return;
    long long k = idx % g.K, c = (idx / g.K) % Cg, o = idx / (g.K * Cg);
    long long ci = (o / Og) * Cg + c;
    A sr = 0, si = 0;
    for (long long n = 0; n < g.N; ++n) {
        for (long long t = 0; t < g.Lout; ++t) {
            long long j = src_index(t * g.stride + k * g.dil, g.L, g.pl, g.mode);
            A xr = 0, xi = 0, ar, ai;
            if (j >= 0) load<S, CPLX>(x, (n * g.Cin + ci) * g.L + j, xr, xi);
            load<S, CPLX>(gy, (n * g.Cout + o) * g.Lout + t, ar, ai);
            mac<A, CPLX, true>(sr, si, ar, ai, xr, xi);
        }
    }
    A s = (A)scale;
    store<S, CPLX>(gw, idx, sr * s, si * s);
}

// Two-stage deterministic grad_w for long reductions: stage 1 sums chunk p of the flat
// (n, t) range for every weight element into partial[p][e]; stage 2 adds the partials in
// order p = 0, 1, ... and applies the scale. Fixed order: bitwise reproducible.
template <typename S, bool CPLX>
__global__ void conv_grad_w_partial(const S* __restrict__ gy, const S* __restrict__ x,
                                    typename Acc<S>::type* __restrict__ partial, const long long* gp,
                                    long long chunks) {
    typedef typename Acc<S>::type A;
    const Geo g = geo_of(gp);
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
        load<S, CPLX>(gy, (n * g.Cout + o) * g.Lout + t, ar, ai);
        mac<A, CPLX, true>(sr, si, ar, ai, xr, xi);
    }
    partial[(p * E + e) * (CPLX ? 2 : 1)] = sr;
    if (CPLX) partial[(p * E + e) * 2 + 1] = si;
}

template <typename S, bool CPLX>
__global__ void conv_grad_w_final(const typename Acc<S>::type* __restrict__ partial, S* __restrict__ gw,
                                  long long E, long long chunks, double scale) {
    typedef typename Acc<S>::type A;
    long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= E) return;
    A sr = 0, si = 0;
    for (long long p = 0; p < chunks; ++p) {
        sr += partial[(p * E + e) * (CPLX ? 2 : 1)];
        if (CPLX) si += partial[(p * E + e) * 2 + 1];
    }
    A s = (A)scale;
    store<S, CPLX>(gw, e, sr * s, si * s);
}

// grad_b[o] = s * sum_{n,t} gy[n,o,t]
template <typename S, bool CPLX>
__global__ void conv_grad_b(const S* __restrict__ gy, S* __restrict__ gb, const long long* gp, double scale) {
    const Geo g = geo_of(gp);
    typedef typename Acc<S>::type A;
    long long o = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= g.Cout) return;
    A sr = 0, si = 0;
    for (long long n = 0; n < g.N; ++n)
        for (long long t = 0; t < g.Lout; ++t) {
            A ar, ai;
            load<S, CPLX>(gy, (n * g.Cout + o) * g.Lout + t, ar, ai);
            sr += ar; si += ai;
        }
    A s = (A)scale;
    store<S, CPLX>(gb, o, sr * s, si * s);
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

// grad_x[n,ci,j] = s * sum over copies i of j, taps k with (i - k*dil) = t*stride, o in group:
//                  gy[n,o,t] * conj(w[o, ci%Cg, k])
template <typename S, bool CPLX>
__global__ void conv_grad_x(const S* __restrict__ gy, const S* __restrict__ w, S* __restrict__ gx, const long long* gp, double scale) {
    const Geo g = geo_of(gp);
    typedef typename Acc<S>::type A;
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= g.N * g.Cin * g.L) return;
    long long j = idx % g.L, ci = (idx / g.L) % g.Cin, n = idx / (g.L * g.Cin);
    long long Cg = g.Cin / g.G, Og = g.Cout / g.G, grp = ci / Cg, c = ci % Cg;
    long long lo[4], hi[4];
    int m = copies(j, g, lo, hi);
    A sr = 0, si = 0;
    for (int r = 0; r < m; ++r)
        for (long long i = lo[r]; i < hi[r]; ++i)
            for (long long k = 0; k < g.K; ++k) {
                long long u = i - k * g.dil;
                if (u < 0 || u % g.stride) continue;
                long long t = u / g.stride;
                if (t >= g.Lout) continue;
                for (long long oo = 0; oo < Og; ++oo) {
                    long long o = grp * Og + oo;
                    A ar, ai, wr, wi;
                    load<S, CPLX>(gy, (n * g.Cout + o) * g.Lout + t, ar, ai);
                    load<S, CPLX>(w, (o * Cg + c) * g.K + k, wr, wi);
                    mac<A, CPLX, true>(sr, si, ar, ai, wr, wi);
                }
            }
    A s = (A)scale;
    store<S, CPLX>(gx, idx, sr * s, si * s);
}

#define INSTANTIATE(S, C) \
    template __global__ void conv_fwd<S, C>(const S*, const S*, const S*, S*, const long long*, double); \
    template __global__ void conv_grad_w<S, C>(const S*, const S*, S*, const long long*, double); \
    template __global__ void conv_grad_b<S, C>(const S*, S*, const long long*, double); \
    template __global__ void conv_grad_x<S, C>(const S*, const S*, S*, const long long*, double); \
    template __global__ void conv_grad_w_partial<S, C>(const S*, const S*, typename Acc<S>::type*, const long long*, long long); \
    template __global__ void conv_grad_w_final<S, C>(const typename Acc<S>::type*, S*, long long, long long, double);

// ---------------------------------------------------------------------------------------
// Row-tiled kernels for few channels per group (depthwise, depthwise x multiplier, small
// groups): a block owns a tile of one output row; the input (or grad_y) segment the tile
// reads is staged once in shared memory with the padding map applied while loading, so
// global memory is read about once. Fixed loop orders: deterministic.

template <typename A> struct Pair { A r, i; };

// y[n, o, t0 : t0+T]: block = (row n*Cout+o, tile); each thread PER outputs, strided by
// blockDim so the stores coalesce. Sum order: c, then k (as conv_fwd).
template <typename S, bool CPLX, int PER>
__global__ void conv_fwd_tile(const S* __restrict__ x, const S* __restrict__ w, const S* __restrict__ b,
                              S* __restrict__ y, const long long* gp, double scale) {
    typedef typename Acc<S>::type A;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    Pair<A>* sx = reinterpret_cast<Pair<A>*>(smem_raw);
    const Geo g = geo_of(gp);
    const long long T = (long long)blockDim.x * PER;
    const long long tiles = (g.Lout + T - 1) / T;
    const long long row = blockIdx.x / tiles, tile = blockIdx.x % tiles;
    const long long n = row / g.Cout, o = row % g.Cout;
    const long long Cg = g.Cin / g.G, Og = g.Cout / g.G, grp = o / Og;
    const long long t0 = tile * T;
    const long long tcount = (g.Lout - t0) < T ? (g.Lout - t0) : T;
    const long long span = (tcount - 1) * g.stride + (g.K - 1) * g.dil + 1;
    const long long i0 = t0 * g.stride;
    A sr[PER], si[PER];
    for (int r = 0; r < PER; ++r) { sr[r] = 0; si[r] = 0; }
    for (long long c = 0; c < Cg; ++c) {
        const long long ci = grp * Cg + c;
        const S* xrow = x + (n * g.Cin + ci) * g.L * (CPLX ? 2 : 1);
        for (long long q = threadIdx.x; q < span; q += blockDim.x) {
            long long j = src_index(i0 + q, g.L, g.pl, g.mode);
            A vr = 0, vi = 0;
            if (j >= 0) load<S, CPLX>(xrow, j, vr, vi);
            sx[q].r = vr; sx[q].i = vi;
        }
        __syncthreads();
        for (long long k = 0; k < g.K; ++k) {
            A wr, wi;
            load<S, CPLX>(w, (o * Cg + c) * g.K + k, wr, wi);
            for (int r = 0; r < PER; ++r) {
                long long tl = threadIdx.x + (long long)r * blockDim.x;
                if (tl < tcount) {
                    Pair<A> v = sx[tl * g.stride + k * g.dil];
                    mac<A, CPLX, false>(sr[r], si[r], v.r, v.i, wr, wi);
                }
            }
        }
        __syncthreads();
    }
    A br = 0, bi = 0;
    if (b) load<S, CPLX>(b, o, br, bi);
    const A s = (A)scale;
    for (int r = 0; r < PER; ++r) {
        long long tl = threadIdx.x + (long long)r * blockDim.x;
        if (tl < tcount) store<S, CPLX>(y, row * g.Lout + t0 + tl, (sr[r] + br) * s, (si[r] + bi) * s);
    }
}

// grad_x[n, ci, j0 : j0+T]: the main copy (i = j + pl) from a staged grad_y segment for each
// output channel of the group; then, for edge elements only, the extra padding copies.
template <typename S, bool CPLX, int PER>
__global__ void conv_grad_x_tile(const S* __restrict__ gy, const S* __restrict__ w, S* __restrict__ gx,
                                 const long long* gp, double scale) {
    typedef typename Acc<S>::type A;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    Pair<A>* sg = reinterpret_cast<Pair<A>*>(smem_raw);
    const Geo g = geo_of(gp);
    const long long T = (long long)blockDim.x * PER;
    const long long tiles = (g.L + T - 1) / T;
    const long long row = blockIdx.x / tiles, tile = blockIdx.x % tiles;
    const long long n = row / g.Cin, ci = row % g.Cin;
    const long long Cg = g.Cin / g.G, Og = g.Cout / g.G, grp = ci / Cg, c = ci % Cg;
    const long long j0 = tile * T;
    const long long jcount = (g.L - j0) < T ? (g.L - j0) : T;
    // t range read by the tile's main copies: u = j + pl - k*dil = t*stride
    long long ulo = j0 + g.pl - (g.K - 1) * g.dil, uhi = j0 + jcount - 1 + g.pl;
    long long tlo = ulo <= 0 ? 0 : (ulo + g.stride - 1) / g.stride;
    long long thi = uhi / g.stride;
    if (thi > g.Lout - 1) thi = g.Lout - 1;
    const long long tn = thi >= tlo ? thi - tlo + 1 : 0;
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
        for (long long k = 0; k < g.K; ++k) {
            A wr, wi;
            load<S, CPLX>(w, (o * Cg + c) * g.K + k, wr, wi);
            for (int r = 0; r < PER; ++r) {
                long long jl = threadIdx.x + (long long)r * blockDim.x;
                if (jl >= jcount) continue;
                long long u = j0 + jl + g.pl - k * g.dil;
                if (u < 0 || u % g.stride) continue;
                long long t = u / g.stride;
                if (t >= g.Lout) continue;
                Pair<A> v = sg[t - tlo];
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
                for (long long i = lo[q]; i < hi[q]; ++i)
                    for (long long k = 0; k < g.K; ++k) {
                        long long u = i - k * g.dil;
                        if (u < 0 || u % g.stride) continue;
                        long long t = u / g.stride;
                        if (t >= g.Lout) continue;
                        for (long long oo = 0; oo < Og; ++oo) {
                            long long o = grp * Og + oo;
                            A ar, ai, wr, wi;
                            load<S, CPLX>(gy, (n * g.Cout + o) * g.Lout + t, ar, ai);
                            load<S, CPLX>(w, (o * Cg + c) * g.K + k, wr, wi);
                            mac<A, CPLX, true>(sr[r], si[r], ar, ai, wr, wi);
                        }
                    }
        }
        const A s = (A)scale;
        store<S, CPLX>(gx, row * g.L + j, sr[r] * s, si[r] * s);
    }
}

// grad_w partial sums for few channels per group: block = (chunk of batch rows, o, c);
// threads stride over t accumulating up to 8 taps at once; then a fixed-order tree
// reduction in shared memory writes partial[p][(o*Cg + c)*K + k].
template <typename S, bool CPLX>
__global__ void conv_grad_w_rows(const S* __restrict__ gy, const S* __restrict__ x,
                                 typename Acc<S>::type* __restrict__ partial, const long long* gp, long long chunks) {
    typedef typename Acc<S>::type A;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    Pair<A>* red = reinterpret_cast<Pair<A>*>(smem_raw);  // blockDim.x entries
    const Geo g = geo_of(gp);
    const long long Cg = g.Cin / g.G, Og = g.Cout / g.G;
    const long long rows = g.Cout * Cg, E = rows * g.K;
    const long long p = blockIdx.x / rows, oc = blockIdx.x % rows;
    const long long o = oc / Cg, c = oc % Cg, ci = (o / Og) * Cg + c;
    const long long per = (g.N + chunks - 1) / chunks;
    const long long nlo = p * per, nhi = nlo + per < g.N ? nlo + per : g.N;
    for (long long kb = 0; kb < g.K; kb += 8) {
        const int kn = (g.K - kb) < 8 ? (int)(g.K - kb) : 8;
        A sr[8], si[8];
        for (int q = 0; q < 8; ++q) { sr[q] = 0; si[q] = 0; }
        for (long long n = nlo; n < nhi; ++n) {
            const long long xb = (n * g.Cin + ci) * g.L, gb = (n * g.Cout + o) * g.Lout;
            for (long long t = threadIdx.x; t < g.Lout; t += blockDim.x) {
                A ar, ai;
                load<S, CPLX>(gy, gb + t, ar, ai);
                for (int q = 0; q < kn; ++q) {
                    long long j = src_index(t * g.stride + (kb + q) * g.dil, g.L, g.pl, g.mode);
                    A xr = 0, xi = 0;
                    if (j >= 0) load<S, CPLX>(x, xb + j, xr, xi);
                    mac<A, CPLX, true>(sr[q], si[q], ar, ai, xr, xi);
                }
            }
        }
        for (int q = 0; q < kn; ++q) {
            red[threadIdx.x].r = sr[q]; red[threadIdx.x].i = si[q];
            __syncthreads();
            for (unsigned h = blockDim.x / 2; h > 0; h >>= 1) {  // blockDim.x is a power of two
                if (threadIdx.x < h) { red[threadIdx.x].r += red[threadIdx.x + h].r; red[threadIdx.x].i += red[threadIdx.x + h].i; }
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
    template __global__ void conv_fwd_tile<S, C, 4>(const S*, const S*, const S*, S*, const long long*, double); \
    template __global__ void conv_grad_x_tile<S, C, 4>(const S*, const S*, S*, const long long*, double); \
    template __global__ void conv_grad_w_rows<S, C>(const S*, const S*, typename Acc<S>::type*, const long long*, long long);
