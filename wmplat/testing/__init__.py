"""What plugin authors import in their tests: tiny real zoos, the view a method is given, and
the plugin contract as checks (docs/plugins.md, "Testing a plugin").

    from wmplat.testing import check_method, tiny_zoo

    def test_my_method_keeps_the_contract():
        check_method(MyMethod, tiny_zoo(runs=4), options={"steps": 10})
"""

from .contract import check_dataset, check_method, check_metric
from .public_api import check_public_api
from .zoo import DEFAULT_SPEC, SpecTask, method_view, metric_context, tiny_zoo

__all__ = ["DEFAULT_SPEC", "SpecTask", "check_dataset", "check_method", "check_metric",
           "check_public_api", "method_view", "metric_context", "tiny_zoo"]
