// The loop kernel in C++: the same steps as rnnkit/kernels/loop/*.py, without Python
// between them. The matrix products are ATen's (MKL/oneDNN); everything element-wise in a step is
// one fused pass over raw rows, with sigmoid and tanh written so that the compiler vectorises them
// (float32; float64 uses the C library's, for exactness in gradcheck).
//
// forward(cell, inputs, weight, inner, hidden_mask, alive, state, beta, epsilon, keep_for_backward)
//   inputs (T, B, G): W_ih x + biases for every step (computed outside, one GEMM)
//   inner: the step's tensors besides W_hh (LoopStep.inner_tensors: b_hn, layer-norm gains)
//   returns [outputs (T, B, H), saved (T, B, S), history of each state part (T+1, B, H)...];
//   without keep_for_backward (inference) saved and histories only hold the last step.
// backward(cell, saved, histories, d_outputs, d_final, weight, inner, hidden_mask, alive, input_width)
//   returns [d_inputs (T, B, G), d_recurrent (T, B, G) or empty where it equals d_inputs, d_state parts...,
//            d of each inner tensor or empty where the caller forms it]
// W_hh's gradient (and the reset-after GRU's b_hn's) is one GEMM (sum) over d_recurrent, done by the
// caller (LoopStep.weight_gradients); the layer-norm gains' are summed here, row by row.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

using at::Tensor;

namespace {

enum Cell : int64_t {
  RNN_TANH = 0, RNN_RELU = 1, LSTM = 2, GRU = 3, GRU_RESET_BEFORE = 4, JANET = 5, INDRNN_RELU = 6, INDRNN_TANH = 7,
  LSTM_LN = 8, GRU_LN = 9, GRU_RESET_BEFORE_LN = 10,  // layer-normalised (Ba et al. 2016)
};

bool is_lstm(int64_t cell) { return cell == LSTM || cell == LSTM_LN; }
bool is_reset_before(int64_t cell) { return cell == GRU_RESET_BEFORE || cell == GRU_RESET_BEFORE_LN; }
bool is_layer_norm(int64_t cell) { return cell == LSTM_LN || cell == GRU_LN || cell == GRU_RESET_BEFORE_LN; }
// Whether the gradient of the step's GEMM output differs from the input terms' (then kept apart, d_recurrent).
bool separate_recurrent_gradient(int64_t cell) { return cell == GRU || is_layer_norm(cell); }

// The activations are forced inline and each row function is kept out of line: inlined into the big
// step loops, GCC stopped vectorising the row loops and called exp once per element (measured 5x slower).
#define RNNKIT_MATH __attribute__((always_inline)) inline
#define RNNKIT_ROW __attribute__((noinline))

// ---------------------------------------------------------------- activations
// e^x for float: x = n ln2 + r with |r| ≤ ln2/2, e^r by its degree-6 Taylor-like (Cephes) polynomial,
// 2^n by writing the exponent bits. Relative error about 2e-7; branch-free, so loops over it vectorise.
RNNKIT_MATH float exp_approx(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest (1.5·2^23 trick)
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;              // ln2 split in two for precision
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

RNNKIT_MATH float sigmoid(float x) { return 1.0f / (1.0f + exp_approx(-x)); }
RNNKIT_MATH double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// tanh x = sign(x) (1 - e) / (1 + e), e = e^{-2|x|}: no overflow, absolute error about 1e-7.
RNNKIT_MATH float tanh_(float x) {
  const float e = exp_approx(-2.0f * std::fabs(x));
  return std::copysign((1.0f - e) / (1.0f + e), x);
}
RNNKIT_MATH double tanh_(double x) { return std::tanh(x); }


// ---------------------------------------------------------------- helpers
// Runs rows(begin, end) over the batch, split over threads only when a step has enough work.
template <typename F> inline void for_rows(int64_t B, int64_t width, F rows) {
  at::parallel_for(0, B, std::max<int64_t>(1, 32768 / std::max<int64_t>(width, 1)), rows);
}

// What a step keeps for the backward, per row. The layer-normalised cells add, after their parent's,
// the normalised GEMM output x̂ and 1/√(σ² + ε) of each normalised block (the layout the Python side
// reads in compiled_inner_gradients).
int64_t saved_width(int64_t cell, int64_t H) {
  switch (cell) {
    case LSTM: return 5 * H;                         // i, f, g, o, tanh c
    case LSTM_LN: return 10 * H + 5;                 // i, f, g, o, tanh m; x̂ (4H); ĉ; 1/σ of 4 gates and of c
    case GRU: return 4 * H;                          // r, z, n, g_n
    case GRU_LN: return 7 * H + 3;                   // r, z, n, g_n; x̂ (3H); 1/σ of 3 gates
    case GRU_RESET_BEFORE: return 3 * H;             // r, z, n
    case GRU_RESET_BEFORE_LN: return 6 * H + 3;      // r, z, n; x̂ (3H); 1/σ of 3 gates
    case JANET: return 3 * H;                        // f = σ(s), q = σ(s - β), candidate
    default: return 0;
  }
}

// Width of the input terms (and of their gradient): G = gates · H.
int64_t gates_width(int64_t cell, int64_t H) {
  switch (cell) {
    case LSTM: case LSTM_LN: return 4 * H;
    case GRU: case GRU_LN: case GRU_RESET_BEFORE: case GRU_RESET_BEFORE_LN: return 3 * H;
    case JANET: return 2 * H;
    default: return H;
  }
}

// Width of a step's GEMM result: the reset-before GRU's last GEMM gives the candidate's H columns only.
int64_t pre_width(int64_t cell, int64_t H) { return is_reset_before(cell) ? H : gates_width(cell, H); }

// The step's tensors besides W_hh, from the list LoopStep.inner_tensors gives: the GRUs' b_hn (the
// reset-after ones, when they have biases) and the layer-norm gains γ_hh (G), γ_c and shift β_c (H).
struct Inner {
  Tensor b_hn, gain, gain_c, shift_c;
};

Inner unpack_inner(int64_t cell, const std::vector<Tensor>& inner, int64_t H, const at::TensorOptions& options) {
  Inner unpacked;
  const bool has_b_hn = (cell == GRU && inner.size() == 1) || (cell == GRU_LN && inner.size() == 2);
  unpacked.b_hn = has_b_hn ? inner[0].contiguous() : at::zeros({H}, options);
  if (is_layer_norm(cell)) {
    TORCH_CHECK(!inner.empty(), "loops: the layer-normalised cells need their gains");
    unpacked.gain = (cell == GRU_LN ? inner.back() : inner[0]).contiguous();
  }
  if (cell == LSTM_LN) {
    TORCH_CHECK(inner.size() == 3, "loops: the layer-normalised LSTM takes γ_hh, γ_c and β_c");
    unpacked.gain_c = inner[1].contiguous();
    unpacked.shift_c = inner[2].contiguous();
  }
  return unpacked;
}

template <typename T> T* pointer_or_null(const Tensor& tensor) { return tensor.defined() ? tensor.data_ptr<T>() : nullptr; }

// ---------------------------------------------------------------- layer norm
// A sum over n terms in 8 running partial sums. GCC vectorises a floating-point sum only when allowed
// to reorder it (-ffast-math, which would also change the activations); the 8 lanes are that reordering,
// written out, so the vectoriser can map them onto registers.
template <typename T, typename Term> RNNKIT_MATH T lane_sum(int64_t n, Term term) {
  constexpr int64_t lanes = 8;
  T partial[lanes] = {};
  int64_t j = 0;
  for (; j + lanes <= n; j += lanes) {
    for (int64_t k = 0; k < lanes; ++k) partial[k] += term(j + k);
  }
  T total = 0;
  for (; j < n; ++j) total += term(j);
  for (int64_t k = 0; k < lanes; ++k) total += partial[k];
  return total;
}

// x̂ = (x - μ) / √(σ² + ε) over one block of H; returns 1/√(σ² + ε). Two passes, as torch's var_mean.
template <typename T> RNNKIT_MATH T normalise(int64_t H, T epsilon, const T* __restrict__ x, T* __restrict__ x_hat) {
  const T mean = lane_sum<T>(H, [&](int64_t j) { return x[j]; }) / T(H);
  const T variance = lane_sum<T>(H, [&](int64_t j) { const T centred = x[j] - mean; return centred * centred; }) / T(H);
  const T inverse_std = T(1) / std::sqrt(variance + epsilon);
  for (int64_t j = 0; j < H; ++j) x_hat[j] = (x[j] - mean) * inverse_std;
  return inverse_std;
}

// The gradient of x from dy at y = γ ⊙ x̂ (+ β) over one block: dx = (γdy - mean(γdy) - x̂ mean(γdy ⊙ x̂)) / σ.
template <typename T>
RNNKIT_MATH void normalise_backward(int64_t H, const T* __restrict__ dy, const T* __restrict__ gain, const T* __restrict__ x_hat,
                                    T inverse_std, T* __restrict__ dx) {
  const T mean_dy = lane_sum<T>(H, [&](int64_t j) { return gain[j] * dy[j]; }) / T(H);
  const T mean_dy_x = lane_sum<T>(H, [&](int64_t j) { return gain[j] * dy[j] * x_hat[j]; }) / T(H);
  for (int64_t j = 0; j < H; ++j) dx[j] = (gain[j] * dy[j] - mean_dy - x_hat[j] * mean_dy_x) * inverse_std;
}

// Per-gate layer norm of `blocks` blocks of H in one row of the recurrent GEMM's output, in place:
// pre ← γ ⊙ x̂, keeping x̂ and each block's 1/σ for the backward. The cells' rows then read pre as before.
template <typename T>
RNNKIT_ROW void layer_norm_row(int64_t H, int64_t blocks, T epsilon, T* __restrict__ pre, const T* __restrict__ gain,
                               T* __restrict__ normalised, T* __restrict__ inverse_std) {
  for (int64_t k = 0; k < blocks; ++k) inverse_std[k] = normalise(H, epsilon, pre + k * H, normalised + k * H);
  for (int64_t j = 0; j < blocks * H; ++j) pre[j] = gain[j] * normalised[j];
}

// Its backward over the same blocks: the gradient of the GEMM output from dy, that of γ ⊙ x̂; γ's
// gradient dy ⊙ x̂ is added to this row's running sum.
template <typename T>
RNNKIT_ROW void layer_norm_backward_row(int64_t H, int64_t blocks, const T* __restrict__ dy, const T* __restrict__ gain,
                                        const T* __restrict__ normalised, const T* __restrict__ inverse_std, T* __restrict__ dx,
                                        T* __restrict__ d_gain_sum) {
  for (int64_t k = 0; k < blocks; ++k) normalise_backward(H, dy + k * H, gain + k * H, normalised + k * H, inverse_std[k], dx + k * H);
  for (int64_t j = 0; j < blocks * H; ++j) d_gain_sum[j] += dy[j] * normalised[j];
}

template <typename T> RNNKIT_ROW void accumulate_row(int64_t n, const T* __restrict__ x, T* __restrict__ sum) {
  for (int64_t j = 0; j < n; ++j) sum[j] += x[j];
}

// ---------------------------------------------------------------- forward
// One row (one sequence of the batch) of a step's element-wise part. Each takes plain pointers to
// rows of H (state) or of the gates, and adds the input terms x to the recurrent GEMM result pre.
// The relu/tanh choice is a loop apiece: with the test inside one loop GCC vectorises neither.
template <typename T> RNNKIT_ROW void elman_row(int64_t H, bool relu, const T* __restrict__ x, const T* __restrict__ pre, T* __restrict__ h) {
  if (relu) {
    for (int64_t j = 0; j < H; ++j) h[j] = std::max(x[j] + pre[j], T(0));
  } else {
    for (int64_t j = 0; j < H; ++j) h[j] = tanh_(x[j] + pre[j]);
  }
}

template <typename T>
RNNKIT_ROW void indrnn_row(int64_t H, bool relu, const T* __restrict__ x, const T* __restrict__ u, const T* __restrict__ h_in,
                           T* __restrict__ h) {
  if (relu) {
    for (int64_t j = 0; j < H; ++j) h[j] = std::max(x[j] + u[j] * h_in[j], T(0));
  } else {
    for (int64_t j = 0; j < H; ++j) h[j] = tanh_(x[j] + u[j] * h_in[j]);
  }
}

// Unit j of an LSTM step, both variants: i, f, o = σ, g = tanh of x + pre; c_j = f c_{t-1} + i g, kept in
// saved (i, f, g, o) and c; returns c_j.
template <typename T>
RNNKIT_MATH T lstm_gates_at(int64_t H, int64_t j, const T* __restrict__ x, const T* __restrict__ pre, const T* __restrict__ c_prev,
                            T* __restrict__ c, T* __restrict__ saved) {
  const T i = sigmoid(x[j] + pre[j]), f = sigmoid(x[H + j] + pre[H + j]);
  const T g = tanh_(x[2 * H + j] + pre[2 * H + j]), o = sigmoid(x[3 * H + j] + pre[3 * H + j]);
  c[j] = f * c_prev[j] + i * g;
  saved[j] = i; saved[H + j] = f; saved[2 * H + j] = g; saved[3 * H + j] = o;
  return c[j];
}

template <typename T>
RNNKIT_ROW void lstm_row(int64_t H, const T* __restrict__ x, const T* __restrict__ pre, const T* __restrict__ c_prev, T* __restrict__ c,
              T* __restrict__ h, T* __restrict__ saved) {  // saved: i, f, g, o, tanh c
  for (int64_t j = 0; j < H; ++j) {
    const T tanh_c = tanh_(lstm_gates_at(H, j, x, pre, c_prev, c, saved));
    h[j] = saved[3 * H + j] * tanh_c;
    saved[4 * H + j] = tanh_c;
  }
}

// The layer-normalised LSTM after layer_norm_row: pre holds γ_hh ⊙ LN(W_hh h); the cell is normalised too,
// h = o ⊙ tanh(m), m = γ_c ⊙ ĉ + β_c. saved: i, f, g, o, tanh m, [x̂ and 1/σ of the gates], ĉ at 9H, 1/σ of c at 10H + 4.
template <typename T>
RNNKIT_ROW void layer_norm_lstm_row(int64_t H, T epsilon, const T* __restrict__ x, const T* __restrict__ pre, const T* __restrict__ gain_c,
                                    const T* __restrict__ shift_c, const T* __restrict__ c_prev, T* __restrict__ c, T* __restrict__ h,
                                    T* __restrict__ saved) {
  for (int64_t j = 0; j < H; ++j) lstm_gates_at(H, j, x, pre, c_prev, c, saved);
  T* c_hat = saved + 9 * H;
  saved[10 * H + 4] = normalise(H, epsilon, c, c_hat);
  for (int64_t j = 0; j < H; ++j) {
    const T tanh_m = tanh_(gain_c[j] * c_hat[j] + shift_c[j]);
    h[j] = saved[3 * H + j] * tanh_m;
    saved[4 * H + j] = tanh_m;
  }
}

template <typename T>
RNNKIT_ROW void janet_row(int64_t H, T beta, const T* __restrict__ x, const T* __restrict__ pre, const T* __restrict__ c_prev,
               T* __restrict__ c, T* __restrict__ saved) {  // saved: f, q, candidate
  for (int64_t j = 0; j < H; ++j) {
    const T s = x[j] + pre[j];
    const T f = sigmoid(s), q = sigmoid(s - beta), candidate = tanh_(x[H + j] + pre[H + j]);
    c[j] = f * c_prev[j] + (T(1) - q) * candidate;
    saved[j] = f; saved[H + j] = q; saved[2 * H + j] = candidate;
  }
}

template <typename T>
RNNKIT_ROW void gru_row(int64_t H, const T* __restrict__ x, const T* __restrict__ pre, const T* __restrict__ b_hn, const T* __restrict__ h_prev,
             T* __restrict__ h, T* __restrict__ saved) {  // reset after; saved: r, z, n, g_n
  for (int64_t j = 0; j < H; ++j) {
    const T r = sigmoid(x[j] + pre[j]), z = sigmoid(x[H + j] + pre[H + j]);
    const T g_n = pre[2 * H + j] + b_hn[j];
    const T n = tanh_(x[2 * H + j] + r * g_n);
    h[j] = n + z * (h_prev[j] - n);
    saved[j] = r; saved[H + j] = z; saved[2 * H + j] = n; saved[3 * H + j] = g_n;
  }
}

template <typename T>
RNNKIT_ROW void gru_reset_gates_row(int64_t H, const T* __restrict__ x, const T* __restrict__ pre, const T* __restrict__ h_in,
                         T* __restrict__ saved, T* __restrict__ reset_input) {  // reset before, first part: r, z, r ⊙ h
  for (int64_t j = 0; j < 2 * H; ++j) saved[j] = sigmoid(x[j] + pre[j]);
  for (int64_t j = 0; j < H; ++j) reset_input[j] = saved[j] * h_in[j];
}

template <typename T>
RNNKIT_ROW void gru_candidate_row(int64_t H, const T* __restrict__ x_n, const T* __restrict__ pre, const T* __restrict__ h_prev,
                       T* __restrict__ h, T* __restrict__ saved) {  // reset before, second part: n, h
  for (int64_t j = 0; j < H; ++j) {
    const T n = tanh_(x_n[j] + pre[j]);
    h[j] = n + saved[H + j] * (h_prev[j] - n);
    saved[2 * H + j] = n;
  }
}

// A finished row (past its length) keeps its state and outputs zero; a live row outputs its new h.
template <typename T>
void finish_row(int64_t H, bool live, const T* h_prev, T* h, const T* c_prev, T* c, T* out) {
  if (live) {
    std::memcpy(out, h, H * sizeof(T));
    return;
  }
  std::memcpy(h, h_prev, H * sizeof(T));
  if (c != nullptr) std::memcpy(c, c_prev, H * sizeof(T));
  std::fill(out, out + H, T(0));
}

std::vector<Tensor> loops_forward(int64_t cell, const Tensor& inputs, const Tensor& weight, const std::vector<Tensor>& inner,
                                 const c10::optional<Tensor>& hidden_mask, const c10::optional<Tensor>& alive,
                                 const std::vector<Tensor>& state, double beta, double epsilon, bool keep_for_backward) {
  TORCH_CHECK(inputs.device().is_cpu() && inputs.is_contiguous(), "loops_forward: contiguous CPU inputs expected");
  const int64_t T = inputs.size(0), B = inputs.size(1), G = inputs.size(2), H = state[0].size(1), S = saved_width(cell, H);
  TORCH_CHECK(G == gates_width(cell, H), "loops_forward: input terms of width ", G, " for hidden size ", H);
  const auto options = inputs.options();
  const bool element_wise = cell == INDRNN_RELU || cell == INDRNN_TANH;
  const Tensor weight_t = element_wise ? weight.contiguous() : weight.t();
  // Inference keeps two state slots (read one, write the other) and one saved slot instead of T + 1 and T.
  const int64_t slots = keep_for_backward ? T + 1 : 2;
  std::vector<Tensor> histories;
  for (const Tensor& part : state) {
    Tensor history = at::empty({slots, B, H}, options);
    history[0].copy_(part);
    histories.push_back(history);
  }
  Tensor saved = at::empty({keep_for_backward ? T : 1, B, S}, options);
  Tensor outputs = at::empty({T, B, H}, options);
  Tensor pre = at::empty({B, pre_width(cell, H)}, options);  // the step's GEMM: W_hh h_{t-1}
  Tensor rz_pre = at::empty({B, 2 * H}, options);            // reset-before GRU: W_hr,z h_{t-1}
  Tensor rec_in = at::empty({B, H}, options);                // h_{t-1} ⊙ the recurrent dropout mask
  Tensor reset_input = at::empty({B, H}, options);           // reset-before GRU: r ⊙ h_{t-1}
  const Inner in_loop = unpack_inner(cell, inner, H, options);
  const Tensor alive_rows = alive.has_value() ? alive->reshape({T, B}).contiguous() : Tensor();
  // The reset-before GRU's two GEMMs take W_hr,z and W_hn apart; the views are made once, not every step.
  const Tensor weight_rz = is_reset_before(cell) ? weight_t.narrow(1, 0, 2 * H) : Tensor();
  const Tensor weight_n = is_reset_before(cell) ? weight_t.narrow(1, 2 * H, H) : Tensor();
  AT_DISPATCH_FLOATING_TYPES(inputs.scalar_type(), "rnnkit_loops_forward", [&] {
    const scalar_t value_beta = static_cast<scalar_t>(beta), eps = static_cast<scalar_t>(epsilon);
    const bool relu = cell == RNN_RELU || cell == INDRNN_RELU;
    const scalar_t* u = element_wise ? weight_t.data_ptr<scalar_t>() : nullptr;  // IndRNN's recurrent weights
    const scalar_t* bias_n = in_loop.b_hn.data_ptr<scalar_t>();
    const scalar_t* gain = pointer_or_null<scalar_t>(in_loop.gain);
    const scalar_t* gain_c = pointer_or_null<scalar_t>(in_loop.gain_c);
    const scalar_t* shift_c = pointer_or_null<scalar_t>(in_loop.shift_c);
    for (int64_t t = 0; t < T; ++t) {
      const int64_t read = keep_for_backward ? t : t % 2, write = keep_for_backward ? t + 1 : 1 - t % 2;
      const Tensor h_prev = histories[0][read];
      const Tensor h_in = hidden_mask.has_value() ? at::mul_out(rec_in, h_prev, *hidden_mask) : h_prev;
      if (is_reset_before(cell)) {
        at::mm_out(rz_pre, h_in, weight_rz);
      } else if (!element_wise) {
        at::mm_out(pre, h_in, weight_t);
      }
      const scalar_t* x = inputs.data_ptr<scalar_t>() + t * B * G;
      const scalar_t* hp = histories[0].data_ptr<scalar_t>() + read * B * H;
      scalar_t* h = histories[0].data_ptr<scalar_t>() + write * B * H;
      const scalar_t* cp = is_lstm(cell) ? histories[1].data_ptr<scalar_t>() + read * B * H : nullptr;
      scalar_t* c = is_lstm(cell) ? histories[1].data_ptr<scalar_t>() + write * B * H : nullptr;
      scalar_t* sv = saved.data_ptr<scalar_t>() + (keep_for_backward ? t : 0) * B * S;
      const scalar_t* in = h_in.data_ptr<scalar_t>();
      scalar_t* p = pre.data_ptr<scalar_t>();
      if (is_reset_before(cell)) {  // r, z, then the candidate's GEMM on r ⊙ h_{t-1}
        scalar_t* prz = rz_pre.data_ptr<scalar_t>();
        scalar_t* ri = reset_input.data_ptr<scalar_t>();
        for_rows(B, 2 * H, [&](int64_t begin, int64_t end) {
          for (int64_t b = begin; b < end; ++b) {
            scalar_t* row_saved = sv + b * S;
            if (cell == GRU_RESET_BEFORE_LN) layer_norm_row(H, 2, eps, prz + b * 2 * H, gain, row_saved + 3 * H, row_saved + 6 * H);
            gru_reset_gates_row(H, x + b * G, prz + b * 2 * H, in + b * H, row_saved, ri + b * H);
          }
        });
        at::mm_out(pre, reset_input, weight_n);
      }
      const bool* live = alive.has_value() ? alive_rows.data_ptr<bool>() + t * B : nullptr;
      scalar_t* out = outputs.data_ptr<scalar_t>() + t * B * H;
      for_rows(B, G, [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
          const int64_t row = b * H;
          scalar_t* row_saved = sv + b * S;
          switch (cell) {
            case RNN_TANH: case RNN_RELU: elman_row(H, relu, x + b * G, p + row, h + row); break;
            case INDRNN_TANH: case INDRNN_RELU: indrnn_row(H, relu, x + b * G, u, in + row, h + row); break;
            case LSTM: lstm_row(H, x + b * G, p + b * G, cp + row, c + row, h + row, row_saved); break;
            case LSTM_LN:
              layer_norm_row(H, 4, eps, p + b * G, gain, row_saved + 5 * H, row_saved + 10 * H);
              layer_norm_lstm_row(H, eps, x + b * G, p + b * G, gain_c, shift_c, cp + row, c + row, h + row, row_saved);
              break;
            case JANET: janet_row(H, value_beta, x + b * G, p + b * G, hp + row, h + row, row_saved); break;
            case GRU_LN: layer_norm_row(H, 3, eps, p + b * G, gain, row_saved + 4 * H, row_saved + 7 * H); [[fallthrough]];
            case GRU: gru_row(H, x + b * G, p + b * G, bias_n, hp + row, h + row, row_saved); break;
            case GRU_RESET_BEFORE_LN: layer_norm_row(H, 1, eps, p + row, gain + 2 * H, row_saved + 5 * H, row_saved + 6 * H + 2); [[fallthrough]];
            case GRU_RESET_BEFORE: gru_candidate_row(H, x + b * G + 2 * H, p + row, hp + row, h + row, row_saved); break;
            default: TORCH_CHECK(false, "unknown cell id ", cell);
          }
          finish_row(H, live == nullptr || live[b], hp + row, h + row, cp ? cp + row : nullptr, c ? c + row : nullptr, out + row);
        }
      });
    }
  });
  std::vector<Tensor> result = {outputs, saved};
  for (Tensor& history : histories) {
    // Inference: the final state is in slot T % 2; callers read history[-1].
    result.push_back(keep_for_backward ? history : history.narrow(0, T % 2, 1));
  }
  return result;
}

// ---------------------------------------------------------------- backward
// One row of a step's element-wise gradients: from dh (and dc) reaching the new state, the input-term
// gradient d (width G), and the shares of the previous state that do not pass through W_hh.
template <typename T>
RNNKIT_ROW void activation_backward_row(int64_t H, bool relu, const T* __restrict__ dh, const T* __restrict__ h, T* __restrict__ d) {
  if (relu) {
    for (int64_t j = 0; j < H; ++j) d[j] = h[j] > T(0) ? dh[j] : T(0);
  } else {
    for (int64_t j = 0; j < H; ++j) d[j] = dh[j] * (T(1) - h[j] * h[j]);
  }
}

// Unit j of an LSTM step's backward, both variants: the gate pre-activations' gradients d from the total
// dc reaching c_j and from dh ⊙ tanh(·) reaching o; returns dc_{t-1} = dc ⊙ f.
template <typename T>
RNNKIT_MATH T lstm_gates_backward_at(int64_t H, int64_t j, T dc, T dh_tanh, const T* __restrict__ saved, const T* __restrict__ c_prev,
                                     T* __restrict__ d) {
  const T i = saved[j], f = saved[H + j], g = saved[2 * H + j], o = saved[3 * H + j];
  d[j] = dc * g * i * (T(1) - i);
  d[H + j] = dc * c_prev[j] * f * (T(1) - f);
  d[2 * H + j] = dc * i * (T(1) - g * g);
  d[3 * H + j] = dh_tanh * o * (T(1) - o);
  return dc * f;
}

template <typename T>
RNNKIT_ROW void lstm_backward_row(int64_t H, const T* __restrict__ dh, const T* __restrict__ dc_next, const T* __restrict__ saved,
                       const T* __restrict__ c_prev, T* __restrict__ d, T* __restrict__ dc_prev) {
  for (int64_t j = 0; j < H; ++j) {
    const T o = saved[3 * H + j], tanh_c = saved[4 * H + j];
    dc_prev[j] = lstm_gates_backward_at(H, j, dc_next[j] + dh[j] * o * (T(1) - tanh_c * tanh_c), dh[j] * tanh_c, saved, c_prev, d);
  }
}

// The layer-normalised LSTM: d m = dh ⊙ o ⊙ (1 - tanh²m) goes to c through the cell's layer norm (and
// to the running sums of γ_c's and β_c's gradients); then the gates as in lstm_backward_row, with tanh m.
// d_m is this row's scratch.
template <typename T>
RNNKIT_ROW void layer_norm_lstm_backward_row(int64_t H, const T* __restrict__ dh, const T* __restrict__ dc_next, const T* __restrict__ saved,
                                             const T* __restrict__ c_prev, const T* __restrict__ gain_c, T* __restrict__ d,
                                             T* __restrict__ d_m, T* __restrict__ dc_prev, T* __restrict__ d_gain_c_sum,
                                             T* __restrict__ d_shift_c_sum) {
  const T* c_hat = saved + 9 * H;
  for (int64_t j = 0; j < H; ++j) {
    const T o = saved[3 * H + j], tanh_m = saved[4 * H + j];
    d_m[j] = dh[j] * o * (T(1) - tanh_m * tanh_m);
    d_gain_c_sum[j] += d_m[j] * c_hat[j];
    d_shift_c_sum[j] += d_m[j];
  }
  normalise_backward(H, d_m, gain_c, c_hat, saved[10 * H + 4], dc_prev);  // dc_prev holds d c through m, for now
  for (int64_t j = 0; j < H; ++j) {
    dc_prev[j] = lstm_gates_backward_at(H, j, dc_next[j] + dc_prev[j], dh[j] * saved[4 * H + j], saved, c_prev, d);
  }
}

template <typename T>
RNNKIT_ROW void janet_backward_row(int64_t H, const T* __restrict__ dc, const T* __restrict__ saved, const T* __restrict__ c_prev,
                        T* __restrict__ d, T* __restrict__ direct) {
  for (int64_t j = 0; j < H; ++j) {
    const T f = saved[j], q = saved[H + j], candidate = saved[2 * H + j];
    d[j] = dc[j] * (c_prev[j] * f * (T(1) - f) - candidate * q * (T(1) - q));
    d[H + j] = dc[j] * (T(1) - q) * (T(1) - candidate * candidate);
    direct[j] = dc[j] * f;
  }
}

template <typename T>
RNNKIT_ROW void gru_backward_row(int64_t H, const T* __restrict__ dh, const T* __restrict__ saved, const T* __restrict__ h_prev,
                      T* __restrict__ d, T* __restrict__ d_rec, T* __restrict__ direct) {  // reset after
  for (int64_t j = 0; j < H; ++j) {
    const T r = saved[j], z = saved[H + j], n = saved[2 * H + j], g_n = saved[3 * H + j];
    const T d_n = dh[j] * (T(1) - z) * (T(1) - n * n);
    const T d_z = dh[j] * (h_prev[j] - n) * z * (T(1) - z);
    const T d_r = d_n * g_n * r * (T(1) - r);
    d[j] = d_r; d[H + j] = d_z; d[2 * H + j] = d_n;
    d_rec[j] = d_r; d_rec[H + j] = d_z; d_rec[2 * H + j] = d_n * r;
    direct[j] = dh[j] * z;
  }
}

template <typename T>
RNNKIT_ROW void gru_reset_before_backward_row(int64_t H, const T* __restrict__ dh, const T* __restrict__ saved, const T* __restrict__ h_prev,
                                   T* __restrict__ d, T* __restrict__ direct) {  // d_z, d_n; d_r needs d_n W_hn first
  for (int64_t j = 0; j < H; ++j) {
    const T z = saved[H + j], n = saved[2 * H + j];
    d[H + j] = dh[j] * (h_prev[j] - n) * z * (T(1) - z);
    d[2 * H + j] = dh[j] * (T(1) - z) * (T(1) - n * n);
    direct[j] = dh[j] * z;
  }
}

template <typename T>
RNNKIT_ROW void gru_reset_backward_row(int64_t H, const T* __restrict__ d_reset_input, const T* __restrict__ saved, const T* __restrict__ h_in,
                            T* __restrict__ d, T* __restrict__ d_rec_in) {  // d_r, and r ⊙ d(r ⊙ h_{t-1})
  for (int64_t j = 0; j < H; ++j) {
    const T r = saved[j];
    d[j] = d_reset_input[j] * h_in[j] * r * (T(1) - r);
    d_rec_in[j] = d_reset_input[j] * r;
  }
}

// What reaches the new state on a live row: the carried gradient plus the output's; zero on a finished row.
template <typename T>
RNNKIT_ROW void incoming_row(int64_t H, bool live, const T* __restrict__ carry_h, const T* __restrict__ d_out, const T* __restrict__ carry_c,
                  T* __restrict__ dh, T* __restrict__ dc) {
  if (!live) {
    std::fill(dh, dh + H, T(0));
    if (dc != nullptr) std::fill(dc, dc + H, T(0));
    return;
  }
  for (int64_t j = 0; j < H; ++j) dh[j] = carry_h[j] + d_out[j];
  if (dc != nullptr) std::memcpy(dc, carry_c, H * sizeof(T));
}

// The gradient carried to h_{t-1} on a live row: through W_hh (times the dropout mask) plus the direct share.
template <typename T>
RNNKIT_ROW void carry_row(int64_t H, const T* __restrict__ through, const T* __restrict__ mask, const T* __restrict__ direct, T* __restrict__ carry) {
  for (int64_t j = 0; j < H; ++j) carry[j] = through[j] * mask[j] + direct[j];
}

std::vector<Tensor> loops_backward(int64_t cell, const Tensor& saved, const std::vector<Tensor>& histories, const Tensor& d_outputs,
                                  const std::vector<Tensor>& d_final, const Tensor& weight, const std::vector<Tensor>& inner,
                                  const c10::optional<Tensor>& hidden_mask, const c10::optional<Tensor>& alive, int64_t input_width) {
  const int64_t T = d_outputs.size(0), B = d_outputs.size(1), H = histories[0].size(2), G = input_width, S = saved_width(cell, H);
  const auto options = d_outputs.options();
  Tensor d_inputs = at::empty({T, B, G}, options);
  // The gradient of the step's GEMM output differs from the input terms' for the reset-after GRU (r ⊙ d a_n)
  // and behind a layer norm; for the other cells it is d_inputs, and an empty tensor tells the caller so.
  const bool separate = separate_recurrent_gradient(cell);
  Tensor d_recurrent = at::empty({separate ? T : 0, B, G}, options);
  // The gradient carried to the previous step, per state part, and the step's scratch buffers.
  Tensor carry_h = d_final[0].contiguous().clone();
  Tensor carry_c = is_lstm(cell) ? d_final[1].contiguous().clone() : Tensor();
  Tensor d_h = at::empty({B, H}, options), d_c = at::empty({B, H}, options);
  Tensor direct = at::zeros({B, H}, options), d_c_prev = at::empty({B, H}, options);
  Tensor d_rec_in = at::empty({B, H}, options), d_reset_input = at::empty({B, H}, options);
  Tensor h_in = at::empty({B, H}, options);  // h_{t-1} ⊙ mask, for the reset-before GRU's d_r
  // Behind a layer norm: the gradient at its output, d m (LSTM, H) or d (γ x̂) (reset-after GRU, 3H).
  Tensor d_normalised = at::empty({B, cell == GRU_LN ? 3 * H : cell == LSTM_LN ? H : 0}, options);
  const Tensor mask = hidden_mask.has_value() ? hidden_mask->contiguous() : at::ones({B, H}, options);
  const Tensor alive_rows = alive.has_value() ? alive->reshape({T, B}).contiguous() : Tensor();
  const Inner in_loop = unpack_inner(cell, inner, H, options);
  // The layer-normalised cells' inner gradients, summed over the steps per row: each row belongs to one
  // thread, so the rows add to their own sums without locks; the batch is summed once at the end.
  Inner sums;
  if (is_layer_norm(cell)) sums.gain = at::zeros({B, in_loop.gain.numel()}, options);
  if (cell == LSTM_LN) {
    sums.gain_c = at::zeros({B, H}, options);
    sums.shift_c = at::zeros({B, H}, options);
  }
  const bool has_b_hn = cell == GRU_LN && inner.size() == 2;  // the reset-after GRU's is summed by the caller
  if (has_b_hn) sums.b_hn = at::zeros({B, H}, options);
  const bool element_wise = cell == INDRNN_RELU || cell == INDRNN_TANH;
  const Tensor weight_rz = is_reset_before(cell) ? weight.narrow(0, 0, 2 * H) : Tensor();
  const Tensor weight_n = is_reset_before(cell) ? weight.narrow(0, 2 * H, H) : Tensor();
  AT_DISPATCH_FLOATING_TYPES(d_outputs.scalar_type(), "rnnkit_loops_backward", [&] {
    const bool relu = cell == RNN_RELU || cell == INDRNN_RELU;
    const scalar_t* gain = pointer_or_null<scalar_t>(in_loop.gain);
    const scalar_t* gain_c = pointer_or_null<scalar_t>(in_loop.gain_c);
    scalar_t* sum_gain = pointer_or_null<scalar_t>(sums.gain);
    scalar_t* sum_gain_c = pointer_or_null<scalar_t>(sums.gain_c);
    scalar_t* sum_shift_c = pointer_or_null<scalar_t>(sums.shift_c);
    scalar_t* sum_b_hn = pointer_or_null<scalar_t>(sums.b_hn);
    scalar_t* dn = d_normalised.data_ptr<scalar_t>();
    const int64_t N = d_normalised.size(1), W = sums.gain.defined() ? sums.gain.size(1) : 0;
    scalar_t* ch = carry_h.data_ptr<scalar_t>();
    scalar_t* cc = is_lstm(cell) ? carry_c.data_ptr<scalar_t>() : nullptr;
    scalar_t* dh = d_h.data_ptr<scalar_t>();
    scalar_t* dc = d_c.data_ptr<scalar_t>();
    scalar_t* dd = direct.data_ptr<scalar_t>();
    scalar_t* dcp = d_c_prev.data_ptr<scalar_t>();
    scalar_t* drin = d_rec_in.data_ptr<scalar_t>();
    const scalar_t* m = mask.data_ptr<scalar_t>();
    for (int64_t t = T - 1; t >= 0; --t) {
      const bool* live = alive.has_value() ? alive_rows.data_ptr<bool>() + t * B : nullptr;
      const scalar_t* d_out = d_outputs.data_ptr<scalar_t>() + t * B * H;
      const scalar_t* sv = saved.data_ptr<scalar_t>() + t * B * S;
      const scalar_t* hp = histories[0].data_ptr<scalar_t>() + t * B * H;
      const scalar_t* h = histories[0].data_ptr<scalar_t>() + (t + 1) * B * H;
      const scalar_t* cp = is_lstm(cell) ? histories[1].data_ptr<scalar_t>() + t * B * H : nullptr;
      scalar_t* d = d_inputs.data_ptr<scalar_t>() + t * B * G;
      scalar_t* d_rec = separate ? d_recurrent.data_ptr<scalar_t>() + t * B * G : nullptr;
      for_rows(B, G, [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
          const int64_t row = b * H;
          const scalar_t* row_saved = sv + b * S;
          incoming_row(H, live == nullptr || live[b], ch + row, d_out + row, cc ? cc + row : nullptr, dh + row, cc ? dc + row : nullptr);
          switch (cell) {
            case RNN_TANH: case RNN_RELU: case INDRNN_TANH: case INDRNN_RELU:
              activation_backward_row(H, relu, dh + row, h + row, d + b * G); break;
            case LSTM: lstm_backward_row(H, dh + row, dc + row, row_saved, cp + row, d + b * G, dcp + row); break;
            case LSTM_LN:
              layer_norm_lstm_backward_row(H, dh + row, dc + row, row_saved, cp + row, gain_c, d + b * G, dn + row, dcp + row,
                                           sum_gain_c + row, sum_shift_c + row);
              layer_norm_backward_row(H, 4, d + b * G, gain, row_saved + 5 * H, row_saved + 10 * H, d_rec + b * G, sum_gain + b * W);
              break;
            case JANET: janet_backward_row(H, dh + row, row_saved, hp + row, d + b * G, dd + row); break;
            case GRU: gru_backward_row(H, dh + row, row_saved, hp + row, d + b * G, d_rec + b * G, dd + row); break;
            case GRU_LN:  // d (γ x̂) as the plain GRU's d_recurrent, then through the layer norm
              gru_backward_row(H, dh + row, row_saved, hp + row, d + b * G, dn + b * N, dd + row);
              if (sum_b_hn != nullptr) accumulate_row(H, dn + b * N + 2 * H, sum_b_hn + row);
              layer_norm_backward_row(H, 3, dn + b * N, gain, row_saved + 4 * H, row_saved + 7 * H, d_rec + b * G, sum_gain + b * W);
              break;
            case GRU_RESET_BEFORE: gru_reset_before_backward_row(H, dh + row, row_saved, hp + row, d + b * G, dd + row); break;
            case GRU_RESET_BEFORE_LN:  // the candidate's block now; r's and z's once d_r is known, below
              gru_reset_before_backward_row(H, dh + row, row_saved, hp + row, d + b * G, dd + row);
              layer_norm_backward_row(H, 1, d + b * G + 2 * H, gain + 2 * H, row_saved + 5 * H, row_saved + 6 * H + 2, d_rec + b * G + 2 * H,
                                      sum_gain + b * W + 2 * H);
              break;
            default: TORCH_CHECK(false, "unknown cell id ", cell);
          }
        }
      });

      // The share of h_{t-1} through the recurrent input (before the dropout mask).
      const Tensor d_in = d_inputs[t];
      const Tensor d_pre = separate ? d_recurrent[t] : d_in;  // gradient of the step's GEMM output
      if (element_wise) {
        at::mul_out(d_rec_in, d_in, weight);
      } else if (is_reset_before(cell)) {
        at::mm_out(d_reset_input, d_pre.narrow(1, 2 * H, H), weight_n);  // d (r ⊙ h_{t-1})
        at::mul_out(h_in, histories[0][t], mask);
        const scalar_t* dri = d_reset_input.data_ptr<scalar_t>();
        const scalar_t* in = h_in.data_ptr<scalar_t>();
        for_rows(B, H, [&](int64_t begin, int64_t end) {
          for (int64_t b = begin; b < end; ++b) {
            gru_reset_backward_row(H, dri + b * H, sv + b * S, in + b * H, d + b * G, drin + b * H);
            if (cell == GRU_RESET_BEFORE_LN) {
              layer_norm_backward_row(H, 2, d + b * G, gain, sv + b * S + 3 * H, sv + b * S + 6 * H, d_rec + b * G, sum_gain + b * W);
            }
          }
        });
        d_rec_in.addmm_(d_pre.narrow(1, 0, 2 * H), weight_rz);
      } else {
        at::mm_out(d_rec_in, d_pre, weight);
      }
      // The carried gradients of h_{t-1} and c_{t-1} on live rows; a finished row passes its carry unchanged.
      for_rows(B, H, [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
          if (live != nullptr && !live[b]) continue;
          const int64_t row = b * H;
          carry_row(H, drin + row, m + row, dd + row, ch + row);
          if (cc != nullptr) std::memcpy(cc + row, dcp + row, H * sizeof(scalar_t));
        }
      });
    }
  });
  std::vector<Tensor> result = {d_inputs, d_recurrent, carry_h};
  if (is_lstm(cell)) result.push_back(carry_c);
  // One gradient per inner tensor, in the order of `inner`; empty where the caller forms it (b_hn of the GRU).
  const Tensor none = at::empty({0}, options);
  const auto batch_sum = [&](const Tensor& per_row) { return per_row.defined() ? per_row.sum(0) : none; };
  if (cell == LSTM_LN) {
    result.insert(result.end(), {batch_sum(sums.gain), batch_sum(sums.gain_c), batch_sum(sums.shift_c)});
  } else if (is_layer_norm(cell)) {
    if (has_b_hn) result.push_back(batch_sum(sums.b_hn));
    result.push_back(batch_sum(sums.gain));
  } else {
    result.insert(result.end(), inner.size(), none);
  }
  return result;
}

}  // namespace

TORCH_LIBRARY(rnnkit_loops, m) {
  m.def("forward", &loops_forward);
  m.def("backward", &loops_backward);
}
