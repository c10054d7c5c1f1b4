"""A command's result: output in order, usage errors as data with exit status 2."""

from __future__ import annotations

from freezegen.commands.result import CommandResult, UsageError, reports_usage_errors


def test_output_keeps_its_order_across_streams():
    result = CommandResult()
    result.err("note")
    result.out("body\n")
    result.err("summary")
    assert result.output == [("stderr", "note\n"), ("stdout", "body\n"), ("stderr", "summary\n")]
    assert result.text("stderr") == "note\nsummary\n" and result.text("stdout") == "body\n"


def test_usage_errors_come_back_as_results():
    @reports_usage_errors
    def run(options: str) -> CommandResult:
        raise UsageError(options, prefixed=options.startswith("bad"))

    prefixed = run("bad option")
    assert prefixed.exit_code == 2
    assert prefixed.output == [("stderr", "freezegen: error: bad option\n")]
    formatted = run("a.yaml:1:1: FG004 the spec is empty\n")
    assert formatted.output == [("stderr", "a.yaml:1:1: FG004 the spec is empty\n")]
