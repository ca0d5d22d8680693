"""The time words of J9's steps: "it is Thursday 13:00 UTC" and soak spans such as 71h59m."""

from datetime import UTC, datetime, timedelta

import pytest

from catalyst_sim.harness.steps.promotion import logins, next_instant, parse_span

TUESDAY = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(("now", "day", "hour", "minute", "expected"), [
    (TUESDAY, "Thursday", 13, 0, datetime(2026, 11, 26, 13, 0, tzinfo=UTC)),
    (TUESDAY, "Tuesday", 14, 0, datetime(2026, 11, 24, 14, 0, tzinfo=UTC)),
    (TUESDAY, "Tuesday", 9, 0, TUESDAY),  # already that instant: time does not move
    (TUESDAY, "Tuesday", 8, 59, datetime(2026, 12, 1, 8, 59, tzinfo=UTC)),
    (TUESDAY, "Monday", 9, 0, datetime(2026, 11, 30, 9, 0, tzinfo=UTC)),
    (TUESDAY + timedelta(seconds=1), "Tuesday", 9, 0, datetime(2026, 12, 1, 9, 0, tzinfo=UTC)),
])
def test_it_is_means_the_next_such_instant(now: datetime, day: str, hour: int, minute: int,
                                           expected: datetime) -> None:
    assert next_instant(now, day, hour, minute) == expected


@pytest.mark.parametrize(("text", "span"), [("72h", timedelta(hours=72)), ("71h59m", timedelta(hours=71, minutes=59)),
                                            ("24h", timedelta(hours=24)), ("30m", timedelta(minutes=30))])
def test_soak_spans_read_like_the_gate_reasons(text: str, span: timedelta) -> None:
    assert parse_span(text) == span


@pytest.mark.parametrize("text", ["", "72", "h", "3 days", "-1h"])
def test_other_spans_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a span"):
        parse_span(text)


def test_reviewer_lists_read_like_sentences() -> None:
    assert logins("Omar and Sara") == ["omar", "sara"]
    assert logins("Layla, Omar and Yusuf") == ["layla", "omar", "yusuf"]
