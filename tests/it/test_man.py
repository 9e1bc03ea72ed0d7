"""The manual pages render without a single groff/mdoc warning, and dmail-queue(5)'s
example is a file the format allows."""

import os
import re
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAN = os.path.join(REPO, "man")
PAGES = sorted(f for f in os.listdir(MAN) if re.search(r"\.[1-8]$", f))


@pytest.mark.skipif(not shutil.which("man"), reason="man not installed")
@pytest.mark.parametrize("page", PAGES)
def test_page_renders_without_warnings(page):
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MANPAGER="cat", PAGER="cat")
    r = subprocess.run(["man", "--warnings", "-l", os.path.join(MAN, page)], capture_output=True,
                       text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", "%s: warnings:\n%s" % (page, r.stderr)
    assert "NAME" in r.stdout and len(r.stdout.splitlines()) > 20


def test_expected_pages_exist():
    for page in ("dsmtp.8", "sendmail.8", "dmail.conf.5", "dmail-queue.5"):
        assert page in PAGES, page


def test_queue_format_example_parses():
    from test_sendmail import parse_qfile

    text = open(os.path.join(MAN, "dmail-queue.5")).read()
    ex = text[text.index(".Sh EXAMPLES"):]
    block = ex[ex.index(".Bd -literal"):ex.index(".Ed")].split("\n", 1)[1]
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "dmail-queue-example.%d" % os.getpid())
    with open(path, "w") as f:
        f.write(block)
    try:
        q = parse_qfile(path)
    finally:
        os.unlink(path)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", q["id"]), "the example id is not an atom"
    assert len(q["rcpts"]) == 2 and q["text"].endswith("At noon?\n")


@pytest.mark.skipif(not shutil.which("man"), reason="man not installed")
def test_io_threads_default_explained():
    # 16 threads on a 2-core box looks like a mistake unless the page says why
    env = dict(os.environ, MANWIDTH="200", LC_ALL="C.UTF-8", MANPAGER="cat", PAGER="cat")
    r = subprocess.run(["man", "-l", os.path.join(MAN, "dmail.conf.5")], capture_output=True,
                       text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
    text = re.sub(r"\s+", " ", r.stdout.replace("\u2010 ", "").replace("-\n", ""))
    entry = text.split(" io_threads number ", 1)[1].split(" sysadmin address ", 1)[0]
    assert "2-core" in entry and "fsync" in entry and "not on the CPU" in entry, entry
    assert "different mailboxes" in entry, entry
    sample = open(os.path.join(REPO, "conf", "dmail.conf.sample")).read()
    assert re.search(r"#\s*16 even on 2 cores: the threads wait on the disk", sample)
