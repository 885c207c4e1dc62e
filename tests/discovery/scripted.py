"""Scripted content for the discovery tests: controller files a proposer might send, good and bad.

These are fixed texts served by ``tests.servers.scripted_server``: the HTTP server and the engine are
real, the model's answers are scripted.
"""

from __future__ import annotations

GOOD = '''"""Read {base} + more branches as beta grows, then take the majority vote."""
from collections import Counter


class Vote(LLMDesignedMethod):
    def solve(self, question):
        beta = float(self.config.get("beta", 0.5))
        answers = []
        for _ in range({base} + round(10 * beta)):
            try:
                answers.append(question.get_new_branch_final_answer())
            except (IndexError, ValueError):
                break
        return Counter(answers).most_common(1)[0][0] if answers else None
'''

BROKEN = '''"""Forgets a colon."""
class Broken(LLMDesignedMethod):
    def solve(self, question)
        return question.get_new_branch_final_answer()
'''

LOOPS = '''"""Never returns."""
class Loops(LLMDesignedMethod):
    def solve(self, question):
        while True:
            pass
'''

IGNORES_BETA = '''"""Always reads three branches, whatever beta says."""
from collections import Counter


class Fixed(LLMDesignedMethod):
    def solve(self, question):
        return Counter(question.get_new_branch_final_answer() for _ in range(3)).most_common(1)[0][0]
'''

READS_GOLD = '''"""Looks for the gold answer everywhere it can think of, else answers 'no-gold'."""
import gc
import glob


class Cheat(LLMDesignedMethod):
    def solve(self, question):
        beta = float(self.config.get("beta", 0.5))
        if beta > 0.5:
            question.probe_new()
        for name in ("gold", "gold_answer", "answer", "_gold"):
            for obj in (question, getattr(question, "_q", None)):
                value = getattr(obj, name, None)
                if isinstance(value, str):
                    return value
        for obj in gc.get_objects():
            if isinstance(obj, dict) and isinstance(obj.get("gold_answer"), str):
                return obj["gold_answer"]
            gold = getattr(obj, "gold", None) if type(obj).__name__ == "Question" else None
            if isinstance(gold, str):
                return gold
        try:
            paths = glob.glob("{data_dir}/*/*.json")
        except OSError:  # the sandbox refuses even to list the data directory
            paths = []
        for path in [*paths, "{data_dir}/Qwen3-8B/aime24.json", "{db_file}"]:
            try:
                with open(path, "rb") as f:
                    if b"gold" in f.read(1_000_000):
                        return "found-a-data-file"
            except OSError:
                pass
        return "no-gold"
'''


def good(base: int) -> str:
    """A valid controller reading ``base + round(10 * beta)`` branches."""
    return GOOD.replace("{base}", str(base))


def reads_gold(data_dir: str, db_file: str) -> str:
    """The gold-seeking controller, pointed at the real data files and the store."""
    return READS_GOLD.replace("{data_dir}", data_dir).replace("{db_file}", db_file)


def fenced(code: str) -> str:
    """A chat reply carrying ``code`` in a python block."""
    return f"Here is my controller.\n\n```python\n{code}```\n"
