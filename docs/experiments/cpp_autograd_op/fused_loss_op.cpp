// A measurement, not part of the package: the training path's Function as a C++ autograd op
// (TORCH_LIBRARY + torch::autograd::Function), calling the package's own C kernel tn_fused_loss
// through its address. measure.py builds it and times it against the Python Function; README.md
// (Performance) gives the result. First-order only and unchecked: enough to time, not to ship.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

using at::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// tn_fused_loss(X, y, U, b, W, c, N, D, H, X̄ or NULL, ε, Ū, b̄, W̄, c̄, threads), csrc/tanhnet_kernels.c
using FusedFn = int (*)(const void*, const void*, const void*, const void*, const void*, const void*, int64_t,
                        int64_t, int64_t, void*, void*, void*, void*, void*, void*, int);

struct FusedLoss : public torch::autograd::Function<FusedLoss> {
  static Tensor forward(AutogradContext* ctx, const Tensor& X, const Tensor& U, const Tensor& b, const Tensor& W,
                        const Tensor& c, const Tensor& y, int64_t kernel, int64_t threads, bool need_X_bar) {
    const int64_t N = X.size(0), D = X.size(1), H = U.size(0);
    auto opts = X.options();
    Tensor eps = at::empty({}, opts), U_bar = at::empty({H, D}, opts), b_bar = at::empty({H}, opts),
           W_bar = at::empty({1, H}, opts), c_bar = at::empty({1}, opts);
    Tensor X_bar = need_X_bar ? at::empty_like(X) : Tensor();
    int status = reinterpret_cast<FusedFn>(kernel)(
        X.data_ptr(), y.data_ptr(), U.data_ptr(), b.data_ptr(), W.data_ptr(), c.data_ptr(), N, D, H,
        need_X_bar ? X_bar.data_ptr() : nullptr, eps.data_ptr(), U_bar.data_ptr(), b_bar.data_ptr(),
        W_bar.data_ptr(), c_bar.data_ptr(), static_cast<int>(threads));
    TORCH_CHECK(status == 0, "the fused kernel could not allocate its working buffers");
    ctx->save_for_backward({X_bar, U_bar, b_bar, W_bar, c_bar});  // gradients at ε̄ = 1
    return eps;
  }

  static variable_list backward(AutogradContext* ctx, variable_list eps_bar) {
    auto s = ctx->get_saved_variables();
    auto g = at::_foreach_mul({s[1], s[2], s[3], s[4]}, eps_bar[0]);  // every gradient is linear in ε̄
    return {s[0].defined() ? s[0] * eps_bar[0] : Tensor(), g[0], g[1], g[2], g[3], Tensor(), Tensor(), Tensor(),
            Tensor()};
  }
};

Tensor fused_loss(const Tensor& X, const Tensor& U, const Tensor& b, const Tensor& W, const Tensor& c,
                  const Tensor& y, int64_t kernel, int64_t threads) {
  const bool need_X_bar = at::GradMode::is_enabled() && X.requires_grad();
  return FusedLoss::apply(X.contiguous(), U.contiguous(), b.contiguous(), W.contiguous(), c.contiguous(),
                          y.contiguous(), kernel, threads, need_X_bar);
}

TORCH_LIBRARY(tanhnet_experiment, m) {
  m.def("fused_loss(Tensor X, Tensor U, Tensor b, Tensor W, Tensor c, Tensor y, int kernel, int threads) -> Tensor");
}

TORCH_LIBRARY_IMPL(tanhnet_experiment, CompositeImplicitAutograd, m) { m.impl("fused_loss", &fused_loss); }
