"""The serving simulation's scheduler loop, compiled (simulate.py holds the algorithm's
description, the cost model and the checks; this is its hot loop, arrays in, arrays out).

One function, `run_engine`, runs a request stream through one replica iteration by
iteration; it imports only numpy and numba (the engine floor, like `_numba_kernels`), and
runs as plain Python under NUMBA_DISABLE_JIT=1 (the tests run it both ways).

State, per request: tokens in the KV cache (`computed`), tokens to prefill before its next
token (`target`), tokens made, KV blocks held. The waiting queue is a ring buffer (a
preempted request goes back to its front); the running requests an array in admission order.
Scalars that helpers change live in `st`: free blocks, queue head, queue length, running
count, scheduled count.

The iteration log keeps at most `log_cap` rows: when full, every other row is dropped and
only every second later row is kept (then every fourth ...), so a run of 10^6 requests keeps
a chart's worth of rows in a fixed memory; `steps` counts every iteration.
"""

from __future__ import annotations

import numpy as np
from numba import njit

FREE, HEAD, QUEUED, RUNNING, SCHEDULED = 0, 1, 2, 3, 4
OK, NO_ROOM = 0, 1


@njit(cache=True)
def _need(tokens: int, bt: int, shared: int) -> int:
    """Blocks a request holds for `tokens` tokens: its own, past the `shared` prefix blocks
    that every request reads from the cache (prefix caching)."""
    return max(0, -(-tokens // bt) - shared)


@njit(cache=True)
def _push_front(queue: np.ndarray, st: np.ndarray, r: int) -> None:
    cap = len(queue)
    st[HEAD] = (st[HEAD] - 1) % cap
    queue[st[HEAD]] = r
    st[QUEUED] += 1


@njit(cache=True)
def _push_back(queue: np.ndarray, st: np.ndarray, r: int) -> None:
    queue[(st[HEAD] + st[QUEUED]) % len(queue)] = r
    st[QUEUED] += 1


@njit(cache=True)
def _schedule(r: int, n_tok: int, want: int, st: np.ndarray, held: np.ndarray,
              sched_r: np.ndarray, sched_n: np.ndarray) -> None:  # fmt: skip
    """Request r takes n_tok tokens of this iteration and `want` more KV blocks (if > 0)."""
    if want > 0:
        st[FREE] -= want
        held[r] += want
    sched_r[st[SCHEDULED]] = r
    sched_n[st[SCHEDULED]] = n_tok
    st[SCHEDULED] += 1


@njit(cache=True)
def _drop_finished(running: np.ndarray, st: np.ndarray, made: np.ndarray, output: np.ndarray,
                   held: np.ndarray) -> None:  # fmt: skip
    """Finished requests leave the running ones (in order) and free their KV blocks."""
    kept = 0
    for i in range(st[RUNNING]):
        r = running[i]
        if made[r] >= output[r]:
            st[FREE] += held[r]
            held[r] = 0
        else:
            running[kept] = r
            kept += 1
    st[RUNNING] = kept


@njit(cache=True)
def _admit(
    budget: int, whole: bool, reserve: bool, max_seqs: int, bt: int, shared: int,
    queue: np.ndarray,
    st: np.ndarray, running: np.ndarray, sched_r: np.ndarray, sched_n: np.ndarray,
    computed: np.ndarray, target: np.ndarray, held: np.ndarray, output: np.ndarray,
    made: np.ndarray,
) -> int:  # fmt: skip
    """Waiting requests, first come first served, while the running limit, the token budget
    and the free KV blocks allow: each prompt whole, or (chunked) as much as the budget
    holds; `reserve`: blocks for all the request's tokens, output included, at once.
    Returns the budget left."""
    while st[QUEUED] > 0 and budget > 0 and st[RUNNING] < max_seqs:
        r = queue[st[HEAD]]
        need = target[r] - computed[r]
        n_tok = need if whole else min(need, budget)
        if reserve:
            want = _need(target[r] + output[r] - made[r], bt, shared)
        else:
            want = _need(computed[r] + n_tok, bt, shared)
        if n_tok > budget or want > st[FREE]:
            break
        st[HEAD] = (st[HEAD] + 1) % len(queue)
        st[QUEUED] -= 1
        running[st[RUNNING]] = r
        st[RUNNING] += 1
        _schedule(r, n_tok, want, st, held, sched_r, sched_n)  # (a waiting one holds none)
        budget -= n_tok
    return budget


@njit(cache=True)
def _log(log: np.ndarray, meta: np.ndarray, row: tuple[float, ...]) -> None:
    """Append a row (meta: rows kept, stride, rows seen since the last kept)."""
    meta[2] += 1
    if meta[2] < meta[1]:
        return
    meta[2] = 0
    if meta[0] == len(log):  # full: keep every other row, and from now on every 2x-th
        half = len(log) // 2
        for i in range(half):
            log[i] = log[2 * i + 1]
        meta[0] = half
        meta[1] *= 2
    for j in range(6):
        log[meta[0], j] = row[j]
    meta[0] += 1


@njit(cache=True)
def run_engine(
    arrival: np.ndarray,  # s, ascending (a closed loop: inf until sent; changed in place)
    prompt: np.ndarray,
    output: np.ndarray,
    opened: int,  # requests whose arrival is known (the rest are a closed loop's)
    blocks: int,
    bt: int,
    shared: int,  # KV blocks of a prefix every prompt shares, cached once (prefix caching)
    max_seqs: int,
    max_tokens: int,
    static: bool,
    mixed: bool,
    chunked: bool,
    reserve: bool,
    host_s: float,
    lin_x: np.ndarray,
    lin_y: np.ndarray,
    dec_x: np.ndarray,
    dec_y: np.ndarray,
    att_x: np.ndarray,
    att_y: np.ndarray,
    lin_b: np.ndarray,  # the roofline bound of the same parts, on the same grids
    dec_b: np.ndarray,
    att_b: np.ndarray,
    log_cap: int,
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, float, float]:
    """Returns (status, first token times, finish times, preemptions, the log, steps, the
    iterations' time summed, their bound summed)."""
    n = len(arrival)
    first = np.full(n, np.nan)
    finish = np.full(n, np.nan)
    preempted = np.zeros(n, dtype=np.int64)
    computed = np.full(n, shared * bt, dtype=np.int64)  # the shared prefix: cached
    target = prompt.astype(np.int64).copy()
    made = np.zeros(n, dtype=np.int64)
    held = np.zeros(n, dtype=np.int64)
    queue = np.zeros(n + 1, dtype=np.int64)
    cap_running = min(n, max_seqs) + 1
    running = np.zeros(cap_running, dtype=np.int64)
    sched_r = np.zeros(cap_running, dtype=np.int64)
    sched_n = np.zeros(cap_running, dtype=np.int64)
    st = np.zeros(5, dtype=np.int64)
    st[FREE] = blocks
    log = np.zeros((max(2, log_cap), 6))
    meta = np.array([0, 1, 0], dtype=np.int64)
    now, nxt, steps = 0.0, 0, 0
    busy, bound = 0.0, 0.0
    while nxt < n or st[QUEUED] > 0 or st[RUNNING] > 0:
        while nxt < n and arrival[nxt] <= now:
            _push_back(queue, st, nxt)
            nxt += 1
        if st[QUEUED] == 0 and st[RUNNING] == 0:
            now = arrival[nxt]
            continue
        coming = arrival[nxt] if nxt < n else np.inf
        b = st[RUNNING]
        total = 0.0
        total_b = 0.0
        # steady decode steps: every running request decoding, none finishing before the
        # last step, no arrival admitted before it, blocks for all: run them at once
        k = 0
        if 0 < b <= max_tokens:
            steady = True
            for i in range(b):
                r = running[i]
                if computed[r] < target[r]:
                    steady = False
                    break
            admitting = (not static) and b < max_seqs
            if steady and not (st[QUEUED] > 0 and admitting):
                k = output[running[0]] - made[running[0]]
                for i in range(1, b):
                    r = running[i]
                    k = min(k, output[r] - made[r])
                if k >= 2:
                    lo, hi = 0, k
                    need = 0
                    for i in range(b):
                        r = running[i]
                        need += _need(computed[r] + k, bt, shared) - held[r]
                    if need > st[FREE]:  # the most steps the free blocks allow
                        while hi - lo > 1:
                            mid = (lo + hi) // 2
                            need = 0
                            for i in range(b):
                                r = running[i]
                                need += _need(computed[r] + mid, bt, shared) - held[r]
                            if need <= st[FREE]:
                                lo = mid
                            else:
                                hi = mid
                        k = lo
                if k < 2:
                    k = 0
                else:
                    ctx0 = 0.0
                    for i in range(b):
                        ctx0 += computed[running[i]]
                    each = np.interp(float(b), lin_x, lin_y) + host_s
                    each_b = np.interp(float(b), lin_x, lin_b)
                    total = 0.0
                    total_b = 0.0
                    limit = coming - now
                    for j in range(1, k + 1):
                        total += each + np.interp(ctx0 + j * b, dec_x, dec_y)
                        total_b += each_b + np.interp(ctx0 + j * b, dec_x, dec_b)
                        if admitting and total >= limit:
                            k = j
                            break
        if k >= 2:
            now += total
            busy += total
            bound += total_b
            for i in range(b):
                r = running[i]
                computed[r] += k
                made[r] += k
                want = _need(computed[r], bt, shared) - held[r]
                if want > 0:  # (a reserving engine holds them already)
                    held[r] += want
                    st[FREE] -= want
            used = blocks - st[FREE]
            for i in range(b):
                r = running[i]
                if made[r] >= output[r]:
                    finish[r] = now
                    if opened < n:  # a closed loop: the client sends its next request
                        arrival[opened] = now
                        opened += 1
            _drop_finished(running, st, made, output, held)
            steps += k
            _log(log, meta, (now, float(b), float(b), float(st[QUEUED]), float(used), total))
            continue
        budget = max_tokens
        st[SCHEDULED] = 0
        if static and st[RUNNING] == 0:  # a new batch: all its prompts at once
            while st[QUEUED] > 0 and st[RUNNING] < max_seqs:
                r = queue[st[HEAD]]
                want = _need(prompt[r] + output[r], bt, shared)
                if want > st[FREE]:
                    break
                st[HEAD] = (st[HEAD] + 1) % len(queue)
                st[QUEUED] -= 1
                st[FREE] -= want
                held[r] = want
                running[st[RUNNING]] = r
                st[RUNNING] += 1
            budget = 1 << 62
        if not mixed and not static:  # prefill iterations first, alone: prompts being
            for i in range(st[RUNNING]):  # prefilled in chunks go on, then new prompts
                r = running[i]
                if computed[r] >= target[r] or budget <= 0:
                    continue
                n_tok = min(target[r] - computed[r], budget)
                want = _need(computed[r] + n_tok, bt, shared) - held[r]
                if want > st[FREE]:
                    break
                _schedule(r, n_tok, want, st, held, sched_r, sched_n)
                budget -= n_tok
            if st[QUEUED] > 0:
                budget = _admit(budget, not chunked, reserve, max_seqs, bt, shared, queue, st,
                                running, sched_r, sched_n, computed, target, held, output,
                                made)  # fmt: skip
            if st[SCHEDULED] > 0:
                budget = 0  # no decodes beside them
        i = 0
        while i < st[RUNNING] and budget > 0:
            r = running[i]
            n_tok = min(target[r] - computed[r], budget) if computed[r] < target[r] else 1
            want = _need(computed[r] + n_tok, bt, shared) - held[r]
            victim = -1
            while want > st[FREE] and victim != r and not static:  # preempt the last admitted
                st[RUNNING] -= 1
                victim = running[st[RUNNING]]
                st[FREE] += held[victim]
                held[victim] = 0
                computed[victim] = shared * bt  # the shared prefix stays cached
                target[victim] = prompt[victim] + made[victim]
                preempted[victim] += 1
                _push_front(queue, st, victim)
            if victim == r:
                break
            _schedule(r, n_tok, want, st, held, sched_r, sched_n)
            budget -= n_tok
            i += 1
        if mixed and not static:  # then prompts (chunked: or their first chunk)
            budget = _admit(budget, not chunked, reserve, max_seqs, bt, shared, queue, st,
                            running, sched_r, sched_n, computed, target, held, output,
                            made)  # fmt: skip
        if st[SCHEDULED] == 0:  # nothing fits: wait for the next arrival
            if nxt >= n:
                return NO_ROOM, first, finish, preempted, log[: meta[0]], steps, busy, bound
            now = max(now, arrival[nxt])
            continue
        tokens, ctx, chunk_s, chunk_b = 0, 0.0, 0.0, 0.0
        for j in range(st[SCHEDULED]):
            r, n_tok = sched_r[j], sched_n[j]
            tokens += n_tok
            if computed[r] < target[r]:
                c0, c1 = float(computed[r]), float(computed[r] + n_tok)
                chunk_s += np.interp(c1, att_x, att_y) - np.interp(c0, att_x, att_y)
                chunk_b += np.interp(c1, att_x, att_b) - np.interp(c0, att_x, att_b)
            else:
                ctx += computed[r] + 1
        step = np.interp(float(tokens), lin_x, lin_y) + np.interp(ctx, dec_x, dec_y)
        step += chunk_s + host_s
        now += step
        busy += step
        bound += np.interp(float(tokens), lin_x, lin_b) + np.interp(ctx, dec_x, dec_b) + chunk_b
        finished = False
        for j in range(st[SCHEDULED]):
            r, n_tok = sched_r[j], sched_n[j]
            prefilling = computed[r] < target[r]
            computed[r] += n_tok
            if prefilling and computed[r] < target[r]:
                continue  # more of the prompt to come
            made[r] += 1
            if made[r] == 1:
                first[r] = now
            if made[r] >= output[r]:
                finish[r] = now
                finished = True
                if opened < n:  # a closed loop: the client sends its next request
                    arrival[opened] = now
                    opened += 1
        during, used = st[RUNNING], blocks - st[FREE]
        if finished:
            _drop_finished(running, st, made, output, held)
        steps += 1
        row = (now, float(tokens), float(during), float(st[QUEUED]), float(used), step)
        _log(log, meta, row)
    return OK, first, finish, preempted, log[: meta[0]], steps, busy, bound
