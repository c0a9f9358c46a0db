import time as stopwatch
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.deadlines.calendar import DeadlineUnit, ProductionCalendar

MSK = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")
CAL = ProductionCalendar(tz=MSK)
WH = DeadlineUnit.working_hours
WD = DeadlineUnit.working_days
CD = DeadlineUnit.calendar_days


def msk(*args: int) -> datetime:
    return datetime(*args, tzinfo=MSK)


# ---------------------------------------------------------------- is_working_day


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2025, 10, 15), True),  # ordinary Wednesday
        (date(2025, 10, 18), False),  # ordinary Saturday
        (date(2026, 6, 12), False),  # Russia Day, Friday
        (date(2025, 5, 2), False),  # transferred day off
        (date(2025, 11, 3), False),  # transferred day off
        (date(2025, 12, 31), False),  # transferred day off
        (date(2026, 1, 9), False),  # transferred day off
        (date(2025, 11, 1), True),  # Saturday made a working day
        (date(2025, 11, 5), True),
        (date(2026, 1, 12), True),
    ],
)
def test_is_working_day(day: date, expected: bool) -> None:
    assert CAL.is_working_day(day) is expected


def test_production_calendar_day_counts() -> None:
    # Official Russian production calendar: 247 working days in 2025, 248 in 2024.
    assert CAL.working_seconds_between(msk(2025, 1, 1), msk(2026, 1, 1)) == 247 * 9 * 3600
    assert CAL.working_seconds_between(msk(2024, 1, 1), msk(2025, 1, 1)) == 248 * 9 * 3600


# ---------------------------------------------------------------- working hours


def test_working_hours_across_weekend() -> None:
    # Fri 16-18 gives 2h, the remaining 7h end on Monday at 16:00.
    assert CAL.add(msk(2025, 10, 17, 16), 9, WH) == msk(2025, 10, 20, 16)
    # Another full day pushes it to Tuesday 16:00.
    assert CAL.add(msk(2025, 10, 17, 16), 18, WH) == msk(2025, 10, 21, 16)


def test_working_hours_across_public_holiday() -> None:
    # Thu 2026-06-11 16-18 (2h); Fri 12 Russia Day; weekend; Mon 15 09-16 (7h).
    assert CAL.add(msk(2026, 6, 11, 16), 9, WH) == msk(2026, 6, 15, 16)


@pytest.mark.parametrize(
    ("start", "due"),
    [
        # May 1 holiday, May 2 transferred day off, weekend -> Mon May 5.
        (msk(2025, 4, 30, 17), msk(2025, 5, 5, 10)),
        # Sun Nov 2, Mon Nov 3 transferred, Tue Nov 4 Unity Day -> Wed Nov 5.
        (msk(2025, 11, 1, 17), msk(2025, 11, 5, 10)),
        # Dec 31 transferred, Jan 1-8 holidays, Jan 9 transferred, weekend -> Mon Jan 12.
        (msk(2025, 12, 30, 17), msk(2026, 1, 12, 10)),
    ],
)
def test_working_hours_across_transferred_day_off(start: datetime, due: datetime) -> None:
    assert CAL.add(start, 2, WH) == due


def test_working_hours_on_weekend_workday() -> None:
    # Sat 2025-11-01 is a working day, so Fri 17:00 + 2h ends Saturday 10:00.
    assert CAL.add(msk(2025, 10, 31, 17), 2, WH) == msk(2025, 11, 1, 10)
    assert CAL.add(msk(2025, 11, 1, 3), 1, WH) == msk(2025, 11, 1, 10)


@pytest.mark.parametrize(
    ("start", "due"),
    [
        (msk(2025, 10, 15, 3), msk(2025, 10, 15, 10)),  # night before opening
        (msk(2025, 10, 15, 20), msk(2025, 10, 16, 10)),  # evening after closing
        (msk(2025, 10, 15, 18), msk(2025, 10, 16, 10)),  # exactly at closing time
        (msk(2025, 10, 18, 12), msk(2025, 10, 20, 10)),  # Saturday
        (msk(2025, 10, 19, 23, 59), msk(2025, 10, 20, 10)),  # late Sunday
    ],
)
def test_working_hours_start_outside_working_time(start: datetime, due: datetime) -> None:
    assert CAL.add(start, 1, WH) == due


def test_working_hours_ending_exactly_at_day_end() -> None:
    assert CAL.add(msk(2025, 10, 20, 9), 9, WH) == msk(2025, 10, 20, 18)
    assert CAL.add(msk(2025, 10, 17, 16), 2, WH) == msk(2025, 10, 17, 18)
    # Friday 18:00, not Monday 09:00.
    assert CAL.add(msk(2025, 10, 13, 9), 45, WH) == msk(2025, 10, 17, 18)


def test_zero_amount_normalises_start() -> None:
    assert CAL.add(msk(2025, 10, 18, 12), 0, WH) == msk(2025, 10, 20, 9)
    assert CAL.add(msk(2025, 10, 15, 11, 30), 0, WH) == msk(2025, 10, 15, 11, 30)
    start_utc = datetime(2025, 10, 18, 9, tzinfo=UTC)
    for unit in (WD, CD):
        result = CAL.add(start_utc, 0, unit)
        assert result == start_utc
        assert result.tzinfo == MSK


def test_custom_working_hours() -> None:
    cal = ProductionCalendar(tz=MSK, day_start=time(8, 30), day_end=time(17, 15))
    # Fri 16:00-17:15 (1h15m) + Mon 08:30 + 1h45m = 10:15.
    assert cal.add(msk(2025, 10, 17, 16), 3, WH) == msk(2025, 10, 20, 10, 15)


# ---------------------------------------------------------------- working / calendar days


def test_working_days_across_new_year() -> None:
    # Days off Dec 31 .. Jan 11; working days Jan 12,13,14,15,16,19,20.
    assert CAL.add(msk(2025, 12, 30, 10), 7, WD) == msk(2026, 1, 20, 18)


def test_working_days_basic() -> None:
    # The start day is not counted, whatever the time of day.
    assert CAL.add(msk(2025, 10, 15, 23, 30), 1, WD) == msk(2025, 10, 16, 18)
    assert CAL.add(msk(2025, 10, 17, 10), 1, WD) == msk(2025, 10, 20, 18)
    assert CAL.add(msk(2025, 10, 18, 10), 1, WD) == msk(2025, 10, 20, 18)
    assert CAL.add(msk(2025, 10, 15, 10), 10, WD) == msk(2025, 10, 29, 18)


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        (msk(2025, 10, 15, 10), 1, msk(2025, 10, 16, 18)),  # lands on a working day
        (msk(2025, 10, 15, 10), 3, msk(2025, 10, 20, 18)),  # Saturday -> Monday
        (msk(2026, 6, 9, 10), 3, msk(2026, 6, 15, 18)),  # Russia Day -> Monday
        (msk(2025, 12, 25, 10), 7, msk(2026, 1, 12, 18)),  # Jan 1 -> Jan 12
        (msk(2025, 10, 25, 10), 7, msk(2025, 11, 1, 18)),  # working Saturday stays
    ],
)
def test_calendar_days(start: datetime, days: int, due: datetime) -> None:
    assert CAL.add(start, days, CD) == due


# ---------------------------------------------------------------- admin exceptions


def test_extra_holidays() -> None:
    cal = ProductionCalendar(tz=MSK, extra_holidays=frozenset({date(2025, 10, 20)}))
    assert not cal.is_working_day(date(2025, 10, 20))
    assert cal.add(msk(2025, 10, 17, 16), 9, WH) == msk(2025, 10, 21, 16)
    assert cal.add(msk(2025, 10, 17, 10), 1, WD) == msk(2025, 10, 21, 18)
    assert cal.add(msk(2025, 10, 16, 10), 4, CD) == msk(2025, 10, 21, 18)


def test_extra_workdays_override_weekend_and_holiday() -> None:
    cal = ProductionCalendar(
        tz=MSK, extra_workdays=frozenset({date(2025, 10, 18), date(2026, 6, 12)})
    )
    assert cal.is_working_day(date(2025, 10, 18))
    assert cal.is_working_day(date(2026, 6, 12))
    assert cal.add(msk(2025, 10, 17, 16), 9, WH) == msk(2025, 10, 18, 16)
    assert cal.add(msk(2026, 6, 11, 10), 1, WD) == msk(2026, 6, 12, 18)
    assert cal.add(msk(2025, 10, 15, 10), 3, CD) == msk(2025, 10, 18, 18)


def test_extra_workdays_win_over_extra_holidays() -> None:
    day = date(2025, 10, 20)
    cal = ProductionCalendar(
        tz=MSK, extra_holidays=frozenset({day}), extra_workdays=frozenset({day})
    )
    assert cal.is_working_day(day)


# ---------------------------------------------------------------- time zones


def test_utc_input_gives_moscow_output() -> None:
    start = datetime(2025, 10, 15, 6, tzinfo=UTC)  # 09:00 MSK
    due = CAL.add(start, 1, WH)
    assert due.tzinfo == MSK
    assert (due.hour, due.minute) == (10, 0)
    assert due == datetime(2025, 10, 15, 7, tzinfo=UTC)
    # The same instant in another zone gives the same deadline.
    assert CAL.add(start.astimezone(ZoneInfo("Asia/Tokyo")), 1, WH) == due


def test_utc_input_local_date_is_used() -> None:
    # 22:30 UTC on Friday is already 01:30 Saturday in Moscow.
    start = datetime(2025, 10, 17, 22, 30, tzinfo=UTC)
    assert CAL.add(start, 1, WH) == msk(2025, 10, 20, 10)
    assert CAL.add(start, 1, WD) == msk(2025, 10, 20, 18)


def test_moscow_is_dst_free() -> None:
    # Europe switched on 2025-10-26; Moscow stays at +03:00.
    due = CAL.add(msk(2025, 10, 24, 16), 9, WH)
    assert due == msk(2025, 10, 27, 16)
    assert due.utcoffset() == timedelta(hours=3)


@pytest.mark.parametrize(
    ("start", "due", "offset"),
    [
        # Spring forward on Sun 2025-03-30.
        (datetime(2025, 3, 28, 16, tzinfo=BERLIN), datetime(2025, 3, 31, 16, tzinfo=BERLIN), 2),
        # Fall back on Sun 2025-10-26.
        (datetime(2025, 10, 24, 16, tzinfo=BERLIN), datetime(2025, 10, 27, 16, tzinfo=BERLIN), 1),
    ],
)
def test_wall_clock_hours_across_dst_change(start: datetime, due: datetime, offset: int) -> None:
    cal = ProductionCalendar(tz=BERLIN)
    result = cal.add(start, 9, WH)
    assert result == due
    assert result.utcoffset() == timedelta(hours=offset)
    assert (result.hour, result.minute) == (16, 0)
    assert cal.add(start, 1, WD).hour == 18
    assert cal.working_seconds_between(start, result) == 9 * 3600


# ---------------------------------------------------------------- validation


def test_naive_datetime_rejected() -> None:
    naive = datetime(2025, 10, 15, 10)
    for unit in DeadlineUnit:
        with pytest.raises(ValueError, match="timezone-aware"):
            CAL.add(naive, 1, unit)
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.working_seconds_between(naive, msk(2025, 10, 16))
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.working_seconds_between(msk(2025, 10, 14), naive)


def test_negative_amount_rejected() -> None:
    for unit in DeadlineUnit:
        with pytest.raises(ValueError, match=">= 0"):
            CAL.add(msk(2025, 10, 15, 10), -1, unit)


def test_inverted_working_hours_rejected() -> None:
    with pytest.raises(ValueError):
        ProductionCalendar(tz=MSK, day_start=time(18), day_end=time(9))


# ---------------------------------------------------------------- working_seconds_between


def test_working_seconds_between_examples() -> None:
    assert CAL.working_seconds_between(msk(2025, 10, 15, 10), msk(2025, 10, 15, 9)) == 0
    assert CAL.working_seconds_between(msk(2025, 10, 15, 10), msk(2025, 10, 15, 10)) == 0
    assert CAL.working_seconds_between(msk(2025, 10, 15, 8), msk(2025, 10, 15, 9, 30)) == 1800
    # Starting after closing / ending before opening must not count negative time.
    assert CAL.working_seconds_between(msk(2025, 10, 15, 19), msk(2025, 10, 16, 8)) == 0
    assert CAL.working_seconds_between(msk(2025, 10, 15, 17), msk(2025, 10, 16, 8)) == 3600
    assert CAL.working_seconds_between(msk(2025, 10, 15, 19), msk(2025, 10, 16, 10)) == 3600
    # Fri 17:00 -> Mon 10:00: one hour each side of the weekend.
    assert CAL.working_seconds_between(msk(2025, 10, 17, 17), msk(2025, 10, 20, 10)) == 7200
    # Across the New Year break only Dec 30 17-18 and Jan 12 9-10 count.
    assert CAL.working_seconds_between(msk(2025, 12, 30, 17), msk(2026, 1, 12, 10)) == 7200


INVERSE_STARTS = [
    msk(2025, 10, 15, 9),
    msk(2025, 10, 17, 16, 20, 15),
    msk(2025, 10, 31, 17, 59, 59),
    msk(2025, 12, 30, 10, 30),
    msk(2026, 6, 11, 13, 45),
    datetime(2025, 3, 28, 12, tzinfo=UTC),  # 15:00 MSK
]
INVERSE_AMOUNTS = [0, 1, 2, 8, 9, 10, 17, 18, 19, 100, 500, 2000]


def test_working_seconds_between_inverts_add() -> None:
    for start in INVERSE_STARTS:
        for hours in INVERSE_AMOUNTS:
            due = CAL.add(start, hours, WH)
            assert CAL.working_seconds_between(start, due) == hours * 3600, (start, hours)


def _reference_add_hours(cal: ProductionCalendar, start: datetime, hours: int) -> datetime:
    """Slow oracle: walk hour by hour (start must be on a whole local hour)."""
    t = start.astimezone(cal.tz).replace(tzinfo=None)
    counted = 0
    while True:
        in_hours = cal.day_start <= t.time() < cal.day_end
        if cal.is_working_day(t.date()) and in_hours:
            if counted == hours:
                return t.replace(tzinfo=cal.tz)
            counted += 1
            if counted == hours:
                return (t + timedelta(hours=1)).replace(tzinfo=cal.tz)
        t += timedelta(hours=1)


def test_working_hours_match_hour_by_hour_reference() -> None:
    starts = [msk(2025, 4, 29, 14), msk(2025, 10, 30, 3), msk(2025, 12, 26, 17), msk(2026, 3, 6)]
    for start in starts:
        for hours in [0, 1, 4, 9, 13, 27, 90, 301]:
            assert CAL.add(start, hours, WH) == _reference_add_hours(CAL, start, hours), (
                start,
                hours,
            )


def test_large_amounts_are_fast() -> None:
    start = msk(2025, 1, 9, 9)
    began = stopwatch.perf_counter()
    due = CAL.add(start, 2000, WH)
    far = CAL.add(start, 20_000, WH)
    seconds = CAL.working_seconds_between(start, far)
    elapsed = stopwatch.perf_counter() - began
    assert CAL.working_seconds_between(start, due) == 2000 * 3600
    assert seconds == 20_000 * 3600
    assert elapsed < 1.0
    # 2000 / 9 = 222 full days and 2 hours: 223 working days, about ten and a half months.
    assert date(2025, 11, 1) < due.date() < date(2025, 12, 31)
    assert (due.hour, due.minute) == (11, 0)
