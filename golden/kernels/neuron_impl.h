// Kernels of neuron.cpp for one instruction set.  neuron.cpp includes this file twice:
// once plain (baseline x86-64 / any CPU) and once under `#pragma GCC target("avx2")`
// with TRIDENT_ISA naming the namespace; it picks one at run time.  AVX2 without FMA:
// wider vectors, same IEEE operations, so both copies give bit-identical results.
//
// Everything here is evaluated exactly as `_FusedMultiStep` in golden/neurons.py does it:
// the same operations in the same order, in the tensor's dtype, with each Python scalar
// rounded to that dtype first (as PyTorch does for a "wrapped number").

namespace trident_kernels {
namespace TRIDENT_ISA {

// exp(x), written so the loops that call it vectorise (no libm call, no branch):
// Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, a Taylor polynomial in Horner form,
// and 2^n built in the exponent bits.  The clamp keeps n and the result normal; beyond it
// the sigmoid is saturated anyway.  float64: degree 13, error ~1 ulp; float32: degree 7.
__attribute__((always_inline)) inline double exp_fast(double x) {
  x = x < -708.0 ? -708.0 : x;
  x = x > 708.0 ? 708.0 : x;
  constexpr double kLog2e = 1.4426950408889634;
  constexpr double kLn2Hi = 6.93147180369123816490e-01;  // 21 trailing zero bits: n*kLn2Hi exact
  constexpr double kLn2Lo = 1.90821492927058770002e-10;
  constexpr double kShifter = 6755399441055744.0;        // 1.5 * 2^52: t's low bits hold n
  const double t = x * kLog2e + kShifter;
  const double n = t - kShifter;
  const double r = (x - n * kLn2Hi) - n * kLn2Lo;
  double p = 1.0 / 6227020800.0;  // 1/13!
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  uint64_t bits;
  std::memcpy(&bits, &t, sizeof bits);
  bits = (bits + 1023) << 52;  // 2^n
  double scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

__attribute__((always_inline)) inline float exp_fast(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 87.0f ? 87.0f : x;
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;  // 15 trailing zero bits: n*kLn2Hi exact
  constexpr float kLn2Lo = -2.12194440e-4f;
  constexpr float kShifter = 12582912.0f;  // 1.5 * 2^23
  const float t = x * kLog2e + kShifter;
  const float n = t - kShifter;
  const float r = (x - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  uint32_t bits;
  std::memcpy(&bits, &t, sizeof bits);
  bits = (bits + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// The surrogate derivative h(x), as golden/surrogate.py evaluates it.
template <typename T, int64_t SURR>
__attribute__((always_inline)) inline T surrogate_derivative(T x, const Constants<T>& c) {
  if constexpr (SURR == kSigmoid) {
    // sg = torch.sigmoid(alpha * x); alpha * sg * (1 - sg)
    const T u = c.alpha * x;
    const T sg = T(1) / (T(1) + exp_fast(-u));
    return c.alpha * sg * (T(1) - sg);
  } else if constexpr (SURR == kATan) {
    // alpha / 2 / (1 + (math.pi / 2 * alpha * x) ** 2); torch evaluates c / y as y.reciprocal() * c
    const T u = c.atan_scale * x;
    return (T(1) / (T(1) + u * u)) * c.atan_gain;
  } else if constexpr (SURR == kRectangular) {
    // (x.abs() < 0.5 / alpha).to(dtype) * alpha
    return (std::abs(x) < c.rect_half_width ? T(1) : T(0)) * c.alpha;
  } else {
    // torch.clamp(alpha - alpha ** 2 * x.abs(), min=0.0)
    const T y = c.alpha - c.tri_alpha_sq * std::abs(x);
    return y < T(0) ? T(0) : y;
  }
}

// forward over one block of n <= kBlock elements, all T steps
template <typename T, int64_t KIND, bool SOFT, bool DECAY>
void forward_block(const T* __restrict__ x, T* __restrict__ s, T* __restrict__ h, int64_t steps,
                   int64_t stride, int64_t n, const Constants<T>& c) {
  T v[kBlock];
  for (int64_t i = 0; i < n; ++i) v[i] = c.v_rest;  // torch.full_like(x_seq[0], v_rest)
  for (int64_t t = 0; t < steps; ++t) {
    const T* __restrict__ xt = x + t * stride;
    T* __restrict__ st = s + t * stride;
    T* __restrict__ ht = h + t * stride;
    for (int64_t i = 0; i < n; ++i) {
      const T xi = xt[i];
      const T vi = v[i];
      T hi;  // _charge
      if constexpr (KIND == kIF) {
        hi = vi + xi;
      } else if constexpr (DECAY) {
        hi = vi + (xi - (vi - c.v_rest)) / c.tau;
      } else {
        hi = vi - (vi - c.v_rest) / c.tau + xi;
      }
      T zi;  // _scale: torch.relu(k * h) for KLIF (NaN propagates)
      if constexpr (KIND == kKLIF) {
        const T kh = c.k * hi;
        zi = kh < T(0) ? T(0) : kh;
      } else {
        zi = hi;
      }
      const T si = (zi - c.v_threshold >= T(0)) ? T(1) : T(0);  // (z - v_th >= 0).to(dtype)
      if constexpr (SOFT) {                                       // _reset
        v[i] = zi - c.v_threshold * si;
      } else {
        v[i] = zi * (T(1) - si) + c.v_reset * si;
      }
      ht[i] = hi;
      st[i] = si;
    }
  }
}

// BPTT over one block, t = T-1 .. 0; returns the block's dL/dk (KLIF; 0 otherwise)
template <typename T, int64_t KIND, bool SOFT, bool DETACH, int64_t SURR>
double backward_block(const T* __restrict__ grad_s, const T* __restrict__ h, T* __restrict__ grad_x,
                      int64_t steps, int64_t stride, int64_t n, const Constants<T>& c) {
  T grad_v[kBlock];
  T grad_k[kBlock];  // per-element partial sums of dL/dk, reduced at the end
  for (int64_t i = 0; i < n; ++i) {
    grad_v[i] = T(0);
    grad_k[i] = T(0);
  }
  for (int64_t t = steps - 1; t >= 0; --t) {
    const T* __restrict__ gst = grad_s + t * stride;
    const T* __restrict__ ht = h + t * stride;
    T* __restrict__ gxt = grad_x + t * stride;
    for (int64_t i = 0; i < n; ++i) {
      const T hi = ht[i];
      T zi, positive;
      if constexpr (KIND == kKLIF) {  // positive = (k * h > 0); z = k * h * positive
        const T kh = c.k * hi;
        positive = kh > T(0) ? T(1) : T(0);
        zi = kh * positive;
      } else {
        positive = T(1);
        zi = hi;
      }
      const T si = (zi - c.v_threshold >= T(0)) ? T(1) : T(0);
      const T gv = grad_v[i];
      T grad_spike = gst[i];
      if constexpr (!DETACH) {  // grad_spike + grad_v * dv_ds
        if constexpr (SOFT) {
          grad_spike = grad_spike + gv * c.neg_v_threshold;
        } else {
          grad_spike = grad_spike + gv * (c.v_reset - zi);
        }
      }
      const T sg = surrogate_derivative<T, SURR>(zi - c.v_threshold, c);
      T grad_z;  // grad_spike * h(z - v_th) + grad_v * dv_dz
      if constexpr (SOFT) {
        grad_z = grad_spike * sg + gv * T(1);
      } else {
        grad_z = grad_spike * sg + gv * (T(1) - si);
      }
      T grad_h;
      if constexpr (KIND == kKLIF) {
        grad_k[i] += grad_z * hi * positive;
        grad_h = grad_z * c.k * positive;
      } else {
        grad_h = grad_z;
      }
      gxt[i] = grad_h * c.input_gain;
      grad_v[i] = grad_h * c.leak;
    }
  }
  double sum = 0.0;
  if constexpr (KIND == kKLIF) {
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(grad_k[i]);
  }
  return sum;
}

template <typename T, int64_t KIND, bool SOFT, bool DECAY>
void forward_range_t(const Args& a, int64_t begin, int64_t end) {
  const Constants<T> c = make_constants<T>(a);
  const T* x = static_cast<const T*>(a.in0);
  T* s = static_cast<T*>(a.out0);
  T* h = static_cast<T*>(a.out1);
  for (int64_t b = begin; b < end; ++b) {
    const int64_t offset = b * kBlock;
    const int64_t n = std::min(kBlock, a.m - offset);
    forward_block<T, KIND, SOFT, DECAY>(x + offset, s + offset, h + offset, a.steps, a.m, n, c);
  }
}

template <typename T, int64_t KIND, bool SOFT, bool DETACH, int64_t SURR>
void backward_range_t(const Args& a, int64_t begin, int64_t end) {
  const Constants<T> c = make_constants<T>(a);
  const T* g = static_cast<const T*>(a.in0);
  const T* h = static_cast<const T*>(a.in1);
  T* gx = static_cast<T*>(a.out0);
  for (int64_t b = begin; b < end; ++b) {
    const int64_t offset = b * kBlock;
    const int64_t n = std::min(kBlock, a.m - offset);
    a.partial[b] = backward_block<T, KIND, SOFT, DETACH, SURR>(g + offset, h + offset, gx + offset,
                                                               a.steps, a.m, n, c);
  }
}

// Entry points: blocks [begin, end) of the call described by `a`.
void forward_range(const Args& a, int64_t begin, int64_t end) {
  dispatch_double(a.is_double, [&](auto dbl) {
    using T = std::conditional_t<decltype(dbl)::value, double, float>;
    dispatch_kind(a.kind, [&](auto kind_c) {
      dispatch_bool(a.soft_reset, [&](auto soft_c) {
        dispatch_bool(a.kind != kIF && a.decay_input, [&](auto decay_c) {
          forward_range_t<T, decltype(kind_c)::value, decltype(soft_c)::value, decltype(decay_c)::value>(
              a, begin, end);
        });
      });
    });
  });
}

void backward_range(const Args& a, int64_t begin, int64_t end) {
  dispatch_double(a.is_double, [&](auto dbl) {
    using T = std::conditional_t<decltype(dbl)::value, double, float>;
    dispatch_kind(a.kind, [&](auto kind_c) {
      dispatch_bool(a.soft_reset, [&](auto soft_c) {
        dispatch_bool(a.detach_reset, [&](auto detach_c) {
          dispatch_surrogate(a.surrogate, [&](auto surr_c) {
            backward_range_t<T, decltype(kind_c)::value, decltype(soft_c)::value,
                             decltype(detach_c)::value, decltype(surr_c)::value>(a, begin, end);
          });
        });
      });
    });
  });
}

void exp_range(const Args& a) {
  if (a.is_double) {
    for (int64_t i = 0; i < a.m; ++i)
      static_cast<double*>(a.out0)[i] = exp_fast(static_cast<const double*>(a.in0)[i]);
  } else {
    for (int64_t i = 0; i < a.m; ++i)
      static_cast<float*>(a.out0)[i] = exp_fast(static_cast<const float*>(a.in0)[i]);
  }
}

}  // namespace TRIDENT_ISA
}  // namespace trident_kernels
