// Fused multi-step IF / LIF / KLIF neuron for golden/neurons.py's `_FusedMultiStep`:
// one forward kernel and one backward kernel covering every option (kind, hard/soft reset,
// decay_input, detach_reset, the four surrogates with their alpha, float32/float64).
//
// Exactness.  The kernels (neuron_impl.h) evaluate the same operations as the PyTorch
// fused path, in the same order, in the tensor's dtype, with every Python scalar rounded
// to that dtype first (as PyTorch does for a "wrapped number").  The build flags keep IEEE
// semantics: -ffp-contract=off (no a*b+c -> FMA), no -ffast-math (no reassociation);
// -fno-trapping-math only lets the compiler if-convert the compares so the loops
// vectorise (results unchanged).  So H and the spikes are bit-identical to both PyTorch
// paths.  The backward pass runs the same BPTT recursion; only exp inside the sigmoid
// surrogate (a vectorisable polynomial, ~1 ulp) and the order of the KLIF k-gradient sum
// round differently from PyTorch's, far below 1e-12 in float64.
//
// Layout.  x, s, h, grad_s, grad_x are contiguous [T, M] (M = N * ...).  The M elements
// are cut into blocks of kBlock; a block keeps its membrane potential (forward) or dL/dV
// (backward) in a local buffer and walks all T steps, reading and writing every tensor
// once, contiguously, in loops the compiler vectorises.  at::parallel_for splits the
// blocks over torch's intra-op threads (torch.set_num_threads).  The KLIF k-gradient is
// summed per block, then over the blocks in order: the result does not depend on the
// number of threads.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

namespace trident_kernels {

constexpr int64_t kBlock = 512;

enum Kind : int64_t { kIF = 0, kLIF = 1, kKLIF = 2 };
enum Surrogate : int64_t { kSigmoid = 0, kATan = 1, kRectangular = 2, kTriangle = 3 };

// One call's options and buffers (plain data, shared by the ISA copies).
struct Args {
  bool is_double;
  int64_t kind, surrogate;
  bool soft_reset, decay_input, detach_reset;
  double tau, v_threshold, v_reset, v_rest, k, alpha;
  int64_t steps, m;
  const void* in0;
  const void* in1;
  void* out0;
  void* out1;
  double* partial;
};

template <typename T>
struct Constants {
  T tau, v_threshold, v_reset, v_rest, k;
  T neg_v_threshold, leak, input_gain;                                  // backward
  T alpha, atan_scale, atan_gain, rect_half_width, tri_alpha_sq;        // surrogate
};

// Each constant as Python computes it (in double), then rounded to T as torch does.
template <typename T>
Constants<T> make_constants(const Args& a) {
  Constants<T> c{};
  c.tau = static_cast<T>(a.tau);
  c.v_threshold = static_cast<T>(a.v_threshold);
  c.v_reset = static_cast<T>(a.v_reset);
  c.v_rest = static_cast<T>(a.v_rest);
  c.k = static_cast<T>(a.k);
  c.neg_v_threshold = static_cast<T>(-a.v_threshold);                       // -cfg.v_threshold
  c.leak = static_cast<T>(a.kind == kIF ? 1.0 : 1.0 - 1.0 / a.tau);        // 1.0 - 1.0 / cfg.tau
  c.input_gain = static_cast<T>(a.kind != kIF && a.decay_input ? 1.0 / a.tau : 1.0);
  c.alpha = static_cast<T>(a.alpha);
  c.atan_scale = static_cast<T>(3.141592653589793 / 2 * a.alpha);          // math.pi / 2 * alpha
  c.atan_gain = static_cast<T>(a.alpha / 2);                                // alpha / 2
  c.rect_half_width = static_cast<T>(0.5 / a.alpha);                        // 0.5 / alpha
  c.tri_alpha_sq = static_cast<T>(std::pow(a.alpha, 2));                    // alpha ** 2
  return c;
}

// runtime option -> compile-time constant
template <typename F>
void dispatch_bool(bool b, F&& f) {
  if (b) {
    f(std::true_type{});
  } else {
    f(std::false_type{});
  }
}

template <typename F>
void dispatch_double(bool b, F&& f) {
  dispatch_bool(b, std::forward<F>(f));
}

template <typename F>
void dispatch_kind(int64_t kind, F&& f) {
  switch (kind) {
    case kIF: f(std::integral_constant<int64_t, kIF>{}); return;
    case kLIF: f(std::integral_constant<int64_t, kLIF>{}); return;
    case kKLIF: f(std::integral_constant<int64_t, kKLIF>{}); return;
  }
  TORCH_CHECK(false, "trident neuron kernel: unknown kind ", kind);
}

template <typename F>
void dispatch_surrogate(int64_t surrogate, F&& f) {
  switch (surrogate) {
    case kSigmoid: f(std::integral_constant<int64_t, kSigmoid>{}); return;
    case kATan: f(std::integral_constant<int64_t, kATan>{}); return;
    case kRectangular: f(std::integral_constant<int64_t, kRectangular>{}); return;
    case kTriangle: f(std::integral_constant<int64_t, kTriangle>{}); return;
  }
  TORCH_CHECK(false, "trident neuron kernel: unknown surrogate ", surrogate);
}

}  // namespace trident_kernels

// The kernels, twice: baseline, and AVX2 where the compiler supports the target pragma.
#define TRIDENT_ISA baseline
#include "neuron_impl.h"
#undef TRIDENT_ISA

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && !defined(__AVX2__)
#define TRIDENT_HAVE_AVX2_COPY 1
#pragma GCC push_options
#pragma GCC target("avx2")  // not "fma": AVX2 alone has no FMA instructions
#define TRIDENT_ISA avx2
#include "neuron_impl.h"
#undef TRIDENT_ISA
#pragma GCC pop_options
#endif

namespace trident_kernels {
namespace {

using RangeFn = void (*)(const Args&, int64_t, int64_t);

std::atomic<bool> force_baseline_flag{false};  // tests: run the baseline copy on an AVX2 CPU

bool use_avx2() {
#ifdef TRIDENT_HAVE_AVX2_COPY
  static const bool avx2 = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return avx2 && !force_baseline_flag.load(std::memory_order_relaxed);
#else
  return false;
#endif
}

RangeFn forward_fn() {
#ifdef TRIDENT_HAVE_AVX2_COPY
  if (use_avx2()) return &avx2::forward_range;
#endif
  return &baseline::forward_range;
}

RangeFn backward_fn() {
#ifdef TRIDENT_HAVE_AVX2_COPY
  if (use_avx2()) return &avx2::backward_range;
#endif
  return &baseline::backward_range;
}

// At least ~32k element-steps per task (torch's default grain), in whole blocks.
int64_t grain_blocks(int64_t steps) {
  return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, steps * kBlock));
}

void check_input(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), "trident neuron kernel: ", name, " must be a CPU tensor");
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble,
              "trident neuron kernel: ", name, " must be float32 or float64, got ", t.scalar_type());
  TORCH_CHECK(t.dim() >= 1, "trident neuron kernel: ", name, " needs a leading time dimension");
}

void run_blocks(RangeFn fn, const Args& a) {
  const int64_t blocks = (a.m + kBlock - 1) / kBlock;
  if (a.steps == 0 || blocks == 0) return;
  at::parallel_for(0, blocks, grain_blocks(a.steps),
                   [&](int64_t begin, int64_t end) { fn(a, begin, end); });
}

// x_seq [T, ...] -> (s_seq, h_seq), contiguous, like x_seq.
std::tuple<at::Tensor, at::Tensor> neuron_forward(const at::Tensor& x_seq, int64_t kind, bool soft_reset,
                                                  bool decay_input, double tau, double v_threshold,
                                                  double v_reset, double v_rest, double k) {
  check_input(x_seq, "x_seq");
  TORCH_CHECK(kind >= kIF && kind <= kKLIF, "trident neuron kernel: unknown kind ", kind);
  const at::Tensor x = x_seq.contiguous();
  at::Tensor s = at::empty_like(x, at::MemoryFormat::Contiguous);
  at::Tensor h = at::empty_like(x, at::MemoryFormat::Contiguous);
  Args a{};
  a.is_double = x.scalar_type() == at::kDouble;
  a.kind = kind;
  a.soft_reset = soft_reset;
  a.decay_input = decay_input;
  a.tau = tau;
  a.v_threshold = v_threshold;
  a.v_reset = v_reset;
  a.v_rest = v_rest;
  a.k = k;
  a.alpha = 1.0;
  a.steps = x.size(0);
  a.m = a.steps == 0 ? 0 : x.numel() / a.steps;
  a.in0 = x.const_data_ptr();
  a.out0 = s.mutable_data_ptr();
  a.out1 = h.mutable_data_ptr();
  run_blocks(forward_fn(), a);
  return {s, h};
}

// (grad_s, h_seq) [T, ...] -> (grad_x, contiguous like h_seq; grad_k, a 0-dim tensor: dL/dk
// for KLIF, 0 otherwise).
std::tuple<at::Tensor, at::Tensor> neuron_backward(const at::Tensor& grad_s, const at::Tensor& h_seq,
                                                   int64_t kind, bool soft_reset, bool decay_input,
                                                   bool detach_reset, double tau, double v_threshold,
                                                   double v_reset, double k, int64_t surrogate,
                                                   double alpha) {
  check_input(grad_s, "grad_s");
  check_input(h_seq, "h_seq");
  TORCH_CHECK(grad_s.scalar_type() == h_seq.scalar_type(), "trident neuron kernel: dtype mismatch");
  TORCH_CHECK(grad_s.sizes() == h_seq.sizes(), "trident neuron kernel: shape mismatch");
  TORCH_CHECK(kind >= kIF && kind <= kKLIF, "trident neuron kernel: unknown kind ", kind);
  TORCH_CHECK(surrogate >= kSigmoid && surrogate <= kTriangle,
              "trident neuron kernel: unknown surrogate ", surrogate);
  const at::Tensor g = grad_s.contiguous();
  const at::Tensor h = h_seq.contiguous();
  at::Tensor grad_x = at::empty_like(h, at::MemoryFormat::Contiguous);
  Args a{};
  a.is_double = h.scalar_type() == at::kDouble;
  a.kind = kind;
  a.surrogate = surrogate;
  a.soft_reset = soft_reset;
  a.decay_input = decay_input;
  a.detach_reset = detach_reset;
  a.tau = tau;
  a.v_threshold = v_threshold;
  a.v_reset = v_reset;
  a.v_rest = 0.0;
  a.k = k;
  a.alpha = alpha;
  a.steps = h.size(0);
  a.m = a.steps == 0 ? 0 : h.numel() / a.steps;
  const int64_t blocks = (a.m + kBlock - 1) / kBlock;
  std::vector<double> partial(static_cast<size_t>(std::max<int64_t>(blocks, 1)), 0.0);
  a.in0 = g.const_data_ptr();
  a.in1 = h.const_data_ptr();
  a.out0 = grad_x.mutable_data_ptr();
  a.partial = partial.data();
  run_blocks(backward_fn(), a);
  double total = 0.0;
  for (double p : partial) total += p;
  at::Tensor grad_k = at::empty({}, h.options());
  if (a.is_double) {
    *grad_k.mutable_data_ptr<double>() = total;
  } else {
    *grad_k.mutable_data_ptr<float>() = static_cast<float>(total);
  }
  return {grad_x, grad_k};
}

// The vectorisable exp of the sigmoid surrogate, for its accuracy test.
at::Tensor exp_fast(const at::Tensor& x, bool avx2) {
  check_input(x, "x");
  const at::Tensor xc = x.contiguous();
  at::Tensor y = at::empty_like(xc, at::MemoryFormat::Contiguous);
  Args a{};
  a.is_double = xc.scalar_type() == at::kDouble;
  a.m = xc.numel();
  a.in0 = xc.const_data_ptr();
  a.out0 = y.mutable_data_ptr();
#ifdef TRIDENT_HAVE_AVX2_COPY
  if (avx2 && use_avx2()) {
    avx2::exp_range(a);
    return y;
  }
#endif
  baseline::exp_range(a);
  return y;
}

// Which copy of the kernels runs: "avx2" or "baseline".
std::string isa() { return use_avx2() ? "avx2" : "baseline"; }

// Force the baseline copy (true) or restore the automatic choice (false); for tests.
void force_baseline(bool on) { force_baseline_flag.store(on); }

}  // namespace
}  // namespace trident_kernels

TORCH_LIBRARY(trident_kernels, m) {
  m.def("neuron_forward(Tensor x_seq, int kind, bool soft_reset, bool decay_input, float tau, "
        "float v_threshold, float v_reset, float v_rest, float k) -> (Tensor, Tensor)");
  m.def("neuron_backward(Tensor grad_s, Tensor h_seq, int kind, bool soft_reset, bool decay_input, "
        "bool detach_reset, float tau, float v_threshold, float v_reset, float k, int surrogate, "
        "float alpha) -> (Tensor, Tensor)");
  m.def("exp_fast(Tensor x, bool avx2) -> Tensor");
  m.def("isa() -> str", &trident_kernels::isa);
  m.def("force_baseline(bool on) -> ()", &trident_kernels::force_baseline);
}

TORCH_LIBRARY_IMPL(trident_kernels, CPU, m) {
  m.impl("neuron_forward", &trident_kernels::neuron_forward);
  m.impl("neuron_backward", &trident_kernels::neuron_backward);
  m.impl("exp_fast", &trident_kernels::exp_fast);
}
