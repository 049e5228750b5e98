"""Settings are checked before anything runs: a bad value, from the command
line or an ini key, is a one-line usage error that says where it came from."""

import json

import pytest


SHOW = """
from pytest_ovnlb.plugin.options import SETTINGS

def test_show(request):
    s = request.config.stash[SETTINGS]
    print(f"SETTINGS samples={s.samples!r} ready={s.ready_timeout!r} keep={s.keep_on_failure!r}")
"""


def one_error(result) -> str:
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1, errors
    assert errors[0].startswith("ERROR: ")
    return errors[0]


@pytest.mark.parametrize("args, message", [
    (["--ovnlb-samples=lots"], "--ovnlb-samples=lots (command line): not a whole number"),
    (["--ovnlb-samples=2.5"], "--ovnlb-samples=2.5 (command line): not a whole number"),
    (["--ovnlb-samples=500"], "--ovnlb-samples=500 (command line): every distribution "
                              "check already plans more (500 for 2 servers, 5700 for 3 "
                              "servers, 5300 for 5 servers, the fewest with their power): "
                              "the setting raises a check's samples, never lowers them"),
    (["--ovnlb-samples=5900"], "--ovnlb-samples=5900 (command line): with 2 servers the "
                               "exact false-alarm rate at 5900 is 1.041e-06, over alpha=1e-06 "
                               "(docs/statistics.md): take 5899 or 5901"),
    (["--ovnlb-ready-timeout=0"], "--ovnlb-ready-timeout=0 (command line): must be a "
                                  "number of seconds above 0"),
    (["--ovnlb-ready-timeout=-1"], "--ovnlb-ready-timeout=-1 (command line): must be a "
                                   "number of seconds above 0"),
    (["--ovnlb-ready-timeout=nan"], "--ovnlb-ready-timeout=nan (command line): must be a "
                                    "number of seconds above 0"),
    (["--ovnlb-ready-timeout=soon"], "--ovnlb-ready-timeout=soon (command line): not a number"),
    (["-o", "ovnlb_samples=lots"], "ovnlb_samples = lots (-o): not a whole number"),
])
def test_bad_option_is_one_line(pytester, args, message):
    pytester.makepyfile(SHOW)
    assert one_error(pytester.runpytest(*args)) == f"ERROR: {message}"


@pytest.mark.parametrize("ini, message", [
    ("ovnlb_samples = lots", "ovnlb_samples = lots ({ini}): not a whole number"),
    ("ovnlb_samples = 100", "ovnlb_samples = 100 ({ini}): every distribution check already "
                            "plans more"),
    ("ovnlb_ready_timeout = 0", "ovnlb_ready_timeout = 0 ({ini}): must be a number of "
                                "seconds above 0"),
    ("ovnlb_ready_timeout = -5", "ovnlb_ready_timeout = -5 ({ini}): must be a number of "
                                 "seconds above 0"),
])
def test_bad_ini_value_is_one_line_naming_the_file(pytester, ini, message):
    path = pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(SHOW)
    error = one_error(pytester.runpytest())
    assert error.startswith("ERROR: " + message.format(ini=path)), error


def test_command_line_wins_over_a_bad_ini_value(pytester):
    pytester.makeini("[pytest]\novnlb_samples = lots\n")
    pytester.makepyfile(SHOW)
    result = pytester.runpytest("-s", "--ovnlb-samples=6000")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*SETTINGS samples=6000 *"])


def test_good_values_are_converted(pytester):
    pytester.makeini("[pytest]\novnlb_samples = 8100\novnlb_ready_timeout = 2.5\n"
                     "ovnlb_keep_on_failure = true\n")
    pytester.makepyfile(SHOW)
    result = pytester.runpytest("-s")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*SETTINGS samples=8100 ready=2.5 keep=True"])


def test_defaults(pytester):
    pytester.makepyfile(SHOW)
    result = pytester.runpytest("-s")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*SETTINGS samples=None ready=30.0 keep=False"])


def test_bad_ini_bool_is_a_usage_error(pytester):
    pytester.makeini("[pytest]\novnlb_keep_on_failure = perhaps\n")
    pytester.makepyfile(SHOW)
    assert "ovnlb_keep_on_failure" in one_error(pytester.runpytest())


def test_samples_raise_a_check_never_lower_it(pytester):
    """--ovnlb-samples=1000: the check over 2 backends takes 1000, the others
    keep their larger plans (the report says what each took)."""
    pytester.makepyfile("def test_x():\n    pass\n")
    report = pytester.path / "report.json"
    result = pytester.runpytest("--ovnlb-samples=1000", f"--ovnlb-report={report}")
    assert result.ret == 0, result.stdout.str()
    assert json.loads(report.read_text())["suite"]["samples"] == {
        "2": 1000, "3": 5700, "5": 5300}
