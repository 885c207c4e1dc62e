"""Compiled batch versions of the built-in controllers (numba).

Each kernel runs every (shuffle, question) episode of one evaluation over the integer
arrays of ``engine.dataset.DatasetArrays``. They are line-for-line twins of the Python
controllers in this package and of the episode rules in ``engine.replay`` (full
read = whole branch; advance = next probe or the finish remainder); the test suite
checks that both give identical answers and token counts on the real data.

Answers are integer codes; a vote's tie goes to the answer first added, as with
``collections.Counter``. ``past_pool`` flags episodes that tried to open more
branches than exist, which strict mode must report, so the caller falls back to the
Python path for the precise error.
"""

from __future__ import annotations

import itertools
import threading
from functools import lru_cache

import numba
import numpy as np

from engine.controllers import cmc as cmc_module
from engine.controllers.base import beta_confidence
from engine.dataset import Branch, Dataset, Question
from engine.replay import COMPAT, shuffled_order
from engine.spec import Outcomes

jit = numba.njit(cache=True, nogil=True)
# Episode batches spread their shuffles over all cores (scratch arrays are per shuffle).
parallel_jit = numba.njit(cache=True, nogil=True, parallel=True)
# Numba's fallback threading layer (workqueue) aborts the process on concurrent parallel launches,
# and a Streamlit server runs sessions in threads: parallel kernels run one at a time.
PARALLEL_LOCK = threading.Lock()

# Pool state slots (an int64 array, so kernels can pass it around cheaply).
P_N, P_WIN, P_TOP1, P_TOP2, P_SEEN, P_TOUCHED = range(6)


@lru_cache(maxsize=8)
def confidence_table(size: int) -> np.ndarray:
    """``beta_confidence(top1, top2)`` for all counts below ``size``."""
    return np.array([[beta_confidence(t1, t2) for t2 in range(size)] for t1 in range(size)])


@lru_cache(maxsize=64)
def shuffle_orders(shuffles: int, n_branches: tuple[int, ...]) -> np.ndarray:
    """orders[s, q, i] = original index of the branch at position i under seed s."""
    width = max(n_branches, default=0)
    orders = np.zeros((shuffles, len(n_branches), width), dtype=np.int32)
    for s in range(shuffles):
        for q, n in enumerate(n_branches):
            orders[s, q, :n] = shuffled_order(s, n)
    return orders


# -- vote pool: counts with first-seen order --------------------------------------
@jit
def pool_reset(pool, counts, touched):
    for i in range(pool[P_TOUCHED]):
        counts[touched[i]] = 0
    pool[:] = 0
    pool[P_WIN] = -1


@jit
def pool_add(pool, counts, first, touched, a):
    """Add answer ``a``; keep winner, top1 and runner-up count as Counter.most_common(2)."""
    if counts[a] == 0:
        first[a] = pool[P_SEEN]
        pool[P_SEEN] += 1
        touched[pool[P_TOUCHED]] = a
        pool[P_TOUCHED] += 1
    counts[a] += 1
    pool[P_N] += 1
    w = pool[P_WIN]
    if w == a:
        pool[P_TOP1] = counts[a]
    elif w < 0 or counts[a] > counts[w] or (counts[a] == counts[w] and first[a] < first[w]):
        pool[P_TOP2] = counts[w] if w >= 0 else 0
        pool[P_WIN] = a
        pool[P_TOP1] = counts[a]
    elif counts[a] > pool[P_TOP2]:
        pool[P_TOP2] = counts[a]


@jit
def majority_of(codes, n, pool, counts, first, touched):
    """Majority of codes[:n] (a fresh vote, reusing the scratch pool)."""
    pool_reset(pool, counts, touched)
    for i in range(n):
        pool_add(pool, counts, first, touched, codes[i])
    return pool[P_WIN]


@jit
def _vote_scratch(n_vocab, width):
    """counts, first-seen order, touched codes and pool state for one running vote."""
    pool = np.zeros(6, np.int64)
    pool[P_WIN] = -1
    return np.zeros(n_vocab, np.int64), np.zeros(n_vocab, np.int64), np.zeros(width + 1, np.int64), pool


@jit
def _outputs(n_s, n_q):
    """Per-episode answer codes, total and sequential tokens, action counts, past-pool flags."""
    shape = (n_s, n_q)
    return (np.full(shape, -1, np.int32), np.zeros(shape, np.int64), np.zeros(shape, np.int64),
            np.zeros(shape, np.int64), np.zeros(shape, np.bool_))


# -- episode environment ------------------------------------------------------------
@jit
def advance(q, b, i, probes, n_probes, tokens, final, pf, k, c, spent, ep):
    """One interval of branch slot ``i`` (original branch ``b``); ep = [total, actions]."""
    ep[1] += 1
    kk = k[i]
    if kk < n_probes[q, b]:
        k[i] = kk + 1
        c[i] += pf
        spent[i] += pf
        ep[0] += pf
        return probes[q, b, kk], False
    rem = tokens[q, b] - c[i]
    if rem < 0:
        rem = 0
    spent[i] += rem
    ep[0] += rem
    return final[q, b], True


@jit
def _reset_branches(n, k, c, spent):
    for i in range(n):
        k[i] = 0
        c[i] = 0
        spent[i] = 0


# -- full-read baselines: SC, ASC, ESC -----------------------------------------------
@jit
def read_baselines(kind, budget, param, threshold, conf, final, tokens, n_branches, orders, n_vocab):
    """kind 0 = SC@budget, 1 = ASC(max_samples=budget, threshold), 2 = ESC(budget, window=param)."""
    n_s, n_q = orders.shape[0], orders.shape[1]
    ans, total, seq, nact, past = _outputs(n_s, n_q)
    counts, first, touched, pool = _vote_scratch(n_vocab, orders.shape[2])
    for s in range(n_s):
        for q in range(n_q):
            pool_reset(pool, counts, touched)
            n = n_branches[q]
            opened = 0
            result = -2  # -2: not decided early
            if kind == 2:
                windows = budget // param
                for _w in range(windows):
                    got, w0, same = 0, -1, True
                    for _r in range(param):
                        if opened >= n:
                            past[s, q] = True
                            break
                        b = orders[s, q, opened]
                        opened += 1
                        a = final[q, b]
                        total[s, q] += tokens[q, b]
                        seq[s, q] = max(seq[s, q], tokens[q, b])
                        pool_add(pool, counts, first, touched, a)
                        if got == 0:
                            w0 = a
                        elif a != w0:
                            same = False
                        got += 1
                    if got > 0 and same:
                        result = w0
                        break
            else:
                for _i in range(budget):
                    if opened >= n:
                        past[s, q] = True
                        break
                    b = orders[s, q, opened]
                    opened += 1
                    total[s, q] += tokens[q, b]
                    seq[s, q] = max(seq[s, q], tokens[q, b])
                    pool_add(pool, counts, first, touched, final[q, b])
                    if kind == 1 and pool[P_N] >= 2 and conf[pool[P_TOP1], pool[P_TOP2]] > threshold:
                        result = pool[P_WIN]
                        break
            ans[s, q] = pool[P_WIN] if result == -2 else result
            nact[s, q] = opened
    return ans, total, seq, nact, past


# -- Parallel-Probe --------------------------------------------------------------------
@jit
def _pp_active(m, pruned, last, act):
    """Latest answers of the chains not pruned, in opening order, into ``act``; their count."""
    na = 0
    for j in range(m):
        if not pruned[j]:
            act[na] = last[j]
            na += 1
    return na


@jit
def _pp_prune(m, pruned, fin, last, off, winner, patience):
    """Count off-track steps of unfinished chains, prune the persistent dissenters; True if any."""
    for j in range(m):
        if not pruned[j] and not fin[j]:
            off[j] = off[j] + 1 if last[j] != winner else 0
    any_pruned = False
    for j in range(m):
        if not pruned[j] and not fin[j] and off[j] >= patience:
            pruned[j] = True
            any_pruned = True
    return any_pruned


@jit
def _pp_steps(s, q, m, T, patience, warm_up, burst, max_steps, orders, probes, n_probes, tokens, final, pf,
              k, c, spent, ep, last, fin, pruned, off, act, pool, counts, first, touched):
    """The step loop of one episode with ``m`` chains open; returns the answer code."""
    stable, prev = 0, -1
    for step in range(max_steps):
        for j in range(m):
            if not pruned[j] and not fin[j]:
                for _r in range(burst):
                    last[j], fin[j] = advance(q, orders[s, q, j], j, probes, n_probes, tokens, final, pf,
                                              k, c, spent, ep)
                    if fin[j]:
                        break
        na = _pp_active(m, pruned, last, act)
        if na == 0:
            break
        winner = majority_of(act, na, pool, counts, first, touched)
        if step >= warm_up and na > 1 and _pp_prune(m, pruned, fin, last, off, winner, patience):
            na = _pp_active(m, pruned, last, act)
            if na == 0:
                break
            winner = majority_of(act, na, pool, counts, first, touched)
        stable = stable + 1 if winner == prev else 0
        prev = winner
        if stable >= T:
            break
        all_done = True
        for j in range(m):
            if not fin[j] and not pruned[j]:
                all_done = False
        if all_done:
            break
    return prev


@parallel_jit
def parallel_probe(num_chains, T, patience, warm_up, burst, max_steps,
                   probes, n_probes, tokens, final, probe_freq, n_branches, orders, n_vocab):
    n_s, n_q, width = orders.shape
    ans, total, seq, nact, past = _outputs(n_s, n_q)
    for s in numba.prange(n_s):
        k, c, spent = np.zeros(width, np.int64), np.zeros(width, np.int64), np.zeros(width, np.int64)
        last, off, act = np.zeros(width, np.int64), np.zeros(width, np.int64), np.zeros(width, np.int64)
        fin, pruned = np.zeros(width, np.bool_), np.zeros(width, np.bool_)
        counts, first, touched, pool = _vote_scratch(n_vocab, width)
        ep = np.zeros(2, np.int64)
        for q in range(n_q):
            pf = probe_freq[q]
            _reset_branches(width, k, c, spent)
            ep[:] = 0
            m = 0
            for _i in range(num_chains):
                if m >= n_branches[q]:
                    past[s, q] = True
                    break
                last[m], fin[m] = advance(q, orders[s, q, m], m, probes, n_probes, tokens, final, pf, k, c,
                                          spent, ep)
                pruned[m] = False
                off[m] = 0
                m += 1
            if m > 0:
                ans[s, q] = _pp_steps(s, q, m, T, patience, warm_up, burst, max_steps, orders, probes, n_probes,
                                      tokens, final, pf, k, c, spent, ep, last, fin, pruned, off, act, pool,
                                      counts, first, touched)
            total[s, q] = ep[0]
            nact[s, q] = ep[1]
            seq[s, q] = spent[:max(m, 1)].max()
    return ans, total, seq, nact, past


# -- CMC -------------------------------------------------------------------------------
@jit
def _cmc_open(s, q, orders, n, br, probes, n_probes, tokens, final, pf, k, c, spent, ep,
              pool, counts, first, touched):
    """Open the next branch (slot = number open); False when the pool of branches is exhausted.
    br[:, slot] = latest, finished, abandoned, probe_count, disagree."""
    m = ep[2]
    if m >= n:
        return False
    a, f = advance(q, orders[s, q, m], m, probes, n_probes, tokens, final, pf, k, c, spent, ep)
    br[0, m], br[1, m], br[2, m], br[3, m], br[4, m] = a, f, 0, 0, 0
    ep[2] = m + 1
    if f:
        pool_add(pool, counts, first, touched, a)
    return True


@jit
def _cmc_deepen(s, q, orders, warm, winner, burst, br, order_buf,
                probes, n_probes, tokens, final, pf, k, c, spent, ep, pool, counts, first, touched):
    """Advance live branches, most-probed first (stable); aligned ones in bursts."""
    m = ep[2]
    n_live = 0
    for j in range(m):
        if br[2, j] == 0 and br[1, j] == 0:
            pos = n_live  # insertion sort, descending probe_count, stable
            while pos > 0 and br[3, order_buf[pos - 1]] < br[3, j]:
                order_buf[pos] = order_buf[pos - 1]
                pos -= 1
            order_buf[pos] = j
            n_live += 1
    for t in range(n_live):
        j = order_buf[t]
        steps = burst if (warm and winner >= 0 and br[0, j] == winner) else 1
        for _r in range(steps):
            if br[1, j] != 0:
                break
            a, f = advance(q, orders[s, q, j], j, probes, n_probes, tokens, final, pf, k, c, spent, ep)
            br[0, j], br[1, j] = a, f
            br[3, j] += 1
            if f:
                pool_add(pool, counts, first, touched, a)
                break


@jit
def _cmc_abandon(winner, patience, br, m):
    """Disagreement counts, then abandon the worst dissenters, keeping at least two live."""
    n_live = 0
    for j in range(m):
        if br[2, j] == 0 and br[1, j] == 0:
            br[4, j] = br[4, j] + 1 if br[0, j] != winner else 0
            n_live += 1
    for _t in range(max(0, n_live - 2)):
        pick = -1
        for j in range(m):
            if br[2, j] == 0 and br[1, j] == 0 and br[4, j] >= patience:
                if pick < 0 or br[4, j] > br[4, pick]:
                    pick = j
        if pick < 0:
            break
        br[2, pick] = 1


@jit
def _cmc_rounds(s, q, kn_int, kn_float, cap, conf, max_rounds, orders, n, br, order_buf, hist,
                probes, n_probes, tokens, final, pf, k, c, spent, ep, pool, counts, first, touched):
    """The round loop of one episode; True if widening tried to open past the pool. The answer is
    then ``_cmc_final_vote``: the pool's winner, whether the stop gate fired or the rounds ran out."""
    _n_init, _max_use, warm_up, patience, t_ema, burst, widen, min_complete = kn_int
    alpha, thresh, slack, trend = kn_float
    ema = 0.0
    h_len = 0
    overran = False
    for rnd in range(max_rounds):
        warm = rnd >= warm_up
        winner = pool[P_WIN]
        ema = (1 - alpha) * ema + alpha * conf[pool[P_TOP1], pool[P_TOP2]]
        if h_len < t_ema:
            h_len += 1
        else:
            hist[: t_ema - 1] = hist[1:t_ema].copy()
        hist[h_len - 1] = ema
        if warm and winner >= 0:
            _cmc_abandon(winner, patience, br, ep[2])
        _cmc_deepen(s, q, orders, warm, winner, burst, br, order_buf, probes, n_probes,
                    tokens, final, pf, k, c, spent, ep, pool, counts, first, touched)
        ema = (1 - alpha) * ema + alpha * conf[pool[P_TOP1], pool[P_TOP2]]
        hist[h_len - 1] = ema
        delta = hist[h_len - 1] - hist[0] if h_len >= 2 else 0.0
        if warm and pool[P_N] >= min_complete and ema >= thresh and delta >= -slack:
            return overran
        all_done = True
        for j in range(ep[2]):
            if br[2, j] == 0 and br[1, j] == 0:
                all_done = False
        if all_done:
            break
        if delta <= trend and rnd >= max(1, warm_up // 2) and ema < thresh:
            for _w in range(widen):
                if ep[2] >= cap:
                    break
                if not _cmc_open(s, q, orders, n, br, probes, n_probes, tokens, final,
                                 pf, k, c, spent, ep, pool, counts, first, touched):
                    overran = True
                    break
    return overran


@parallel_jit
def cmc(kn_int, kn_float, conf, probes, n_probes, tokens, final, probe_freq, n_branches, orders,
        n_vocab, max_rounds, max_branches):
    """kn_int = n_init, max_branch_use, warm_up, abandon_patience, T_ema, burst_aligned,
    widen_burst, min_complete; kn_float = ema_alpha, conf_thresh, delta_slack, trend_thresh."""
    n_init, max_use, t_ema = kn_int[0], kn_int[1], kn_int[4]
    cap = min(max_use, max_branches)
    n_s, n_q, width = orders.shape
    ans, total, seq, nact, past = _outputs(n_s, n_q)
    for s in numba.prange(n_s):
        k, c, spent = np.zeros(width, np.int64), np.zeros(width, np.int64), np.zeros(width, np.int64)
        br = np.zeros((5, width), np.int64)
        order_buf = np.zeros(width, np.int64)
        hist = np.zeros(max(t_ema, 1), np.float64)
        counts, first, touched, pool = _vote_scratch(n_vocab, width)
        ep = np.zeros(3, np.int64)  # total tokens, actions, branches open
        for q in range(n_q):
            n = n_branches[q]
            pf = probe_freq[q]
            _reset_branches(width, k, c, spent)
            pool_reset(pool, counts, touched)
            ep[:] = 0
            for _i in range(n_init):
                if not _cmc_open(s, q, orders, n, br, probes, n_probes, tokens, final, pf, k, c,
                                 spent, ep, pool, counts, first, touched):
                    past[s, q] = True
                    break
            if ep[2] > 0:
                overran = _cmc_rounds(s, q, kn_int, kn_float, cap, conf, max_rounds, orders, n, br, order_buf,
                                      hist, probes, n_probes, tokens, final, pf, k, c, spent, ep, pool, counts,
                                      first, touched)
                past[s, q] = past[s, q] or overran
                ans[s, q] = _cmc_final_vote(br, ep[2], order_buf, pool, counts, first, touched)
            total[s, q] = ep[0]
            nact[s, q] = ep[1]
            seq[s, q] = spent[: max(ep[2], 1)].max()
    return ans, total, seq, nact, past


@jit
def _cmc_final_vote(br, m, order_buf, pool, counts, first, touched):
    """After the rounds: the pool's winner, or if nothing completed, the vote of the latest answers held."""
    if pool[P_WIN] >= 0:
        return pool[P_WIN]
    nl = 0
    for j in range(m):
        if br[2, j] == 0:
            order_buf[nl] = br[0, j]
            nl += 1
    return majority_of(order_buf, nl, pool, counts, first, touched)


# -- dispatch ----------------------------------------------------------------------------
CMC_INT_KNOBS = ("n_init", "max_branch_use", "warm_up", "abandon_patience", "T_ema", "burst_aligned",
                 "widen_burst", "min_complete")
CMC_FLOAT_KNOBS = ("ema_alpha", "conf_thresh", "delta_slack", "trend_thresh")
READ_KINDS = {"sc": 0, "asc": 1, "esc": 2}


def run(dataset: Dataset, name: str, knobs: dict, shuffles: int, mode: str = COMPAT):
    """Outcomes of built-in ``name`` on every episode, or None when only Python can say
    (an unknown controller, or strict mode with an episode that opened past the pool)."""
    arr = dataset.arrays
    orders = shuffle_orders(shuffles, tuple(int(n) for n in arr.n_branches))
    n_vocab = max((len(v) for v in arr.vocab), default=0) + 1
    conf = confidence_table(orders.shape[2] + 2)
    if name in READ_KINDS:
        budget = int(knobs["max_samples"] if name != "sc" else knobs["k"])
        raw = read_baselines(READ_KINDS[name], budget, int(knobs.get("window_size", 1)),
                             float(knobs.get("threshold", 0.0)), conf, arr.final, arr.tokens,
                             arr.n_branches, orders, n_vocab)
    elif name == "parallel_probe":
        with PARALLEL_LOCK:
            raw = parallel_probe(*(int(knobs[x]) for x in ("num_chains", "T", "prune_patience", "warm_up",
                                                           "probe_burst", "max_steps")),
                                 arr.probes, arr.n_probes, arr.tokens, arr.final, arr.probe_freq,
                                 arr.n_branches, orders, n_vocab)
    elif name == "cmc":
        with PARALLEL_LOCK:
            raw = cmc(np.array([int(knobs[x]) for x in CMC_INT_KNOBS], np.int64),
                      np.array([float(knobs[x]) for x in CMC_FLOAT_KNOBS], np.float64), conf,
                      arr.probes, arr.n_probes, arr.tokens, arr.final, arr.probe_freq, arr.n_branches,
                      orders, n_vocab, cmc_module.MAX_ROUNDS, cmc_module.MAX_BRANCHES)
    else:
        return None
    codes, total, seq, nact, past = raw
    if mode != COMPAT and past.any():
        return None
    answers = [[arr.vocab[q][a] if a >= 0 else None for q, a in enumerate(row)] for row in codes.tolist()]
    return Outcomes(answers, total, seq, nact)


# A one-question dataset with the same array types as real ones: running a kernel on it loads
# (or compiles) the machine code without replaying anything worth timing.
_WARM_UP_DATA = Dataset("warm-up", (Question("", "a", 1, (Branch(("a", "b"), 3, "a"), Branch(("b",), 2, "b"))),))
_WARMED: set[str] = set()


def warm_up(name: str, knobs: dict) -> bool:
    """Load built-in ``name``'s compiled kernel now (True) unless it is loaded already or has none.

    Evaluation times exclude this start-up: numba loads cached machine code on a kernel's first call.
    """
    if name in _WARMED or (name not in READ_KINDS and name not in ("parallel_probe", "cmc")):
        return False
    run(_WARM_UP_DATA, name, knobs, 1)
    _WARMED.add(name)
    return True


# -- grading action logs (the sandbox's parent) -------------------------------------------
@jit
def replay_log(q, order, actions, probes, n_probes, tokens, final, pf, n, strict, k, c, spent, done):
    """Costs of one episode's action log under ``engine.replay``'s rules: (total, sequential, ok).

    ``ok`` is False at the first action those rules refuse; the caller then asks
    ``engine.replay.replay_actions`` for the precise error.
    """
    _reset_branches(n, k, c, spent)
    done[:n] = False
    ep = np.zeros(2, np.int64)
    opened = 0
    for a in actions:
        if a < 0:  # OPEN (-1) or READ (-2)
            if opened >= n or a < -2:
                return 0, 0, False
            i = opened
            opened += 1
            b = order[i]
            if a == -2:
                k[i] = n_probes[q, b]
                c[i] = tokens[q, b]
                spent[i] = tokens[q, b]
                ep[0] += tokens[q, b]
                done[i] = True
                continue
        else:
            i = a
            if i >= n or i > opened or (strict and (i >= opened or done[i])):
                return 0, 0, False
            b = order[i]
        _, f = advance(q, b, i, probes, n_probes, tokens, final, pf, k, c, spent, ep)
        if f:
            done[i] = True
    return ep[0], spent[:max(n, 1)].max(), True


@jit
def replay_logs(qs, seeds, flat, offsets, orders, probes, n_probes, tokens, final, probe_freq, n_branches,
                strict, k, c, spent, done):
    """``replay_log`` for many episodes: episode i's actions are flat[offsets[i]:offsets[i+1]]."""
    m = len(qs)
    total = np.zeros(m, np.int64)
    seq = np.zeros(m, np.int64)
    ok = np.zeros(m, np.bool_)
    for i in range(m):
        q = qs[i]
        total[i], seq[i], ok[i] = replay_log(q, orders[seeds[i], q], flat[offsets[i]:offsets[i + 1]], probes,
                                             n_probes, tokens, final, probe_freq[q], n_branches[q], strict,
                                             k, c, spent, done)
    return total, seq, ok


class LogGrader:
    """Recomputes episode costs from action logs with the compiled rules (scratch reused)."""

    def __init__(self, dataset: Dataset, shuffles: int, mode: str = COMPAT):
        self.arr = dataset.arrays
        self.orders = shuffle_orders(shuffles, tuple(int(n) for n in self.arr.n_branches))
        width = max(int(self.arr.n_branches.max(initial=1)), 1)
        self.scratch = (np.zeros(width, np.int64), np.zeros(width, np.int64), np.zeros(width, np.int64),
                        np.zeros(width, np.bool_))
        self.strict = mode != COMPAT

    def costs_many(self, episodes: list[tuple[int, int, list[int]]]) -> list[tuple[int, int] | None]:
        """(total, sequential) tokens of each (question, seed, actions) episode, in one compiled call;
        None for a log that breaks the episode rules."""
        arr = self.arr
        lengths = [len(a) for _, _, a in episodes]
        offsets = np.zeros(len(episodes) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.fromiter(itertools.chain.from_iterable(a for _, _, a in episodes), np.int64, int(offsets[-1]))
        qs = np.array([q for q, _, _ in episodes], np.int64)
        seeds = np.array([s for _, s, _ in episodes], np.int64)
        total, seq, ok = replay_logs(qs, seeds, flat, offsets, self.orders, arr.probes, arr.n_probes, arr.tokens,
                                     arr.final, arr.probe_freq, arr.n_branches, self.strict, *self.scratch)
        return [(int(t), int(s)) if good else None for t, s, good in zip(total, seq, ok, strict=True)]
