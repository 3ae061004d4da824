"""tether's HTTP server: the Agent Server's run routes (so `langgraph-sdk` works unchanged),
tether's cancel fields, API keys with tenants, and a web page to watch and stop runs.

```python
from tether.server import serve
serve({"agent": graph}, db="runs.db")        # or: tether serve module:graph
```
"""

from tether.server.app import create_app, serve
from tether.server.auth import ApiKeys, load_api_keys
from tether.server.launcher import LocalLauncher, RunLauncher, RunOrder
from tether.server.limits import ServerLimits

__all__ = ["ApiKeys", "LocalLauncher", "RunLauncher", "RunOrder", "ServerLimits", "create_app",
           "load_api_keys", "serve"]
