"""Self-consistency (majority of k full reads) in the reference format: the cheapest useful controller,
so its running time is almost all environment overhead.

    python -m engine eval --dataset Qwen3-8B/aime24 --controller-file examples/controllers/sc_reference_style.py
"""

from collections import Counter


class SelfConsistency(LLMDesignedMethod):  # noqa: F821 - provided by the loader
    NAME = "sc_reference_style"

    def solve(self, question):
        answers = []
        for _ in range(int(self.config.get("k", 64))):
            try:
                answers.append(question.get_new_branch_final_answer())
            except (IndexError, ValueError):
                break
        return Counter(answers).most_common(1)[0][0] if answers else None
