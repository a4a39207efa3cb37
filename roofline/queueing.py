"""Queueing for the SLO planner: Poisson arrivals waiting for one of c servers (an M/M/c
queue), and a search that finds the fewest servers meeting a target.

Erlang's B formula (the probability that all c servers are busy in a loss system), exact
for any c: the recursion up to RECURSION_SERVERS servers, Loader's saddle-point form of the
Poisson ratio beyond; Erlang's C (the probability of waiting) from it; the mean wait and
its quantiles; and `fewest`, a galloping search then bisection over a monotone condition.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

# Up to this many servers Erlang B's recursion (one step a server) is exact and cheap
# (tens of microseconds); past it, a few array operations whatever the count.
RECURSION_SERVERS = 1000


def _stirling_error(n: int) -> float:
    """ln n! - ln(sqrt(2 pi n) (n / e)^n): past 15 by its asymptotic series, exact to
    rounding there (Loader, Fast and Accurate Computation of Binomial Probabilities, 2000),
    below it from lgamma."""
    if n <= 15:
        return math.lgamma(n + 1) - (n + 0.5) * math.log(n) + n - 0.5 * math.log(2 * math.pi)
    nn = float(n) * n
    return (1 / 12 - (1 / 360 - (1 / 1260 - (1 / 1680 - 1 / (1188 * nn)) / nn) / nn) / nn) / n


def _deviance(x: float, m: float) -> float:
    """x ln(x / m) + m - x without the cancellation near x = m (Loader 2000: its series
    in v = (x - m) / (x + m) where |v| < 0.1)."""
    d = x - m
    if abs(d) >= 0.1 * (x + m):
        return x * math.log(x / m) + m - x
    v = d / (x + m)
    s, term, v2 = d * v, 2 * x * v, v * v
    j = 1
    while True:
        term *= v2
        nxt = s + term / (2 * j + 1)
        if nxt == s:
            return nxt
        s, j = nxt, j + 1


def erlang_b(servers: int, load: float) -> float:
    """The probability that an arrival finds all `servers` busy in an M/M/c/c loss system
    with offered load a (Erlang's B formula).

    Up to RECURSION_SERVERS servers (or when a >= c), by the recursion
    B(k) = a B(k-1) / (k + a B(k-1)). Past it, as a Poisson ratio: with N ~ Poisson(a),
    B = P(N = c) / P(N <= c) = P(N = c) / (1 - P(N = c) T), where
    P(N = c) = e^{-(stirling error + deviance)} / sqrt(2 pi c) (Loader's saddle-point form,
    accurate to rounding where ln c! - c ln a would cancel) and
    T = P(N > c) / P(N = c) = sum_{n>=1} prod_{i<=n} a / (c + i). T's terms fall at least
    as e^{-n(n+1) / (2(c + n))} and as (a / c)^n; the sum stops where the first of the two
    bounds is below e^{-45}, after at most 45 + sqrt(2025 + 90 c) terms (30,000 for 10^7
    servers), summed as arrays. Agrees with the recursion to about 1e-13 relative."""
    if load <= 0:
        return 0.0
    if servers <= RECURSION_SERVERS or load >= servers:
        b = 1.0
        for k in range(1, servers + 1):
            b = load * b / (k + load * b)
        return b
    pmf = math.exp(-_stirling_error(servers) - _deviance(float(servers), load))
    pmf /= math.sqrt(2 * math.pi * servers)
    if pmf == 0.0:  # below the smallest double: no arrival waits
        return 0.0
    spare = servers - load
    terms = int(min(45 / math.log1p(spare / load), 45 + math.sqrt(2025 + 90 * servers))) + 2
    i = np.arange(1.0, terms + 1.0)
    tail = float(np.exp(np.cumsum(-np.log1p((spare + i) / load))).sum())
    return pmf / (1 - pmf * tail)


def erlang_c(servers: int, load: float) -> float:
    """The probability that an arrival waits in an M/M/c queue with c = `servers` and an
    offered load a = rate x service time (Erlang's C formula), from Erlang B (erlang_b:
    exact, and cheap for any count): C = B(c) / (1 - (a / c) (1 - B(c))). 1 when a >= c
    (the queue grows without end)."""
    if load >= servers:
        return 1.0
    b = erlang_b(servers, load)
    return b / (1 - load / servers * (1 - b))


def queue_wait_s(servers: int, rate: float, service_s: float) -> float:
    """Mean wait before service in an M/M/c queue: C(c, a) / (c / S - rate); inf when the
    servers cannot keep up."""
    load = rate * service_s
    if load >= servers:
        return math.inf
    return erlang_c(servers, load) / (servers / service_s - rate)


def queue_wait_quantile_s(servers: int, rate: float, service_s: float, q: float) -> float:
    """The q-quantile of the wait in an M/M/c queue: P(W > t) = C e^{-(c/S - rate) t}, so
    t_q = ln(C / (1 - q)) / (c/S - rate), and 0 when fewer than 1 - q of arrivals wait."""
    load = rate * service_s
    if load >= servers:
        return math.inf
    c = erlang_c(servers, load)
    return max(0.0, math.log(c / (1 - q))) / (servers / service_s - rate) if c > 0 else 0.0


def fewest(lo: int, hi: int, ok: Callable[[int], bool]) -> int | None:
    """The least n in [lo, hi] with ok(n), for ok false then true as n grows (a wait that
    only shortens with more servers); None when ok(hi) is false. A galloping search from
    lo, then bisection: about 2 log2(answer - lo) calls of ok, not answer - lo."""
    if lo > hi:
        return None
    if ok(lo):
        return lo
    bad, step = lo, 1
    while True:
        n = min(lo + step, hi)
        if ok(n):
            good = n
            break
        if n == hi:
            return None
        bad, step = n, 2 * step
    while good - bad > 1:
        mid = (bad + good) // 2
        if ok(mid):
            good = mid
        else:
            bad = mid
    return good
