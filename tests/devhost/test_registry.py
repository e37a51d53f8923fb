"""Loading fixture apps: several apps in one process, each with its own modules."""
from __future__ import annotations

import sys

import pytest

from devhost.host import load_functions

from .conftest import APPS


@pytest.fixture
def load():
    """Load fixture apps by name through the worker; their workers are closed after the test."""
    registries = []

    def load_app(name: str):
        registries.append(load_functions(APPS / name))
        return registries[-1]

    yield load_app
    for registry in registries:
        registry.worker.close()


def test_apps_with_same_named_sibling_modules_each_load_their_own(load):
    blueprints = load("blueprints")
    settings = load("settings")
    again = load("blueprints")
    assert sorted(blueprints.orchestrators) == ["greet_all", "process_order"]
    assert sorted(settings.orchestrators) == ["settings_probe"]
    assert sorted(settings.activities) == ["read_setting"]
    assert sorted(again.orchestrators) == ["greet_all", "process_order"]
    assert sys.modules["greetings"].__file__ == str(APPS / "blueprints" / "greetings.py")


def test_each_load_runs_the_apps_own_function_app_module(load):
    chaining = load("chaining")
    fan_out = load("fan_out")
    assert list(chaining.orchestrators) == ["chain"]
    assert sorted(fan_out.orchestrators) == ["fan_out_fan_in", "first_of"]
    assert sys.path[0] == str(APPS / "fan_out")


def test_blueprints_on_a_plain_function_app_are_sorted_by_trigger(load):
    registry = load("blueprints")
    assert sorted(registry.activities) == ["greet_one", "price_order"]  # activity= renames
    routes = {f.route: f for f in registry.http}
    assert set(routes) == {"greetings", "orders/{order_id}", "items/{category}/{item_id:int}",
                           "items/{category}", "teapot/{name?}", "ping", "broken"}
    assert routes["greetings"].client_param == "client"
    assert routes["items/{category}/{item_id:int}"].client_param is None
    assert routes["orders/{order_id}"].methods == ("PUT",)


def test_a_binding_without_its_parameter_is_refused_when_the_app_loads(tmp_path):
    """Before: the app loaded and every request to the function failed with a KeyError."""
    from devhost import DevHost
    from devhost.python_worker import AppLoadError

    with pytest.raises(AppLoadError, match="cannot load the start function: .* {'starter'}"):
        DevHost(APPS / "missing_param", data_dir=tmp_path, local_settings=False)


def test_a_v2_function_that_asks_for_its_context_gets_one(tmp_path):
    """As the worker does for any function with an unbound ``context`` parameter."""
    from devhost import DevHost

    from tests.support.http import call

    (tmp_path / "function_app.py").write_text(
        "import azure.functions as func\n"
        "app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)\n"
        "@app.route(route='who')\n"
        "def who(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:\n"
        "    return func.HttpResponse(context.function_name + ' ' + context.function_directory)\n")
    with DevHost(tmp_path, data_dir=tmp_path / "state", local_settings=False) as host:
        reply = call("GET", f"{host.serve(port=0)}/api/who")
    assert (reply.status, reply.text) == (200, f"who {tmp_path.resolve()}")


def test_an_app_loaded_again_after_another_shadowed_one_of_its_packages_has_no_mixed_classes(tmp_path):
    """A test session loaded the review app, then a Microsoft sample with its own
    ``shared_code``, then the review app again: the sample's load dropped the app's
    ``shared_code`` but kept its routes, which still caught the old ``ValidationError``
    while the policy module imported afresh raised the new one (a 400 became a 500)."""
    from devhost.registry import isolate_app_modules

    first, other = tmp_path / "first", tmp_path / "other"
    (first / "lib").mkdir(parents=True)
    (first / "lib" / "__init__.py").write_text("")
    (first / "lib" / "errors.py").write_text("class Refused(Exception):\n    pass\n")
    # imported only when used, as the app's policy module is
    (first / "lib" / "rules.py").write_text("from .errors import Refused\n\ndef check():\n    raise Refused('no')\n")
    (first / "handlers.py").write_text(
        "from lib.errors import Refused\n\n"
        "def handle():\n    from lib import rules\n    try:\n        rules.check()\n"
        "    except Refused:\n        return 'refused'\n")
    (other / "lib").mkdir(parents=True)
    (other / "lib" / "__init__.py").write_text("")
    try:
        isolate_app_modules(first)
        import handlers
        assert handlers.handle() == "refused"
        isolate_app_modules(other)
        import lib  # the other app's
        assert sys.modules["lib"].__file__ == str(other / "lib" / "__init__.py")
        isolate_app_modules(first)
        import handlers as again
        assert again.handle() == "refused"
    finally:
        for name in [n for n in sys.modules if n in ("handlers", "lib") or n.startswith("lib.")]:
            del sys.modules[name]
        for folder in (first, other):
            if str(folder) in sys.path:
                sys.path.remove(str(folder))
