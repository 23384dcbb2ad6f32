// rnnkit's scan kernel loops in C++: the same steps as rnnkit/kernels/scan/*.py, without Python
// between them. Each cell's element-wise maths is one fused loop; the matrix products are ATen's.
//
// forward(cell, inputs, weight, inner_bias, hidden_mask, alive, state, beta)
//   inputs (T, B, G): W_ih x + biases for every step (computed outside, one GEMM)
//   returns [outputs (T, B, H), saved (T, B, S), history of each state part (T+1, B, H)...]
// backward(cell, saved, histories, d_outputs, d_final, weight, inner_bias, hidden_mask, alive, beta)
//   returns [d_inputs (T, B, G), d_recurrent (T, B, G) or empty where it equals d_inputs, d_state parts...]
// W_hh's gradient is one GEMM over d_recurrent, done by the caller (ScanStep.weight_gradients).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <vector>

using at::Tensor;

namespace {

enum Cell : int64_t { RNN_TANH = 0, RNN_RELU = 1, LSTM = 2, GRU = 3, GRU_RESET_BEFORE = 4, JANET = 5, INDRNN_RELU = 6, INDRNN_TANH = 7 };

template <typename T> inline T activation_slope(bool relu, T y) { return relu ? T(y > T(0)) : T(1) - y * y; }

// Runs body(b, j) for every row b < B and unit j < H, rows split over threads when it pays.
template <typename F> inline void for_each_unit(int64_t B, int64_t H, F body) {
  at::parallel_for(0, B, std::max<int64_t>(1, 16384 / std::max<int64_t>(H, 1)), [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b)
      for (int64_t j = 0; j < H; ++j) body(b, j);
  });
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

// One step. Sigmoid and tanh run as ATen's vectorised ops on whole blocks; the arithmetic
// between them is one fused loop per step.
template <typename scalar_t>
void forward_step(int64_t cell, int64_t t, const Tensor& inputs, const Tensor& weight_t, const c10::optional<Tensor>& inner_bias,
                  const Tensor& rec_in, const std::vector<Tensor>& previous, const std::vector<Tensor>& next, const Tensor& saved,
                  double beta) {
  const int64_t B = rec_in.size(0), H = previous[0].size(1);
  const Tensor x = inputs[t];
  const scalar_t* h_prev = previous[0].data_ptr<scalar_t>();
  Tensor h_next = next[0];
  scalar_t* h = h_next.data_ptr<scalar_t>();
  switch (cell) {
    case RNN_TANH: case RNN_RELU: {
      at::addmm_out(h_next, x, rec_in, weight_t);
      cell == RNN_RELU ? h_next.relu_() : h_next.tanh_();
      break;
    }
    case INDRNN_TANH: case INDRNN_RELU: {
      const scalar_t* xp = x.data_ptr<scalar_t>();
      const scalar_t* u = weight_t.data_ptr<scalar_t>();
      const scalar_t* in = rec_in.data_ptr<scalar_t>();
      for_each_unit(B, H, [&](int64_t b, int64_t j) { h[b * H + j] = xp[b * H + j] + u[j] * in[b * H + j]; });
      cell == INDRNN_RELU ? h_next.relu_() : h_next.tanh_();
      break;
    }
    case LSTM: {
      Tensor s = saved[t];  // (B, 5H)
      Tensor gates = s.narrow(1, 0, 4 * H);
      at::addmm_out(gates, x, rec_in, weight_t);
      gates.narrow(1, 0, 2 * H).sigmoid_();
      gates.narrow(1, 2 * H, H).tanh_();
      gates.narrow(1, 3 * H, H).sigmoid_();
      scalar_t* g = s.data_ptr<scalar_t>();
      const scalar_t* c_prev = previous[1].data_ptr<scalar_t>();
      Tensor c_next = next[1];
      scalar_t* c = c_next.data_ptr<scalar_t>();
      for_each_unit(B, H, [&](int64_t b, int64_t j) {
        const scalar_t* row = g + b * 5 * H;
        c[b * H + j] = row[H + j] * c_prev[b * H + j] + row[j] * row[2 * H + j];
      });
      Tensor tanh_c = s.narrow(1, 4 * H, H);
      at::tanh_out(tanh_c, c_next);
      for_each_unit(B, H, [&](int64_t b, int64_t j) { h[b * H + j] = g[b * 5 * H + 3 * H + j] * g[b * 5 * H + 4 * H + j]; });
      break;
    }
    case JANET: {
      Tensor pre = at::addmm(x, rec_in, weight_t);  // (B, 2H): s, a
      Tensor s = saved[t];                          // (B, 3H): f, q, candidate
      Tensor f = s.narrow(1, 0, H), q = s.narrow(1, H, H), cand = s.narrow(1, 2 * H, H);
      at::sigmoid_out(f, pre.narrow(1, 0, H));
      at::sigmoid_out(q, pre.narrow(1, 0, H) - beta);
      at::tanh_out(cand, pre.narrow(1, H, H));
      const scalar_t* p = s.data_ptr<scalar_t>();
      for_each_unit(B, H, [&](int64_t b, int64_t j) {
        const scalar_t* row = p + b * 3 * H;
        h[b * H + j] = row[j] * h_prev[b * H + j] + (scalar_t(1) - row[H + j]) * row[2 * H + j];
      });
      break;
    }
    case GRU: {
      Tensor recurrent = at::mm(rec_in, weight_t);  // (B, 3H)
      Tensor s = saved[t];                          // (B, 4H): r, z, n, g_n
      Tensor rz = s.narrow(1, 0, 2 * H);
      at::add_out(rz, x.narrow(1, 0, 2 * H), recurrent.narrow(1, 0, 2 * H));
      rz.sigmoid_();
      Tensor g_n = s.narrow(1, 3 * H, H);
      inner_bias.has_value() ? at::add_out(g_n, recurrent.narrow(1, 2 * H, H), *inner_bias) : g_n.copy_(recurrent.narrow(1, 2 * H, H));
      scalar_t* p = s.data_ptr<scalar_t>();
      const scalar_t* xp = x.data_ptr<scalar_t>();
      for_each_unit(B, H, [&](int64_t b, int64_t j) {
        scalar_t* row = p + b * 4 * H;
        row[2 * H + j] = xp[b * 3 * H + 2 * H + j] + row[j] * row[3 * H + j];
      });
      s.narrow(1, 2 * H, H).tanh_();
      for_each_unit(B, H, [&](int64_t b, int64_t j) {
        const scalar_t* row = p + b * 4 * H;
        const scalar_t n = row[2 * H + j];
        h[b * H + j] = n + row[H + j] * (h_prev[b * H + j] - n);
      });
      break;
    }
    case GRU_RESET_BEFORE: {
      Tensor s = saved[t];  // (B, 3H): r, z, n
      Tensor rz = s.narrow(1, 0, 2 * H);
      at::addmm_out(rz, x.narrow(1, 0, 2 * H), rec_in, weight_t.narrow(1, 0, 2 * H));
      rz.sigmoid_();
      Tensor reset_input = s.narrow(1, 0, H) * rec_in;
      Tensor n = s.narrow(1, 2 * H, H);
      at::addmm_out(n, x.narrow(1, 2 * H, H), reset_input, weight_t.narrow(1, 2 * H, H));
      n.tanh_();
      const scalar_t* p = s.data_ptr<scalar_t>();
      for_each_unit(B, H, [&](int64_t b, int64_t j) {
        const scalar_t* row = p + b * 3 * H;
        const scalar_t n_j = row[2 * H + j];
        h[b * H + j] = n_j + row[H + j] * (h_prev[b * H + j] - n_j);
      });
      break;
    }
    default: TORCH_CHECK(false, "unknown cell id ", cell);
  }
}

// Gradients of one step: fills d_inputs[t], d_recurrent[t], and returns d_rec_in (B, H) and the direct
// share of each previous state part (undefined where zero).
template <typename scalar_t>
std::pair<Tensor, std::vector<Tensor>> backward_step(int64_t cell, int64_t t, const Tensor& saved, const std::vector<Tensor>& previous,
                                                     const std::vector<Tensor>& next, const Tensor& rec_in,
                                                     const std::vector<Tensor>& d_new, const Tensor& weight, const Tensor& d_inputs,
                                                     const Tensor& d_recurrent, double beta) {
  const int64_t B = rec_in.size(0), H = previous[0].size(1);
  const scalar_t* dh = d_new[0].data_ptr<scalar_t>();
  Tensor d_in = d_inputs[t];
  scalar_t* di = d_in.data_ptr<scalar_t>();
  std::vector<Tensor> d_previous(previous.size());
  switch (cell) {
    case RNN_TANH: case RNN_RELU: case INDRNN_TANH: case INDRNN_RELU: {
      const bool relu = cell == RNN_RELU || cell == INDRNN_RELU;
      const scalar_t* h = next[0].data_ptr<scalar_t>();
      for_each_unit(B, H, [&](int64_t b, int64_t j) { di[b * H + j] = dh[b * H + j] * activation_slope(relu, h[b * H + j]); });
      if (cell == INDRNN_TANH || cell == INDRNN_RELU) return {d_in * weight, d_previous};
      return {at::mm(d_in, weight), d_previous};
    }
    case LSTM: {
      const scalar_t* g = saved[t].data_ptr<scalar_t>();
      const scalar_t* dc_next = d_new[1].data_ptr<scalar_t>();
      const scalar_t* c_prev = previous[1].data_ptr<scalar_t>();
      Tensor dc_prev = at::empty_like(previous[1]);
      scalar_t* dcp = dc_prev.data_ptr<scalar_t>();
      for_each_unit(B, H, [&](int64_t b, int64_t j) {
        const scalar_t* row = g + b * 5 * H; scalar_t* d = di + b * 4 * H;
        const scalar_t i = row[j], f = row[H + j], cand = row[2 * H + j], o = row[3 * H + j], tc = row[4 * H + j];
        const int64_t k = b * H + j;
        const scalar_t dc = dc_next[k] + dh[k] * o * (scalar_t(1) - tc * tc);
        d[j] = dc * cand * i * (scalar_t(1) - i);
        d[H + j] = dc * c_prev[k] * f * (scalar_t(1) - f);
        d[2 * H + j] = dc * i * (scalar_t(1) - cand * cand);
        d[3 * H + j] = dh[k] * tc * o * (scalar_t(1) - o);
        dcp[k] = dc * f;
      });
      d_previous[1] = dc_prev;
      return {at::mm(d_in, weight), d_previous};
    }
    case JANET: {
      const scalar_t* p = saved[t].data_ptr<scalar_t>();
      const scalar_t* c_prev = previous[0].data_ptr<scalar_t>();
      Tensor dc_prev = at::empty_like(previous[0]);
      scalar_t* dcp = dc_prev.data_ptr<scalar_t>();
      for_each_unit(B, H, [&](int64_t b, int64_t j) {
        const scalar_t* row = p + b * 3 * H; scalar_t* d = di + b * 2 * H;
        const int64_t k = b * H + j;
        const scalar_t f = row[j], q = row[H + j], cand = row[2 * H + j];
        d[j] = dh[k] * (c_prev[k] * f * (scalar_t(1) - f) - cand * q * (scalar_t(1) - q));
        d[H + j] = dh[k] * (scalar_t(1) - q) * (scalar_t(1) - cand * cand);
        dcp[k] = dh[k] * f;
      });
      d_previous[0] = dc_prev;
      return {at::mm(d_in, weight), d_previous};
    }
    case GRU: {
      const scalar_t* s = saved[t].data_ptr<scalar_t>();
      const scalar_t* h_prev = previous[0].data_ptr<scalar_t>();
      scalar_t* dr = d_recurrent[t].data_ptr<scalar_t>();
      Tensor direct = at::empty_like(previous[0]);
      scalar_t* dd = direct.data_ptr<scalar_t>();
      for_each_unit(B, H, [&](int64_t b, int64_t j) {
        const scalar_t* row = s + b * 4 * H; scalar_t* d = di + b * 3 * H; scalar_t* drec = dr + b * 3 * H;
        const int64_t k = b * H + j;
        const scalar_t r = row[j], z = row[H + j], n = row[2 * H + j], g_n = row[3 * H + j];
        const scalar_t d_n = dh[k] * (scalar_t(1) - z) * (scalar_t(1) - n * n);
        const scalar_t d_z = dh[k] * (h_prev[k] - n) * z * (scalar_t(1) - z);
        const scalar_t d_r = d_n * g_n * r * (scalar_t(1) - r);
        d[j] = d_r; d[H + j] = d_z; d[2 * H + j] = d_n;
        drec[j] = d_r; drec[H + j] = d_z; drec[2 * H + j] = d_n * r;
        dd[k] = dh[k] * z;
      });
      d_previous[0] = direct;
      return {at::mm(d_recurrent[t], weight), d_previous};
    }
    case GRU_RESET_BEFORE: {
      const scalar_t* s = saved[t].data_ptr<scalar_t>();
      const scalar_t* h_prev = previous[0].data_ptr<scalar_t>();
      const scalar_t* in = rec_in.data_ptr<scalar_t>();
      Tensor direct = at::empty_like(previous[0]);
      scalar_t* dd = direct.data_ptr<scalar_t>();
      for_each_unit(B, H, [&](int64_t b, int64_t j) {  // d_n, d_z first: d_r needs d_n W_hn
        const scalar_t* row = s + b * 3 * H; scalar_t* d = di + b * 3 * H;
        const int64_t k = b * H + j;
        const scalar_t z = row[H + j], n = row[2 * H + j];
        d[H + j] = dh[k] * (h_prev[k] - n) * z * (scalar_t(1) - z);
        d[2 * H + j] = dh[k] * (scalar_t(1) - z) * (scalar_t(1) - n * n);
        dd[k] = dh[k] * z;
      });
      Tensor d_reset_input = at::mm(d_in.narrow(1, 2 * H, H), weight.narrow(0, 2 * H, H));  // gradient of r ⊙ h_{t-1}
      const scalar_t* dri = d_reset_input.data_ptr<scalar_t>();
      Tensor d_rec_in = at::empty_like(rec_in);
      scalar_t* drin = d_rec_in.data_ptr<scalar_t>();
      for_each_unit(B, H, [&](int64_t b, int64_t j) {
        const scalar_t r = s[b * 3 * H + j];
        const int64_t k = b * H + j;
        di[b * 3 * H + j] = dri[k] * in[k] * r * (scalar_t(1) - r);
        drin[k] = dri[k] * r;
      });
      d_rec_in.addmm_(d_in.narrow(1, 0, 2 * H), weight.narrow(0, 0, 2 * H));
      d_previous[0] = direct;
      return {d_rec_in, d_previous};
    }
    default: TORCH_CHECK(false, "unknown cell id ", cell);
  }
}

Tensor masked(const Tensor& h, const c10::optional<Tensor>& mask) { return mask.has_value() ? h * *mask : h; }

std::vector<Tensor> scan_forward(int64_t cell, const Tensor& inputs, const Tensor& weight, const c10::optional<Tensor>& inner_bias,
                                 const c10::optional<Tensor>& hidden_mask, const c10::optional<Tensor>& alive,
                                 const std::vector<Tensor>& state, double beta) {
  TORCH_CHECK(inputs.device().is_cpu() && inputs.is_contiguous(), "scan_forward: contiguous CPU inputs expected");
  const int64_t T = inputs.size(0), B = inputs.size(1), H = state[0].size(1);
  const bool vector_weight = cell == INDRNN_RELU || cell == INDRNN_TANH;
  const Tensor weight_t = vector_weight ? weight.contiguous() : weight.t();
  std::vector<Tensor> histories;
  for (const Tensor& part : state) {
    Tensor history = at::empty({T + 1, B, H}, inputs.options());
    history[0].copy_(part);
    histories.push_back(history);
  }
  Tensor saved = at::empty({T, B, saved_width(cell, H)}, inputs.options());
  Tensor outputs = at::empty({T, B, H}, inputs.options());
  AT_DISPATCH_FLOATING_TYPES(inputs.scalar_type(), "rnnkit_scan_forward", [&] {
    for (int64_t t = 0; t < T; ++t) {
      std::vector<Tensor> previous, next;
      for (const Tensor& history : histories) { previous.push_back(history[t]); next.push_back(history[t + 1]); }
      const Tensor rec_in = masked(previous[0], hidden_mask);
      forward_step<scalar_t>(cell, t, inputs, weight_t, inner_bias, rec_in, previous, next, saved, beta);
      if (alive.has_value()) {
        const Tensor keep = (*alive)[t];  // (B, 1) bool
        Tensor output = outputs[t];
        at::mul_out(output, next[0], keep);
        for (size_t p = 0; p < next.size(); ++p) next[p].copy_(at::where(keep, next[p], previous[p]));
      } else {
        outputs[t].copy_(next[0]);
      }
    }
  });
  std::vector<Tensor> result = {outputs, saved};
  result.insert(result.end(), histories.begin(), histories.end());
  return result;
}

std::vector<Tensor> scan_backward(int64_t cell, const Tensor& saved, const std::vector<Tensor>& histories, const Tensor& d_outputs,
                                  const std::vector<Tensor>& d_final, const Tensor& weight, const c10::optional<Tensor>& hidden_mask,
                                  const c10::optional<Tensor>& alive, int64_t input_width, double beta) {
  const int64_t T = d_outputs.size(0), B = d_outputs.size(1);
  Tensor d_inputs = at::empty({T, B, input_width}, d_outputs.options());
  // Only the reset-after GRU's recurrent pre-activation gradient differs from its input terms' (r ⊙ d a_n);
  // for the other cells it is d_inputs, and an empty tensor tells the caller so.
  Tensor d_recurrent = at::empty({cell == GRU ? T : 0, B, input_width}, d_outputs.options());
  std::vector<Tensor> d_carry;
  for (const Tensor& d : d_final) d_carry.push_back(d.contiguous());
  AT_DISPATCH_FLOATING_TYPES(d_outputs.scalar_type(), "rnnkit_scan_backward", [&] {
    for (int64_t t = T - 1; t >= 0; --t) {
      std::vector<Tensor> previous, next, d_new(d_carry.size()), d_keep(d_carry.size());
      for (const Tensor& history : histories) { previous.push_back(history[t]); next.push_back(history[t + 1]); }
      d_new[0] = d_carry[0] + d_outputs[t];
      for (size_t p = 1; p < d_carry.size(); ++p) d_new[p] = d_carry[p];
      if (alive.has_value()) {
        const Tensor keep = (*alive)[t];
        for (size_t p = 0; p < d_carry.size(); ++p) {
          d_keep[p] = d_carry[p] * keep.logical_not();
          d_new[p] = d_new[p] * keep;
        }
      }
      const Tensor rec_in = masked(previous[0], hidden_mask);
      auto [d_rec_in, d_previous] =
          backward_step<scalar_t>(cell, t, saved, previous, next, rec_in, d_new, weight, d_inputs, d_recurrent, beta);
      Tensor d_h = masked(d_rec_in, hidden_mask);
      if (d_previous[0].defined()) d_h = d_h + d_previous[0];
      if (d_keep[0].defined()) d_h = d_h + d_keep[0];
      d_carry[0] = d_h.contiguous();
      for (size_t p = 1; p < d_carry.size(); ++p) {
        Tensor d = d_previous[p].defined() ? d_previous[p] : at::zeros_like(d_carry[p]);
        d_carry[p] = (d_keep[p].defined() ? d + d_keep[p] : d).contiguous();
      }
    }
  });
  std::vector<Tensor> result = {d_inputs, d_recurrent};
  result.insert(result.end(), d_carry.begin(), d_carry.end());
  return result;
}

}  // namespace

TORCH_LIBRARY(rnnkit_scan, m) {
  m.def("forward", &scan_forward);
  m.def("backward", &scan_backward);
}
