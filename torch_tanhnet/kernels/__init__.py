"""The fast implementations of the handout's equations, and the one place that picks among them.

- :mod:`.dispatch`: which implementation serves a call (reference, C, Triton, torch ops), and why;
- :mod:`.functions`: the fast autograd Functions, which call what dispatch chose;
- :mod:`.c_kernels` over :mod:`.cpu` and ``csrc/tanhnet_kernels.c``: the C kernels, built on first use;
- :mod:`.triton_kernel`: the training path's CUDA kernel;
- :mod:`.torch_ops`: the same equations in a few torch ops, where neither kernel serves.
"""
