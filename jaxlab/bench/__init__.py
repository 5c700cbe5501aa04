"""Benchmarks that print ratio tables against a reference measured in the same run (``python -m jaxlab.bench.X``)."""
