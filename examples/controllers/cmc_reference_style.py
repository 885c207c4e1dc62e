"""The Confidence Momentum Controller written the way AutoTTS reference files are.

An example of a controller file in the reference format: an ``LLMDesignedMethod``
subclass (the name is provided by the loader, as in the reference environment), a
``config`` dict with ``beta``, module-level helpers of its own, SciPy for the Beta
CDF, and ``get_last_trace()``. TTS Lab runs it unmodified:

    python -m engine eval --dataset Qwen3-8B/aime24 \
        --controller-file examples/controllers/cmc_reference_style.py --beta 0.5
"""

from collections import Counter

from scipy.stats import beta as beta_dist


def _majority_answer(answers):
    if not answers:
        return None
    return Counter(answers).most_common(1)[0][0]


def _pool_stats(pool):
    if not pool:
        return None, 0, 0, 0.0
    common = Counter(pool).most_common(2)
    top1 = common[0][1]
    top2 = common[1][1] if len(common) > 1 else 0
    return common[0][0], top1, top2, float(1 - beta_dist.cdf(0.5, top1 + 1, top2 + 1))


def _safe(call, *args):
    try:
        return call(*args)
    except (IndexError, ValueError):
        return None


class ConfidenceMomentumController(LLMDesignedMethod):  # noqa: F821 - provided by the loader
    NAME = "cmc_reference_style"

    def __init__(self, config=None):
        super().__init__(config)
        b = min(1.0, max(0.0, float(self.config.get("beta", 0.5))))
        self.n_init = max(2, round(2 + 6 * b))
        self.max_branch_use = min(64, round(4 + 60 * b))
        self.warm_up = max(2, round(2 + 8 * b))
        self.abandon_patience = max(3, round(3 + 9 * b))
        self.t_ema = max(2, round(2 + 6 * b))
        self.ema_alpha = round(0.70 - 0.40 * b, 4)
        self.conf_thresh = round(0.85 + 0.12 * b, 4)
        self.delta_slack = round(0.04 - 0.03 * b, 4)
        self.burst_aligned = max(1, round(1 + 2 * b))
        self.widen_burst = max(1, round(1 + 3 * b))
        self.trend_thresh = round(0.04 - 0.03 * b, 4)
        self.min_complete = max(2, round(2 + 3 * b))
        self.trace = []

    def get_last_trace(self):
        return list(self.trace)

    def _open(self, question, branches, pool):
        res = _safe(question.probe_new)
        if res is None:
            return False
        answer, index, finished = res
        branches.append({"idx": index, "ans": answer, "fin": finished, "ab": False, "pc": 0, "dis": 0})
        if finished:
            pool.append(answer)
        return True

    def _advance(self, question, br, steps, pool):
        for _ in range(steps):
            if br["fin"]:
                return
            res = _safe(question.probe_more, br["idx"])
            if res is None:
                br["fin"] = True
                if br["ans"] is not None:
                    pool.append(br["ans"])
                return
            br["ans"], br["fin"] = res
            br["pc"] += 1
            if br["fin"]:
                pool.append(br["ans"])
                return

    def solve(self, question):
        self.trace = []
        branches, pool = [], []
        for _ in range(self.n_init):
            if not self._open(question, branches, pool):
                break
        if not branches:
            return None
        ema, history = 0.0, []
        for rnd in range(500):
            warm = rnd >= self.warm_up
            winner, _, _, conf = _pool_stats(pool)
            ema = (1 - self.ema_alpha) * ema + self.ema_alpha * conf
            history = [*history, ema][-self.t_ema:]
            live = [b for b in branches if not b["ab"] and not b["fin"]]
            if warm and winner is not None:
                for b in live:
                    b["dis"] = b["dis"] + 1 if b["ans"] != winner else 0
                bad = sorted((b for b in live if b["dis"] >= self.abandon_patience), key=lambda b: -b["dis"])
                for b in bad[: max(0, len(live) - 2)]:
                    b["ab"] = True
            live = sorted((b for b in branches if not b["ab"] and not b["fin"]), key=lambda b: -b["pc"])
            for b in live:
                aligned = warm and winner is not None and b["ans"] == winner
                self._advance(question, b, self.burst_aligned if aligned else 1, pool)
            winner, _, _, conf = _pool_stats(pool)
            ema = (1 - self.ema_alpha) * ema + self.ema_alpha * conf
            history[-1] = ema
            delta = history[-1] - history[0] if len(history) >= 2 else 0.0
            self.trace.append({"event": "round", "input": {"round": rnd}, "output": {"winner": winner},
                               "state": {"ema": ema, "pool": len(pool)}, "decision": "continue"})
            if warm and len(pool) >= self.min_complete and ema >= self.conf_thresh and delta >= -self.delta_slack:
                return winner
            if all(b["fin"] or b["ab"] for b in branches):
                break
            if (len(branches) < min(self.max_branch_use, 64) and delta <= self.trend_thresh
                    and rnd >= max(1, self.warm_up // 2) and ema < self.conf_thresh):
                for _ in range(self.widen_burst):
                    if len(branches) >= min(self.max_branch_use, 64) or not self._open(question, branches, pool):
                        break
        if pool:
            return _majority_answer(pool)
        return _majority_answer([b["ans"] for b in branches if not b["ab"] and b["ans"] is not None])
