"""The << >> binding engine: Jinja expressions in a sandbox, free of Django."""

from bindings.engine import *  # noqa: F401,F403
from bindings.engine import __all__  # noqa: F401
