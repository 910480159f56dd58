"""What openai-runs shares between processes through Redis (the `[redis]` extra).

`pip install 'openai-runs[redis]'`; `import openai_runs` alone never imports
redis-py.
"""

from ._redis_budget import RedisBudget

__all__ = ["RedisBudget"]
