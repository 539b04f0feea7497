"""`farebox sim`: a simulated upstream AI provider on loopback, for tests, demos and benchmarks.

Each wire format is one module (`openai_chat`, ...); faults, tokens, pacing and the server are
shared modules.
"""

from farebox.sim.config import SimConfig
from farebox.sim.server import SimServer, create_sim_app, run_sim, start_sim

__all__ = ["SimConfig", "SimServer", "create_sim_app", "run_sim", "start_sim"]
