"""``hub demo``: simulated grid phones, cases and notices driven through the hub's real
interfaces (MQTT and REST), so a newcomer sees the console come alive."""

from hub.demo.driver import DemoError, DemoSummary, default_broker, printer, run_demo
from hub.demo.options import DemoOptions, DemoTimings

__all__ = [
    "DemoError",
    "DemoOptions",
    "DemoSummary",
    "DemoTimings",
    "default_broker",
    "printer",
    "run_demo",
]
