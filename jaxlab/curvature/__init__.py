"""Curvature of a loss at given parameters: HVPs, top eigenpairs (Lanczos, power iteration, LOBPCG).

Functions take a ``loss_fn`` closure and a params pytree and never know the model; all are jittable.
"""
from jaxlab.curvature.hvp import hvp, make_hvp, tree_norm, tree_vdot  # noqa: F401
from jaxlab.curvature.lanczos import eig_gap, lanczos, lobpcg_top_k, power_iteration  # noqa: F401
