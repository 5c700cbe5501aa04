"""jaxlab: a JAX research codebase for studying training dynamics.

A training run is a pure function of ``(config, seed)``; see ``jaxlab.train.run``.
"""

__version__ = "0.1.0"
