"""The HTTP probe: measure a running web service before and after a change.

Modules (none imports Django, none touches the database):

* ``plan``      — `parse_plan(json) -> Plan` or `PlanError`: requests, rate or concurrency, where
                  the service reports cache status, DB queries and memory; the path and URL
                  rules that keep the probe on its own target.
* ``generator`` — the load generator, run as its own process (stdlib + aiohttp + hdrh): open
                  loop from intended send times, HDR histograms, its own schedule lag.
* ``serve``     — one block of one side: `serve_and_probe` (start the revision from its
                  worktree on a loopback port, wait for readiness, drive the plan, stop every
                  process) and `probe_url` (an environment's registered staging URL). Both return
                  a `ProbeResult` whose ``result`` is the generator's JSON, or whose ``failure``
                  says in one sentence why there is none.
* ``analysis``  — `compare_sides(before_results, after_results) -> HttpReport`: per side and per
                  endpoint summaries, one `HttpComparison` per metric (fields of
                  `stats.Comparison` plus ``label``, ``endpoint`` and ``direction``), warnings.

How a measurement of ``kind="http"`` drives it (what the execution layer calls)::

    plan = parse_plan(profile.http_plan)                       # validate on save, too
    before, after = [], []
    for side, worktree in interleaved_blocks:                  # ABAB, as command runs
        outcome = serve_and_probe(
            argv=profile.argv,                                 # contains "{port}"
            cwd=worktree, env=profile.env, plan=plan,
            ready_path=profile.ready_path, startup_timeout=profile.startup_timeout,
        )   # or: probe_url(base_url=env.base_url, registered=[env.base_url], plan=plan)
        if not outcome.ok: fail the run with outcome.failure (outcome.service_output as tail)
        (before if side == "before" else after).append(outcome.result)   # store per run: JSON
    report = compare_sides(before, after)
    results = report.as_dict()   # {"sides": ..., "comparisons": [...], "warnings": [...]}

A run's JSON holds its HDR histograms (compressed base64), so results stored per run can be
merged and re-judged later. Metric keys: ``latency_p50``, ``latency_p95``, ``latency_p99``,
``error_rate``, ``cache_hit_ratio`` (per endpoint and for all requests; endpoint None),
``db_queries`` (per endpoint), ``rss_slope`` and ``server_peak_rss`` (whole service).

The sandbox seam: `serve.ServedProcess` is the only place a served process is started and
stopped; a sandboxed runner passes its own class as ``service_factory=`` with the same
``start() / pid / exit_code() / stop() / output_tail() / tree() / listens_on(port)``. If the
sandbox gives the service its own network namespace, the generator must run inside it too (it
only needs loopback).
"""
