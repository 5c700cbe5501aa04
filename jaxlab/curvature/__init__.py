"""Curvature of a loss at given parameters, matrix-free and jittable.

Functions take a ``loss_fn`` closure (or a matvec built from one) and a params pytree; they never know the model.

    hvp.py             hvp, make_hvp (full batch, chunked, linearised)
    linearise.py       linearise: one jax.linearize of (outputs, gradient) serving H v, J v, Jᵀ u
    krylov.py          lanczos_adaptive (while_loop stopped by Ritz residuals, warm starts): the Lanczos engine
    block_krylov.py    block_lanczos (vmapped products, same stopping rule)
    lanczos.py         lanczos (top-k, fixed steps), power_iteration, lobpcg_top_k, eig_gap
    spectrum.py        hutchinson_trace, slq_density (stochastic Lanczos quadrature)
    trace_estimators.py  hutchinson, hutchpp, xtrace (each with a standard error)
    ggn.py             make_ggn, ggn_from (Gauss–Newton for MSE / cross-entropy / any loss in the outputs)
    blocks.py          param_groups, block_spectra (λ of each parameter group's diagonal Hessian block)
    lm_hvp.py          make_token_chunked_hvp (LM HVP without [B, T, V] tangents)
    ntk.py             ntk_matvec, ntk_top_eigenvalues, ntk_adaptive, ggn_matvec (Gauss–Newton via lanczos)
    preconditioned.py  preconditioned_matvec, preconditioned_sharpness (P declared by the optimiser)
    arnoldi.py         arnoldi, ritz, leftmost (non-symmetric operators)
    step_map.py        linearize_step, flip_multiplier, step_singular_values, dense_step_jacobian (any optimiser)
    dimension.py       kaplan_yorke_dimension (the sharpness dimension), gd_exponents
    zo_stability.py    critical_lr, critical_lr_bounds, commutator_ratio (ZO mean-square stability)
    alignment.py       sharpness_gradient, alignment, layer_shares
    plots.py           plot_density
"""
from jaxlab.curvature.alignment import alignment, layer_shares, sharpness_gradient  # noqa: F401
from jaxlab.curvature.blocks import block_spectra, param_groups  # noqa: F401
from jaxlab.curvature.block_krylov import block_lanczos  # noqa: F401
from jaxlab.curvature.ggn import ggn_from, make_ggn  # noqa: F401
from jaxlab.curvature.hvp import hvp, make_hvp  # noqa: F401
from jaxlab.curvature.krylov import Krylov, lanczos_adaptive  # noqa: F401
from jaxlab.curvature.linearise import Linearised, linearise  # noqa: F401
from jaxlab.curvature.lm_hvp import make_token_chunked_hvp  # noqa: F401
from jaxlab.curvature.trace_estimators import hutchpp, xtrace  # noqa: F401
from jaxlab.curvature.lanczos import (  # noqa: F401
    eig_gap, eigvec, lanczos, lanczos_tridiag, lobpcg_top_k, power_iteration, tridiag_eigh)
from jaxlab.curvature.ntk import ggn_matvec, mse_row_weights, ntk_matvec, ntk_top_eigenvalues  # noqa: F401
from jaxlab.curvature.preconditioned import preconditioned_matvec, preconditioned_sharpness  # noqa: F401
from jaxlab.curvature.step_map import (  # noqa: F401
    dense_step_jacobian, flip_multiplier, linearize_step, real_step, step_singular_values)
from jaxlab.curvature.spectrum import hutchinson_trace, slq_density, slq_nodes  # noqa: F401
