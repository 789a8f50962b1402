"""The framework: plastic networks and their kernels, encoders, agents, the fitness problem,
evaluation and watching."""

import numba_cache

numba_cache.track(__path__[0])  # before any module here compiles a Numba function
