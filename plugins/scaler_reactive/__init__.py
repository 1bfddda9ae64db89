"""scaler_reactive: queueing, dispatch, reactive scaling and admission control.

Registers the ``reactive`` scheduler (``noslate_schedulers``), the
``least-request-count`` and ``round-robin`` dispatch strategies, the ``water-level``,
``ema`` and ``keepalive`` scaling policies, and per-function rate limits plus a global
circuit breaker (``noslate_admit``). Configure it under ``[plugins.scaler_reactive]``;
every knob is described in ``docs/scaling.md``.
"""
