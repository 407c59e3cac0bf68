//! Studio statistics folded from the subscriptions read model: active and
//! frozen clients over time, revenue and freezes per month, churn and the
//! plan mix — each from the domain's own rules (`Subscription::standing`).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Duration, NaiveDate};
use rust_decimal::Decimal;
use uuid::Uuid;

use annals_domain::gym::Standing;

use super::queries::SubscriptionRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Day,
    Week,
    Month,
}

impl Interval {
    /// The first day of the bucket holding `day` (weeks start on Monday).
    pub fn bucket(self, day: NaiveDate) -> NaiveDate {
        match self {
            Interval::Day => day,
            Interval::Week => day - Duration::days(i64::from(day.weekday().num_days_from_monday())),
            Interval::Month => day.with_day(1).unwrap_or(day),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Point {
    pub period: NaiveDate,
    /// Clients active on at least one day of the period.
    pub active: usize,
    /// Clients frozen on at least one day of it (and active on none).
    pub frozen: usize,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Churn {
    /// Coverage that ended inside the range, early enough to know.
    pub ended: usize,
    /// ... and was followed by a new period within the window.
    pub renewed: usize,
    pub churned: usize,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct StudioStats {
    pub series: Vec<Point>,
    /// (month, currency) → amount of the payments not voided.
    pub revenue: BTreeMap<(String, String), Decimal>,
    /// month → (freezes started, days they froze).
    pub freezes: BTreeMap<String, (usize, u32)>,
    pub churn: Churn,
    /// plan → clients active on the last day.
    pub plan_mix: BTreeMap<Uuid, usize>,
}

/// The statistics of `rows` over `[from, to]`; churn counts coverage that
/// ended with no new period starting within `window` days, decided only
/// for ends at least `window` days before `today`.
pub fn fold(
    rows: &[SubscriptionRow],
    from: NaiveDate,
    to: NaiveDate,
    interval: Interval,
    window: i64,
    today: NaiveDate,
) -> StudioStats {
    let mut stats = StudioStats::default();
    // client → period → best standing in it
    let mut best: BTreeMap<NaiveDate, BTreeMap<Uuid, Standing>> = BTreeMap::new();
    for row in rows {
        let state = &row.state;
        let mut day = from;
        while day <= to {
            let standing = state.standing(day);
            let bucket = best.entry(interval.bucket(day)).or_default();
            let entry = bucket.entry(row.client_id).or_insert(Standing::Inactive);
            if standing.rank() > entry.rank() {
                *entry = standing;
            }
            day += Duration::days(1);
        }
        if state.standing(to) == Standing::Active {
            *stats.plan_mix.entry(row.plan_id).or_default() += 1;
        }
        for payment in state.payments.iter().filter(|p| p.voided.is_none()) {
            if payment.paid_on >= from && payment.paid_on <= to {
                let key = (month(payment.paid_on), payment.currency.clone());
                *stats.revenue.entry(key).or_default() += payment.amount;
            }
        }
        for freeze in &state.freezes {
            if freeze.start >= from && freeze.start <= to && freeze.used() > 0 {
                let entry = stats.freezes.entry(month(freeze.start)).or_default();
                entry.0 += 1;
                entry.1 += freeze.used();
            }
        }
        let spans = state.spans();
        for (i, &(_, end)) in spans.iter().enumerate() {
            let decided = end + Duration::days(window) < today;
            if end < from || end > to || !decided {
                continue;
            }
            stats.churn.ended += 1;
            let renewed = spans
                .get(i + 1)
                .is_some_and(|&(next, _)| next <= end + Duration::days(window + 1));
            if renewed {
                stats.churn.renewed += 1;
            } else {
                stats.churn.churned += 1;
            }
        }
    }
    let periods: BTreeSet<NaiveDate> = {
        let mut all = BTreeSet::new();
        let mut day = from;
        while day <= to {
            all.insert(interval.bucket(day));
            day += Duration::days(1);
        }
        all
    };
    stats.series = periods
        .into_iter()
        .map(|period| {
            let clients = best.get(&period);
            let count =
                |s: Standing| clients.map_or(0, |c| c.values().filter(|v| **v == s).count());
            Point {
                period,
                active: count(Standing::Active),
                frozen: count(Standing::Frozen),
            }
        })
        .collect();
    stats
}

fn month(day: NaiveDate) -> String {
    day.format("%Y-%m").to_string()
}
