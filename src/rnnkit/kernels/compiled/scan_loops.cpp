// rnnkit's scan kernel loops in C++: the same steps as rnnkit/kernels/scan/*.py, without Python
// between them. The matrix products are ATen's (MKL/oneDNN); everything element-wise in a step is
// one fused pass over raw rows, with sigmoid and tanh written so that the compiler vectorises them
// (float32; float64 uses the C library's, for exactness in gradcheck).
//
// forward(cell, inputs, weight, inner_bias, hidden_mask, alive, state, beta, keep_for_backward)
//   inputs (T, B, G): W_ih x + biases for every step (computed outside, one GEMM)
//   returns [outputs (T, B, H), saved (T, B, S), history of each state part (T+1, B, H)...];
//   without keep_for_backward (inference) saved and histories only hold the last step.
// backward(cell, saved, histories, d_outputs, d_final, weight, hidden_mask, alive, input_width)
//   returns [d_inputs (T, B, G), d_recurrent (T, B, G) or empty where it equals d_inputs, d_state parts...]
// W_hh's gradient is one GEMM over d_recurrent, done by the caller (ScanStep.weight_gradients).
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

enum Cell : int64_t { RNN_TANH = 0, RNN_RELU = 1, LSTM = 2, GRU = 3, GRU_RESET_BEFORE = 4, JANET = 5, INDRNN_RELU = 6, INDRNN_TANH = 7 };

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

int64_t saved_width(int64_t cell, int64_t H) {
  switch (cell) {
    case LSTM: return 5 * H;             // i, f, g, o, tanh c
    case GRU: return 4 * H;              // r, z, n, g_n
    case GRU_RESET_BEFORE: return 3 * H; // r, z, n
    case JANET: return 3 * H;            // f = σ(s), q = σ(s - β), candidate
    default: return 0;
  }
}

// Width of the input terms (and of their gradient): G = gates · H.
int64_t gates_width(int64_t cell, int64_t H) {
  switch (cell) {
    case LSTM: return 4 * H;
    case GRU: case GRU_RESET_BEFORE: return 3 * H;
    case JANET: return 2 * H;
    default: return H;
  }
}

// Width of a step's GEMM result: the reset-before GRU's last GEMM gives the candidate's H columns only.
int64_t pre_width(int64_t cell, int64_t H) { return cell == GRU_RESET_BEFORE ? H : gates_width(cell, H); }

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

template <typename T>
RNNKIT_ROW void lstm_row(int64_t H, const T* __restrict__ x, const T* __restrict__ pre, const T* __restrict__ c_prev, T* __restrict__ c,
              T* __restrict__ h, T* __restrict__ saved) {  // saved: i, f, g, o, tanh c
  for (int64_t j = 0; j < H; ++j) {
    const T i = sigmoid(x[j] + pre[j]), f = sigmoid(x[H + j] + pre[H + j]);
    const T g = tanh_(x[2 * H + j] + pre[2 * H + j]), o = sigmoid(x[3 * H + j] + pre[3 * H + j]);
    c[j] = f * c_prev[j] + i * g;
    const T tanh_c = tanh_(c[j]);
    h[j] = o * tanh_c;
    saved[j] = i; saved[H + j] = f; saved[2 * H + j] = g; saved[3 * H + j] = o; saved[4 * H + j] = tanh_c;
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

std::vector<Tensor> scan_forward(int64_t cell, const Tensor& inputs, const Tensor& weight, const c10::optional<Tensor>& inner_bias,
                                 const c10::optional<Tensor>& hidden_mask, const c10::optional<Tensor>& alive,
                                 const std::vector<Tensor>& state, double beta, bool keep_for_backward) {
  TORCH_CHECK(inputs.device().is_cpu() && inputs.is_contiguous(), "scan_forward: contiguous CPU inputs expected");
  const int64_t T = inputs.size(0), B = inputs.size(1), G = inputs.size(2), H = state[0].size(1), S = saved_width(cell, H);
  TORCH_CHECK(G == gates_width(cell, H), "scan_forward: input terms of width ", G, " for hidden size ", H);
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
  const Tensor b_hn = inner_bias.has_value() ? inner_bias->contiguous() : at::zeros({H}, options);
  const Tensor alive_rows = alive.has_value() ? alive->reshape({T, B}).contiguous() : Tensor();
  // The reset-before GRU's two GEMMs take W_hr,z and W_hn apart; the views are made once, not every step.
  const Tensor weight_rz = cell == GRU_RESET_BEFORE ? weight_t.narrow(1, 0, 2 * H) : Tensor();
  const Tensor weight_n = cell == GRU_RESET_BEFORE ? weight_t.narrow(1, 2 * H, H) : Tensor();
  AT_DISPATCH_FLOATING_TYPES(inputs.scalar_type(), "rnnkit_scan_forward", [&] {
    const scalar_t value_beta = static_cast<scalar_t>(beta);
    const bool relu = cell == RNN_RELU || cell == INDRNN_RELU;
    const scalar_t* u = element_wise ? weight_t.data_ptr<scalar_t>() : nullptr;  // IndRNN's recurrent weights
    const scalar_t* bias_n = b_hn.data_ptr<scalar_t>();
    for (int64_t t = 0; t < T; ++t) {
      const int64_t read = keep_for_backward ? t : t % 2, write = keep_for_backward ? t + 1 : 1 - t % 2;
      const Tensor h_prev = histories[0][read];
      const Tensor h_in = hidden_mask.has_value() ? at::mul_out(rec_in, h_prev, *hidden_mask) : h_prev;
      if (cell == GRU_RESET_BEFORE) {
        at::mm_out(rz_pre, h_in, weight_rz);
      } else if (!element_wise) {
        at::mm_out(pre, h_in, weight_t);
      }
      const scalar_t* x = inputs.data_ptr<scalar_t>() + t * B * G;
      const scalar_t* hp = histories[0].data_ptr<scalar_t>() + read * B * H;
      scalar_t* h = histories[0].data_ptr<scalar_t>() + write * B * H;
      const scalar_t* cp = cell == LSTM ? histories[1].data_ptr<scalar_t>() + read * B * H : nullptr;
      scalar_t* c = cell == LSTM ? histories[1].data_ptr<scalar_t>() + write * B * H : nullptr;
      scalar_t* sv = saved.data_ptr<scalar_t>() + (keep_for_backward ? t : 0) * B * S;
      const scalar_t* in = h_in.data_ptr<scalar_t>();
      const scalar_t* p = pre.data_ptr<scalar_t>();
      if (cell == GRU_RESET_BEFORE) {  // r, z, then the candidate's GEMM on r ⊙ h_{t-1}
        const scalar_t* prz = rz_pre.data_ptr<scalar_t>();
        scalar_t* ri = reset_input.data_ptr<scalar_t>();
        for_rows(B, 2 * H, [&](int64_t begin, int64_t end) {
          for (int64_t b = begin; b < end; ++b)
            gru_reset_gates_row(H, x + b * G, prz + b * 2 * H, in + b * H, sv + b * S, ri + b * H);
        });
        at::mm_out(pre, reset_input, weight_n);
      }
      const bool* live = alive.has_value() ? alive_rows.data_ptr<bool>() + t * B : nullptr;
      scalar_t* out = outputs.data_ptr<scalar_t>() + t * B * H;
      for_rows(B, G, [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
          const int64_t row = b * H;
          switch (cell) {
            case RNN_TANH: case RNN_RELU: elman_row(H, relu, x + b * G, p + row, h + row); break;
            case INDRNN_TANH: case INDRNN_RELU: indrnn_row(H, relu, x + b * G, u, in + row, h + row); break;
            case LSTM: lstm_row(H, x + b * G, p + b * G, cp + row, c + row, h + row, sv + b * S); break;
            case JANET: janet_row(H, value_beta, x + b * G, p + b * G, hp + row, h + row, sv + b * S); break;
            case GRU: gru_row(H, x + b * G, p + b * G, bias_n, hp + row, h + row, sv + b * S); break;
            case GRU_RESET_BEFORE: gru_candidate_row(H, x + b * G + 2 * H, p + row, hp + row, h + row, sv + b * S); break;
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

template <typename T>
RNNKIT_ROW void lstm_backward_row(int64_t H, const T* __restrict__ dh, const T* __restrict__ dc_next, const T* __restrict__ saved,
                       const T* __restrict__ c_prev, T* __restrict__ d, T* __restrict__ dc_prev) {
  for (int64_t j = 0; j < H; ++j) {
    const T i = saved[j], f = saved[H + j], g = saved[2 * H + j], o = saved[3 * H + j], tanh_c = saved[4 * H + j];
    const T dc = dc_next[j] + dh[j] * o * (T(1) - tanh_c * tanh_c);
    d[j] = dc * g * i * (T(1) - i);
    d[H + j] = dc * c_prev[j] * f * (T(1) - f);
    d[2 * H + j] = dc * i * (T(1) - g * g);
    d[3 * H + j] = dh[j] * tanh_c * o * (T(1) - o);
    dc_prev[j] = dc * f;
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

std::vector<Tensor> scan_backward(int64_t cell, const Tensor& saved, const std::vector<Tensor>& histories, const Tensor& d_outputs,
                                  const std::vector<Tensor>& d_final, const Tensor& weight, const c10::optional<Tensor>& hidden_mask,
                                  const c10::optional<Tensor>& alive, int64_t input_width) {
  const int64_t T = d_outputs.size(0), B = d_outputs.size(1), H = histories[0].size(2), G = input_width, S = saved_width(cell, H);
  const auto options = d_outputs.options();
  Tensor d_inputs = at::empty({T, B, G}, options);
  // Only the reset-after GRU's recurrent pre-activation gradient differs from its input terms' (r ⊙ d a_n);
  // for the other cells it is d_inputs, and an empty tensor tells the caller so.
  Tensor d_recurrent = at::empty({cell == GRU ? T : 0, B, G}, options);
  // The gradient carried to the previous step, per state part, and the step's scratch buffers.
  Tensor carry_h = d_final[0].contiguous().clone();
  Tensor carry_c = cell == LSTM ? d_final[1].contiguous().clone() : Tensor();
  Tensor d_h = at::empty({B, H}, options), d_c = at::empty({B, H}, options);
  Tensor direct = at::zeros({B, H}, options), d_c_prev = at::empty({B, H}, options);
  Tensor d_rec_in = at::empty({B, H}, options), d_reset_input = at::empty({B, H}, options);
  Tensor h_in = at::empty({B, H}, options);  // h_{t-1} ⊙ mask, for the reset-before GRU's d_r
  const Tensor mask = hidden_mask.has_value() ? hidden_mask->contiguous() : at::ones({B, H}, options);
  const Tensor alive_rows = alive.has_value() ? alive->reshape({T, B}).contiguous() : Tensor();
  const bool element_wise = cell == INDRNN_RELU || cell == INDRNN_TANH;
  const Tensor weight_rz = cell == GRU_RESET_BEFORE ? weight.narrow(0, 0, 2 * H) : Tensor();
  const Tensor weight_n = cell == GRU_RESET_BEFORE ? weight.narrow(0, 2 * H, H) : Tensor();
  AT_DISPATCH_FLOATING_TYPES(d_outputs.scalar_type(), "rnnkit_scan_backward", [&] {
    const bool relu = cell == RNN_RELU || cell == INDRNN_RELU;
    scalar_t* ch = carry_h.data_ptr<scalar_t>();
    scalar_t* cc = cell == LSTM ? carry_c.data_ptr<scalar_t>() : nullptr;
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
      const scalar_t* cp = cell == LSTM ? histories[1].data_ptr<scalar_t>() + t * B * H : nullptr;
      scalar_t* d = d_inputs.data_ptr<scalar_t>() + t * B * G;
      scalar_t* d_rec = cell == GRU ? d_recurrent.data_ptr<scalar_t>() + t * B * G : nullptr;
      for_rows(B, G, [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
          const int64_t row = b * H;
          incoming_row(H, live == nullptr || live[b], ch + row, d_out + row, cc ? cc + row : nullptr, dh + row, cc ? dc + row : nullptr);
          switch (cell) {
            case RNN_TANH: case RNN_RELU: case INDRNN_TANH: case INDRNN_RELU:
              activation_backward_row(H, relu, dh + row, h + row, d + b * G); break;
            case LSTM: lstm_backward_row(H, dh + row, dc + row, sv + b * S, cp + row, d + b * G, dcp + row); break;
            case JANET: janet_backward_row(H, dh + row, sv + b * S, hp + row, d + b * G, dd + row); break;
            case GRU: gru_backward_row(H, dh + row, sv + b * S, hp + row, d + b * G, d_rec + b * G, dd + row); break;
            case GRU_RESET_BEFORE: gru_reset_before_backward_row(H, dh + row, sv + b * S, hp + row, d + b * G, dd + row); break;
            default: TORCH_CHECK(false, "unknown cell id ", cell);
          }
        }
      });

      // The share of h_{t-1} through the recurrent input (before the dropout mask).
      const Tensor d_in = d_inputs[t];
      if (element_wise) {
        at::mul_out(d_rec_in, d_in, weight);
      } else if (cell == GRU) {
        at::mm_out(d_rec_in, d_recurrent[t], weight);
      } else if (cell == GRU_RESET_BEFORE) {
        at::mm_out(d_reset_input, d_in.narrow(1, 2 * H, H), weight_n);  // d (r ⊙ h_{t-1})
        at::mul_out(h_in, histories[0][t], mask);
        const scalar_t* dri = d_reset_input.data_ptr<scalar_t>();
        const scalar_t* in = h_in.data_ptr<scalar_t>();
        for_rows(B, H, [&](int64_t begin, int64_t end) {
          for (int64_t b = begin; b < end; ++b) gru_reset_backward_row(H, dri + b * H, sv + b * S, in + b * H, d + b * G, drin + b * H);
        });
        d_rec_in.addmm_(d_in.narrow(1, 0, 2 * H), weight_rz);
      } else {
        at::mm_out(d_rec_in, d_in, weight);
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
  if (cell == LSTM) result.push_back(carry_c);
  return result;
}

}  // namespace

TORCH_LIBRARY(rnnkit_scan, m) {
  m.def("forward", &scan_forward);
  m.def("backward", &scan_backward);
}
