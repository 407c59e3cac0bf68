//! Checked values shared by the business domains: money and times of day.

use chrono::{NaiveTime, Weekday};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::FieldError;

/// An amount of money in one currency (ISO 4217 code). Never a float.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub amount: Decimal,
    pub currency: String,
}

impl Money {
    /// A non-negative amount with at most 2 decimal places in a
    /// three-letter upper-case currency.
    pub fn parse(field: &str, amount: &str, currency: &str) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let parsed = amount.trim().parse::<Decimal>();
        match &parsed {
            Ok(value) if value.is_sign_negative() => {
                errors.push(FieldError::new(field, "must not be negative"))
            }
            Ok(value) if value.scale() > 2 && value.normalize().scale() > 2 => {
                errors.push(FieldError::new(field, "at most 2 decimal places"))
            }
            Ok(value) if *value > Decimal::from(1_000_000_000) => {
                errors.push(FieldError::new(field, "is too large"))
            }
            Ok(_) => {}
            Err(_) => errors.push(FieldError::new(
                field,
                "must be a decimal number like \"25.00\"",
            )),
        }
        if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
            errors.push(FieldError::new(
                "currency",
                "must be a three-letter ISO 4217 code like EUR",
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut amount = parsed.expect("checked").normalize();
        amount.rescale(2);
        Ok(Self {
            amount,
            currency: currency.to_string(),
        })
    }
}

/// A span within one day, `start` before `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl TimeRange {
    pub fn new(field: &str, start: NaiveTime, end: NaiveTime) -> Result<Self, FieldError> {
        if start >= end {
            return Err(FieldError::new(
                field,
                "start must be before end (within one day)",
            ));
        }
        Ok(Self { start, end })
    }

    pub fn overlaps(&self, other: &TimeRange) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// Hours on one weekday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeeklyRange {
    #[serde(with = "weekday_name")]
    pub weekday: Weekday,
    pub range: TimeRange,
}

/// Weekdays as `mon`, `tue`, ...
pub mod weekday_name {
    use chrono::Weekday;
    use serde::{Deserialize, Deserializer, Serializer};

    pub const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

    pub fn name(day: Weekday) -> &'static str {
        NAMES[day.num_days_from_monday() as usize]
    }

    pub fn parse(text: &str) -> Option<Weekday> {
        NAMES
            .iter()
            .position(|n| *n == text)
            .map(|i| Weekday::try_from(i as u8).expect("0..7"))
    }

    pub fn serialize<S: Serializer>(day: &Weekday, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(name(*day))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Weekday, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("'{text}' is not one of mon..sun")))
    }
}

/// Checks that ranges on the same weekday do not overlap.
pub fn check_weekly(field: &str, ranges: &[WeeklyRange]) -> Result<(), FieldError> {
    for (i, a) in ranges.iter().enumerate() {
        for b in &ranges[i + 1..] {
            if a.weekday == b.weekday && a.range.overlaps(&b.range) {
                return Err(FieldError::new(
                    field,
                    format!("two ranges overlap on {}", weekday_name::name(a.weekday)),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_decimal_with_a_currency() {
        let m = Money::parse("price", "25", "EUR").unwrap();
        assert_eq!(m.amount.to_string(), "25.00");
        assert_eq!(
            Money::parse("price", "19.9", "EUR")
                .unwrap()
                .amount
                .to_string(),
            "19.90"
        );
        assert!(Money::parse("price", "-1", "EUR").is_err());
        assert!(Money::parse("price", "1.005", "EUR").is_err());
        assert!(Money::parse("price", "abc", "EUR").is_err());
        assert_eq!(
            Money::parse("price", "1", "eur").unwrap_err()[0].field,
            "currency"
        );
    }

    #[test]
    fn weekdays_read_and_write_as_three_letters() {
        assert_eq!(weekday_name::parse("mon"), Some(Weekday::Mon));
        assert_eq!(weekday_name::parse("sun"), Some(Weekday::Sun));
        assert_eq!(weekday_name::parse("monday"), None);
        assert_eq!(weekday_name::name(Weekday::Fri), "fri");
    }

    #[test]
    fn overlapping_hours_on_one_day_are_refused() {
        let t = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap();
        let r = |d, a, b| WeeklyRange {
            weekday: d,
            range: TimeRange::new("x", t(a), t(b)).unwrap(),
        };
        assert!(check_weekly(
            "working_hours",
            &[r(Weekday::Mon, 9, 12), r(Weekday::Mon, 13, 18)]
        )
        .is_ok());
        assert!(check_weekly(
            "working_hours",
            &[r(Weekday::Mon, 9, 12), r(Weekday::Tue, 9, 12)]
        )
        .is_ok());
        assert!(check_weekly(
            "working_hours",
            &[r(Weekday::Mon, 9, 12), r(Weekday::Mon, 11, 18)]
        )
        .is_err());
        assert!(TimeRange::new("x", t(12), t(9)).is_err());
    }
}
