"""Loading v1-model apps (a folder per function with its function.json), as the Functions
host reads the metadata and the Python worker imports the scripts (``loader.load_function``)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from devhost import DevHost, activities
from devhost.host import load_functions
from devhost.python_worker import AppLoadError
from tests.support.http import call

HELLO = "def main(name: str) -> str:\n    return f'Hello {name}!'\n"


def function(app: Path, name: str, bindings: list, code: str = HELLO, script: str = "__init__.py",
             **metadata) -> Path:
    folder = app / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / script).write_text(code)
    (folder / "function.json").write_text(json.dumps({"bindings": bindings, **metadata}))
    return folder


def activity(app: Path, name: str, **metadata) -> Path:
    return function(app, name, [{"type": "activityTrigger", "name": "name", "direction": "in"}],
                    **metadata)


def run_activity(registry, name: str, value):
    """Invoke an activity through the worker, as the engine does; returns its result."""
    function = registry.activities[name]
    outcome = activities.outcome(name, function.invoke_here(activities.inputs(function, json.dumps(value))))
    assert outcome.succeeded, outcome.reason
    return json.loads(outcome.result)


def test_functions_are_named_after_their_folders_and_sorted_by_trigger(tmp_path):
    activity(tmp_path, "Hello")
    function(tmp_path, "Chain", [{"type": "orchestrationTrigger", "name": "context"}],
             "import azure.durable_functions as df\n"
             "def chain(context):\n    return (yield context.call_activity('Hello', 'x'))\n"
             "main = df.Orchestrator.create(chain)\n")
    function(tmp_path, "Start", [{"type": "httpTrigger", "name": "req", "direction": "in"},
                                 {"type": "http", "name": "$return", "direction": "out"},
                                 {"type": "orchestrationClient", "name": "starter", "direction": "in"}],
             "def main(req, starter):\n    return None\n")
    registry = load_functions(tmp_path)
    assert list(registry.orchestrators) == ["Chain"]
    assert registry.activities["Hello"].trigger["name"] == "name"
    [start] = registry.http
    # No route: the function's name; no methods: every method; no named output.
    assert (start.route, start.client_param, start.response_param) == ("Start", "starter", None)
    assert "DELETE" in start.methods


def test_entry_point_and_script_file_are_taken_from_function_json(tmp_path):
    activity(tmp_path, "Hello", script="work.py", scriptFile="work.py", entryPoint="greet")
    (tmp_path / "Hello" / "work.py").write_text("def greet(name):\n    return 'hi ' + name\n")
    assert run_activity(load_functions(tmp_path), "Hello", "you") == "hi you"


def test_a_disabled_function_is_not_loaded(tmp_path):
    activity(tmp_path, "Hello")
    activity(tmp_path, "Old", disabled=True)
    assert list(load_functions(tmp_path).activities) == ["Hello"]


def test_a_function_with_a_binding_the_devhost_lacks_is_listed_as_not_run(tmp_path):
    function(tmp_path, "Backup", [{"type": "activityTrigger", "name": "path"},
                                  {"type": "blob", "name": "out", "direction": "out"}])
    function(tmp_path, "Tick", [{"type": "timerTrigger", "name": "timer"}])
    function(tmp_path, "Starter", [{"type": "activityTrigger", "name": "name"},
                                   {"type": "durableClient", "name": "client", "direction": "in"}])
    activity(tmp_path, "Say.V2")
    registry = load_functions(tmp_path)
    assert registry.activities == {}
    assert registry.unsupported == ["Backup (activityTrigger, blob)", "Say.V2 (not a valid function name)",
                                    "Starter (activityTrigger, durableClient)", "Tick (timerTrigger)"]


@pytest.mark.parametrize("code, message", [
    ("def main(req):\n    return None\n", "declared in function.json but not in Python: {'client'}"),
    ("def main(req, client, starter):\n    return None\n", "declared in Python but not in function.json: {'starter'}"),
    ("def main(req, client, context: int):\n    return None\n",
     'the "context" parameter is expected to be of type azure.functions.Context'),
])
def test_bindings_and_parameters_must_match_when_the_app_loads(tmp_path, code, message):
    """functions.Registry.add_function: every parameter a binding (or ``context``), every
    binding a parameter."""
    function(tmp_path, "Start", [{"type": "httpTrigger", "name": "req"},
                                 {"type": "durableClient", "name": "client", "direction": "in"}], code)
    with pytest.raises(AppLoadError, match=f"cannot load the Start function: .*{re.escape(message)}"):
        load_functions(tmp_path)


def test_a_function_that_asks_for_its_context_gets_one(tmp_path):
    function(tmp_path, "Who", [{"type": "httpTrigger", "name": "req", "route": "who"},
                               {"type": "http", "name": "$return", "direction": "out"}],
             "import azure.functions as func\n"
             "def main(req, context: func.Context) -> func.HttpResponse:\n"
             "    return func.HttpResponse(f'{context.function_name} {context.function_directory} '\n"
             "                             f'{context.invocation_id} {context.trace_context.trace_parent}')\n")
    activity(tmp_path, "Where")
    (tmp_path / "Where" / "__init__.py").write_text(
        "async def main(name, context):\n    return f'{name} in {context.function_name}'\n")
    with DevHost(tmp_path, data_dir=tmp_path / "state", local_settings=False) as host:
        base = host.serve(port=0)
        replies = [call("GET", f"{base}/api/who").text for _ in range(2)]
        assert run_activity(host.registry, "Where", "here") == "here in Where"
    first, second = (r.split(" ") for r in replies)
    assert first[:2] == ["Who", str((tmp_path / "Who").resolve())]
    assert first[2] != second[2]  # one invocation id per call
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-00", first[3])


def test_a_package_script_runs_once(tmp_path):
    activity(tmp_path, "Hello")
    (tmp_path / "Hello" / "__init__.py").write_text(
        "import builtins\nbuiltins.HELLO_LOADS = getattr(builtins, 'HELLO_LOADS', 0) + 1\n"
        "def main(name):\n    return name\n")
    import builtins

    builtins.HELLO_LOADS = 0
    load_functions(tmp_path)
    assert builtins.HELLO_LOADS == 1


def test_an_app_loaded_after_another_gets_its_own_top_level_modules(tmp_path):
    for app in ("one", "two"):
        activity(tmp_path / app, "Hello")
        (tmp_path / app / "helpers.py").write_text(f"WHO = {app!r}\n")
        (tmp_path / app / "Hello" / "__init__.py").write_text(
            "def main(name):\n    import helpers\n    return helpers.WHO\n")
    for app in ("one", "two"):
        assert run_activity(load_functions(tmp_path / app), "Hello", "x") == app


@pytest.mark.parametrize("metadata, message", [
    ("{not json", "not valid JSON"),
    ('{"bindings": "none"}', 'a "bindings" list'),
    ('{"bindings": []}', "exactly one trigger binding, found 0"),
    ('{"bindings": [{"type": "httpTrigger", "name": "a"}, {"type": "timerTrigger", "name": "b"}]}',
     "exactly one trigger binding, found 2"),
    ('{"scriptFile": "../../elsewhere.py", "bindings": [{"type": "activityTrigger", "name": "n"}]}',
     "script file ../../elsewhere.py not found"),
    ('{"entryPoint": "absent", "bindings": [{"type": "activityTrigger", "name": "n"}]}',
     r"function %s\(\) is not present in %s', 'Broken', 'absent'"),
])
def test_a_broken_function_json_is_refused_with_the_reason(tmp_path, metadata, message):
    folder = activity(tmp_path, "Broken")
    (folder / "function.json").write_text(metadata)
    with pytest.raises(AppLoadError, match=message):
        load_functions(tmp_path)


def test_a_folder_that_is_no_function_app_says_what_it_lacks(tmp_path):
    with pytest.raises(AppLoadError, match="no function_app.py .* and no folder with a function.json"):
        load_functions(tmp_path)


def test_functions_import_their_siblings_through_the_app_package(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "__init__.py").write_text("")
    (shared / "words.py").write_text("GREETING = 'Howdy'\n")
    activity(tmp_path, "Hello")
    (tmp_path / "Hello" / "__init__.py").write_text(
        "from ..shared.words import GREETING\n"
        "def main(name):\n    return f'{GREETING} {name} from {__name__}'\n")
    # The worker imports "<folder>/__init__.py" as the package __app__.<folder>, once.
    assert run_activity(load_functions(tmp_path), "Hello", "Ann") == "Howdy Ann from __app__.Hello"


def test_w6_a_return_value_without_a_return_binding_fails_the_invocation(tmp_path):
    """W6: a v1 function without a ``$return`` binding that returns a value fails (the
    worker's ``invocation_request`` raises RuntimeError), so the host answers 500; a named
    output that was never set gets the host's plain 200."""
    function(tmp_path, "Dropped", [{"type": "httpTrigger", "name": "req", "route": "dropped"}],
             "def main(req):\n    return 'ignored'\n")
    function(tmp_path, "Unset", [{"type": "httpTrigger", "name": "req", "route": "unset"},
                                 {"type": "http", "name": "res", "direction": "out"}],
             "def main(req, res):\n    return None\n")
    with DevHost(tmp_path, data_dir=tmp_path / "state", local_settings=False) as host:
        base = host.serve(port=0)
        assert [(r.status, r.text) for r in (call("GET", f"{base}/api/dropped"), call("GET", f"{base}/api/unset"))] \
            == [(500, ""), (200, "")]


def test_a_named_http_output_is_the_response_and_a_second_app_gets_its_own_modules(tmp_path):
    for app, word in (("one", "first"), ("two", "second")):
        function(tmp_path / app, "Answer",
                 [{"type": "httpTrigger", "name": "req", "route": "answer", "methods": ["get"]},
                  {"type": "http", "name": "res", "direction": "out"}],
                 "import azure.functions as func\n"
                 f"def main(req, res):\n    res.set(func.HttpResponse('{word}', status_code=201))\n")
    for app, word in (("one", "first"), ("two", "second")):
        with DevHost(tmp_path / app, data_dir=tmp_path / f"state-{app}", local_settings=False) as host:
            reply = call("GET", f"{host.serve(port=0)}/api/answer")
        assert (reply.status, reply.text) == (201, word)
