"""What openai-runs shares between processes through Redis (the `[redis]` extra).

`pip install 'openai-runs[redis]'`; `import openai_runs` alone never imports
redis-py.
"""

from ._redis_budget import RedisBudget
from ._redis_store import RedisRunStore

__all__ = ["RedisBudget", "RedisRunStore"]
