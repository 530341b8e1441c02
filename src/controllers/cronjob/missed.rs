//! Which scheduled time is due (upstream mostRecentScheduleTime): the
//! latest activation since the last one run (or the CronJob's creation),
//! an estimate of how many were missed, and when to look again.

use std::time::Duration;

use jiff::Timestamp;

use super::schedule::Schedule;

/// More missed activations than this get a warning event.
pub const TOO_MANY_MISSED: i64 = 100;
/// Wake slightly after the scheduled time (upstream nextScheduleDelta).
const NEXT_DELTA: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    None,
    Few,
    Many,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    /// Where the search started: last schedule time, creation time or the
    /// starting deadline.
    pub earliest: Timestamp,
    /// The most recent activation not after `now`, if any.
    pub most_recent: Option<Timestamp>,
    pub missed: Missed,
}

/// `deadline`: `spec.startingDeadlineSeconds` when it bounds the search.
pub fn most_recent(
    schedule: &Schedule,
    earliest: Timestamp,
    now: Timestamp,
    deadline: Option<i64>,
) -> Result<Due, String> {
    let mut earliest = earliest;
    if let Some(d) = deadline {
        let limit = Timestamp::from_second(now.as_second() - d).unwrap_or(now);
        if limit > earliest {
            earliest = limit;
        }
    }
    let none = |missed| Due {
        earliest,
        most_recent: None,
        missed,
    };
    let Some(t1) = schedule.next(earliest) else {
        return Ok(none(Missed::None));
    };
    if now < t1 {
        return Ok(none(Missed::None));
    }
    let Some(t2) = schedule.next(t1) else {
        return Ok(Due {
            earliest,
            most_recent: Some(t1),
            missed: Missed::None,
        });
    };
    if now < t2 {
        return Ok(Due {
            earliest,
            most_recent: Some(t1),
            missed: Missed::None,
        });
    }
    let between = t2.as_second() - t1.as_second();
    if between < 1 {
        return Err("time difference between two schedules is less than 1 second".into());
    }
    // A rough count, as upstream: intervals of the first gap since t1.
    let count = (now.as_second() - t1.as_second()) / between + 1;
    let mut t = Timestamp::from_second(t1.as_second() + (count - 1) * between).unwrap_or(t1);
    let mut latest = None;
    while t <= now {
        latest = Some(t);
        match schedule.next(t) {
            Some(n) => t = n,
            None => break,
        }
    }
    let missed = if count > TOO_MANY_MISSED {
        Missed::Many
    } else {
        Missed::Few
    };
    Ok(Due {
        earliest,
        most_recent: latest,
        missed,
    })
}

/// How long until the activation after the most recent one (upstream
/// nextScheduleTimeDuration); None when the schedule never fires again.
pub fn until_next(schedule: &Schedule, earliest: Timestamp, now: Timestamp) -> Option<Duration> {
    let from = match most_recent(schedule, earliest, now, None) {
        Err(_) => now,
        Ok(Due {
            most_recent: Some(t),
            ..
        }) => t,
        Ok(Due {
            missed: Missed::None,
            earliest,
            ..
        }) => earliest,
        Ok(_) => now,
    };
    let next = schedule.next(from)?;
    let wait = next.as_second() - now.as_second();
    let nanos = now.subsec_nanosecond();
    let wait = Duration::from_secs(wait.max(0) as u64)
        .saturating_sub(Duration::from_nanos(nanos.max(0) as u64));
    Some(wait + NEXT_DELTA)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::tz::TimeZone;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn every_minute() -> Schedule {
        super::super::schedule::parse("* * * * *", TimeZone::UTC).unwrap()
    }

    #[test]
    fn nothing_due_before_the_first_activation() {
        let due = most_recent(
            &every_minute(),
            ts("2024-01-01T00:00:10Z"),
            ts("2024-01-01T00:00:50Z"),
            None,
        )
        .unwrap();
        assert_eq!((due.most_recent, due.missed), (None, Missed::None));
        let wait = until_next(
            &every_minute(),
            ts("2024-01-01T00:00:10Z"),
            ts("2024-01-01T00:00:50Z"),
        );
        assert_eq!(wait, Some(Duration::from_secs(10) + NEXT_DELTA));
    }

    #[test]
    fn the_latest_of_several_missed_runs_is_due() {
        let due = most_recent(
            &every_minute(),
            ts("2024-01-01T00:00:00Z"),
            ts("2024-01-01T00:05:30Z"),
            None,
        )
        .unwrap();
        assert_eq!(due.most_recent, Some(ts("2024-01-01T00:05:00Z")));
        assert_eq!(due.missed, Missed::Few);
        let due = most_recent(
            &every_minute(),
            ts("2024-01-01T00:00:00Z"),
            ts("2024-01-02T00:00:30Z"),
            None,
        )
        .unwrap();
        assert_eq!(due.missed, Missed::Many);
        assert_eq!(due.most_recent, Some(ts("2024-01-02T00:00:00Z")));
    }

    #[test]
    fn starting_deadline_bounds_the_search() {
        let due = most_recent(
            &every_minute(),
            ts("2024-01-01T00:00:00Z"),
            ts("2024-01-02T00:00:30Z"),
            Some(200),
        )
        .unwrap();
        assert_eq!(due.missed, Missed::Few);
        assert_eq!(due.earliest, ts("2024-01-01T23:57:10Z"));
        let wait = until_next(
            &every_minute(),
            ts("2024-01-02T00:00:00Z"),
            ts("2024-01-02T00:00:30Z"),
        );
        assert_eq!(wait, Some(Duration::from_secs(30) + NEXT_DELTA));
    }
}
