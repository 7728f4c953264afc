//! Sign-ins per hour over the last day, kept in memory for the dashboard:
//! 24 hourly buckets of successes and refusals (a restart starts over).

use crate::domain::clock::Timestamp;
use std::collections::VecDeque;
use std::sync::Mutex;

const HOURS: usize = 24;

/// One hour's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourCount {
    /// Seconds since the epoch at the start of the hour.
    pub hour: i64,
    pub ok: u64,
    pub refused: u64,
}

#[derive(Default)]
pub struct HourlyCounts {
    hours: Mutex<VecDeque<HourCount>>,
}

impl HourlyCounts {
    /// Counts one sign-in at `now`.
    pub fn record(&self, now: Timestamp, ok: bool) {
        let hour = now.timestamp().div_euclid(3600) * 3600;
        let mut hours = self.hours.lock().unwrap_or_else(|p| p.into_inner());
        if hours.back().is_none_or(|last| last.hour < hour) {
            hours.push_back(HourCount {
                hour,
                ok: 0,
                refused: 0,
            });
            while hours.len() > HOURS {
                hours.pop_front();
            }
        }
        if let Some(last) = hours.back_mut().filter(|last| last.hour == hour) {
            match ok {
                true => last.ok += 1,
                false => last.refused += 1,
            }
        }
    }

    /// The 24 hours up to `now`, oldest first, hours without sign-ins as zeros.
    pub fn last_day(&self, now: Timestamp) -> Vec<HourCount> {
        let current = now.timestamp().div_euclid(3600) * 3600;
        let hours = self.hours.lock().unwrap_or_else(|p| p.into_inner());
        (0..HOURS as i64)
            .rev()
            .map(|back| {
                let hour = current - back * 3600;
                hours
                    .iter()
                    .find(|count| count.hour == hour)
                    .copied()
                    .unwrap_or(HourCount {
                        hour,
                        ok: 0,
                        refused: 0,
                    })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    #[test]
    fn hours_fill_roll_over_and_age_out() {
        let counts = HourlyCounts::default();
        let start = Utc
            .with_ymd_and_hms(2026, 3, 1, 8, 15, 0)
            .single()
            .unwrap_or_default();
        counts.record(start, true);
        counts.record(start + Duration::minutes(30), false);
        counts.record(start + Duration::hours(2), true);
        let day = counts.last_day(start + Duration::hours(2));
        assert_eq!(day.len(), 24);
        assert_eq!(day.iter().map(|h| h.ok + h.refused).sum::<u64>(), 3);
        assert_eq!(
            (day[21].ok, day[21].refused, day[22].ok, day[23].ok),
            (1, 1, 0, 1)
        );
        // A day later the early hours have gone.
        let later = counts.last_day(start + Duration::hours(30));
        assert_eq!(later.iter().map(|h| h.ok).sum::<u64>(), 0);
        for hour in 0..30 {
            counts.record(start + Duration::hours(hour), true);
        }
        assert_eq!(
            counts
                .last_day(start + Duration::hours(29))
                .iter()
                .map(|h| h.ok)
                .sum::<u64>(),
            24
        );
    }
}
