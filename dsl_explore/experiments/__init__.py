"""The kit's experiments: the reproduction of the paper's Betti-error claim and the proxy study.

- :mod:`~dsl_explore.experiments.reproduce`: ``dsl-explore reproduce`` (MSE, MSE + DSL and
  MSE + PH-loss autoencoders on the same data and seeds; tables with intervals).
- :mod:`~dsl_explore.experiments.proxy`: ``dsl-explore proxy`` (correlations of DSL with the
  exact count and topology metrics over perturbations, with intervals and partial
  correlations); :mod:`~dsl_explore.experiments.perturb`: the perturbation families;
  :mod:`~dsl_explore.experiments.proxy_report`: its tables.
- :mod:`~dsl_explore.experiments.protocol`, :mod:`~dsl_explore.experiments.suites`: what is
  trained, and which runs make a suite; :mod:`~dsl_explore.experiments.cost`: interleaved
  per-step cost; :mod:`~dsl_explore.experiments.report`: summaries and tables.
- :mod:`~dsl_explore.experiments.stats`: bootstrap intervals and (partial) Spearman correlations.
- :mod:`~dsl_explore.experiments.summary`: formatting and machine information shared by both.
"""

from dsl_explore.experiments.protocol import DEFAULTS, QUICK, SETTINGS
from dsl_explore.experiments.proxy import PERTURBATIONS, PROXY_METRICS, perturb, proxy
from dsl_explore.experiments.reproduce import reproduce
from dsl_explore.experiments.suites import SUITES

__all__ = [
    "DEFAULTS", "PERTURBATIONS", "PROXY_METRICS", "QUICK", "SETTINGS", "SUITES", "perturb",
    "proxy", "reproduce",
]
