"""ui.jobs.plain / ui.playground.shorten: text from a link or a file, made safe to show."""

from ui import jobs as job_widgets
from ui import playground


def test_plain_escapes_everything_markdown_would_act_on():
    crafted = "`](https://evil.example)\n## Owned ![x](https://e.example/i.png) <b>:red[x]</b> $x$"
    text = job_widgets.plain(crafted, limit=200)
    assert "\n" not in text
    for c in "`[]()#!<>:$":  # every one escaped: no code span, link, image, heading, HTML
        assert text.count(c) == text.count("\\" + c)
    assert text.replace("\\", "").replace("\u200b", "") == " ".join(crafted.split())
    assert "://" not in text.replace("\\", "")  # no autolink either


def test_plain_and_shorten_cut_long_text():
    assert len(job_widgets.plain("a" * 1000)) == 80 and job_widgets.plain("a" * 1000)[-1] == "…"
    assert playground.shorten("x" * 20_000) == "x" * 39 + "…"
    assert playground.shorten("a\nb\tc") == "a b c"
