//! A user's mail schedule: when held notifications go out as one digest.
//! Validated from the JSON the API and CSV carry; slots are computed in the
//! user's own time zone, so a digest set for 08:00 stays at 08:00 local time
//! across daylight-saving changes.

use super::ValidationError;
use super::clock::Timestamp;
use chrono::{Datelike, Days, LocalResult, NaiveDate, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The preset a schedule starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    Immediately,
    Daily,
    Weekly,
    Monthly,
    Never,
}

/// Days of the week, as written in a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    fn of(date: NaiveDate) -> Self {
        use chrono::Weekday as W;
        match date.weekday() {
            W::Mon => Self::Mon,
            W::Tue => Self::Tue,
            W::Wed => Self::Wed,
            W::Thu => Self::Thu,
            W::Fri => Self::Fri,
            W::Sat => Self::Sat,
            W::Sun => Self::Sun,
        }
    }
}

/// When notifications reach a user. Weekdays win over days of the month;
/// with neither, the preset decides (daily: every day, weekly: Mondays,
/// monthly: the 1st).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSchedule {
    pub preset: Preset,
    #[serde(default)]
    pub days: BTreeSet<u8>,
    #[serde(default)]
    pub weekdays: BTreeSet<Weekday>,
    #[serde(default = "default_hour")]
    pub hour: u8,
    #[serde(default = "default_timezone")]
    pub timezone: String,
}

fn default_hour() -> u8 {
    8
}

fn default_timezone() -> String {
    "UTC".into()
}

/// What a schedule means for a notification sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Now,
    /// Held until this slot, then sent with the others held for it.
    At(Timestamp),
    /// The user wants no notifications.
    Never,
}

impl MailSchedule {
    /// Parses and checks a schedule; the error names the offending field
    /// under `mail_schedule`.
    pub fn from_value(value: serde_json::Value) -> Result<Self, ValidationError> {
        let schedule: Self = serde_path_to_error::deserialize(value).map_err(|error| {
            let path = error.path().to_string();
            let first = path
                .split(['[', '.'])
                .next()
                .filter(|name| !name.is_empty());
            let field = match first {
                Some(name) => format!("mail_schedule.{name}"),
                None => "mail_schedule".to_owned(),
            };
            ValidationError::new(field, error.inner().to_string())
        })?;
        if schedule.hour > 23 {
            return Err(ValidationError::new(
                "mail_schedule.hour",
                "must be 0 to 23",
            ));
        }
        if schedule.days.iter().any(|day| !(1..=31).contains(day)) {
            return Err(ValidationError::new(
                "mail_schedule.days",
                "days of the month are 1 to 31",
            ));
        }
        if schedule.timezone.parse::<Tz>().is_err() {
            return Err(ValidationError::new(
                "mail_schedule.timezone",
                format!(
                    "`{}` is not an IANA time zone such as Europe/Berlin",
                    schedule.timezone
                ),
            ));
        }
        Ok(schedule)
    }

    /// The schedule stored for a user, if it is one; anything unreadable
    /// (written before schedules were checked) means "immediately".
    pub fn of_stored(value: Option<&serde_json::Value>) -> Option<Self> {
        value.and_then(|value| Self::from_value(value.clone()).ok())
    }

    /// When a notification created at `now` goes out.
    pub fn delivery(&self, now: Timestamp) -> Delivery {
        match self.preset {
            Preset::Immediately => Delivery::Now,
            Preset::Never => Delivery::Never,
            _ => self.next_slot(now).map_or(Delivery::Now, Delivery::At),
        }
    }

    fn matches(&self, date: NaiveDate) -> bool {
        if !self.weekdays.is_empty() {
            return self.weekdays.contains(&Weekday::of(date));
        }
        if !self.days.is_empty() {
            return u8::try_from(date.day()).is_ok_and(|day| self.days.contains(&day));
        }
        match self.preset {
            Preset::Weekly => Weekday::of(date) == Weekday::Mon,
            Preset::Monthly => date.day() == 1,
            _ => true,
        }
    }

    /// The first slot strictly after `after`. An hour that a DST change skips
    /// moves to the first instant after the gap; one it repeats takes the first.
    pub fn next_slot(&self, after: Timestamp) -> Option<Timestamp> {
        let zone: Tz = self.timezone.parse().ok()?;
        let start = after.with_timezone(&zone).date_naive();
        // Day 31 comes round within 62 days; 400 covers any rule with margin.
        (0..400u64)
            .filter_map(|offset| start.checked_add_days(Days::new(offset)))
            .filter(|date| self.matches(*date))
            .filter_map(|date| {
                let local = date.and_hms_opt(u32::from(self.hour), 0, 0)?;
                match zone.from_local_datetime(&local) {
                    LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => Some(at),
                    LocalResult::None => {
                        let later = local + chrono::Duration::hours(1);
                        zone.from_local_datetime(&later).earliest()
                    }
                }
            })
            .map(|at| at.to_utc())
            .find(|at| *at > after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use serde_json::json;

    fn at(text: &str) -> Timestamp {
        text.parse::<chrono::DateTime<Utc>>()
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn schedule(value: serde_json::Value) -> MailSchedule {
        MailSchedule::from_value(value).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn bad_schedules_name_their_field() {
        let cases = [
            (json!({"preset": "hourly"}), "mail_schedule.preset"),
            (json!({"preset": "daily", "hour": 24}), "mail_schedule.hour"),
            (json!({"preset": "daily", "hour": -1}), "mail_schedule.hour"),
            (
                json!({"preset": "monthly", "days": [0]}),
                "mail_schedule.days",
            ),
            (
                json!({"preset": "monthly", "days": [32]}),
                "mail_schedule.days",
            ),
            (
                json!({"preset": "weekly", "weekdays": ["monday"]}),
                "mail_schedule.weekdays",
            ),
            (
                json!({"preset": "daily", "timezone": "Mars/Olympus"}),
                "mail_schedule.timezone",
            ),
            (
                json!({"preset": "daily", "colour": 1}),
                "mail_schedule.colour",
            ),
            (json!({"hour": 3}), "mail_schedule"),
            (json!([1]), "mail_schedule"),
        ];
        for (value, field) in cases {
            let error = MailSchedule::from_value(value.clone()).err();
            assert_eq!(error.map(|e| e.field), Some(field.to_owned()), "{value}");
        }
    }

    #[test]
    fn slots_follow_the_rule_in_local_time() {
        let cases = [
            // daily at 08:00 Berlin (UTC+1 in January)
            (
                json!({"preset": "daily", "hour": 8, "timezone": "Europe/Berlin"}),
                "2026-01-05T06:00:00Z",
                "2026-01-05T07:00:00Z",
            ),
            (
                json!({"preset": "daily", "hour": 8, "timezone": "Europe/Berlin"}),
                "2026-01-05T07:00:00Z",
                "2026-01-06T07:00:00Z",
            ),
            // weekly defaults to Monday; 2026-01-05 is a Monday
            (
                json!({"preset": "weekly", "hour": 9}),
                "2026-01-05T09:30:00Z",
                "2026-01-12T09:00:00Z",
            ),
            (
                json!({"preset": "weekly", "weekdays": ["wed", "fri"], "hour": 9}),
                "2026-01-05T10:00:00Z",
                "2026-01-07T09:00:00Z",
            ),
            // weekdays win over days
            (
                json!({"preset": "monthly", "days": [20], "weekdays": ["tue"], "hour": 0}),
                "2026-01-05T10:00:00Z",
                "2026-01-06T00:00:00Z",
            ),
            (
                json!({"preset": "monthly", "hour": 6}),
                "2026-01-05T10:00:00Z",
                "2026-02-01T06:00:00Z",
            ),
            // the 31st skips short months
            (
                json!({"preset": "monthly", "days": [31], "hour": 6}),
                "2026-01-31T07:00:00Z",
                "2026-03-31T06:00:00Z",
            ),
            // spring forward in Berlin: 02:00 does not exist on 2026-03-29
            (
                json!({"preset": "daily", "hour": 2, "timezone": "Europe/Berlin"}),
                "2026-03-28T12:00:00Z",
                "2026-03-29T01:00:00Z",
            ),
            // after the change, 08:00 Berlin is 06:00 UTC
            (
                json!({"preset": "daily", "hour": 8, "timezone": "Europe/Berlin"}),
                "2026-03-29T05:00:00Z",
                "2026-03-29T06:00:00Z",
            ),
            // fall back in New York: 01:00 happens twice on 2026-11-01; the first counts
            (
                json!({"preset": "daily", "hour": 1, "timezone": "America/New_York"}),
                "2026-10-31T12:00:00Z",
                "2026-11-01T05:00:00Z",
            ),
        ];
        for (rule, now, expected) in cases {
            let slot = schedule(rule.clone()).next_slot(at(now));
            assert_eq!(slot, Some(at(expected)), "{rule} after {now}");
        }
    }

    #[test]
    fn presets_decide_delivery() {
        let now = at("2026-01-05T06:00:00Z");
        assert_eq!(
            schedule(json!({"preset": "immediately"})).delivery(now),
            Delivery::Now
        );
        assert_eq!(
            schedule(json!({"preset": "never"})).delivery(now),
            Delivery::Never
        );
        assert_eq!(
            schedule(json!({"preset": "daily", "hour": 7})).delivery(now),
            Delivery::At(at("2026-01-05T07:00:00Z"))
        );
        assert_eq!(MailSchedule::of_stored(Some(&json!({"preset": 5}))), None);
    }
}
