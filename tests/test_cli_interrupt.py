"""A command interrupted by SIGTERM or Ctrl-C outside a handler of its own ends with a
sentence saying what is kept and exit code 128 + the signal (issue 18 item 3), not
click's bare `Aborted!`."""
import os
import signal
import time

import click
import pytest

from slim.ingest.clitools import LazyGroup


@click.group(cls=LazyGroup)
def group():
    """A test group."""


@group.command("work")
@click.option("--sig", type=int, required=True, help="signal to send to itself")
def work(sig):
    """Sends itself a signal and waits."""
    os.kill(os.getpid(), sig)
    time.sleep(5)
    raise AssertionError("the signal did not interrupt")


@pytest.fixture
def interactive_sigint():
    """Python's own Ctrl-C handler for the test: a shell starts background jobs (`make
    test &`) with SIGINT ignored, and Python then leaves it ignored."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.usefixtures("interactive_sigint")
def test_interrupted_command_says_what_is_kept_and_exits_128_plus_signal(sig, capsys):
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as e:
        group.main(["work", "--sig", str(int(sig))], prog_name="g")
    assert e.value.code == 128 + sig
    err = " ".join(capsys.readouterr().err.split())
    assert f"interrupted by {sig.name}" in err and "run the same command to resume" in err
    assert "Aborted" not in err
    assert signal.getsignal(signal.SIGTERM) == before            # the handler is put back
