//! A project with the time of each change — what the events alone do not
//! say — and what follows from those times: the burn-up series with its
//! forecast, the time spent waiting on the business and on the client, and
//! the statistics over all projects. Pure functions, tested here.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use annals_domain::projects::{request, ProjectEvent, ProjectRequest, ProjectState};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub at: DateTime<Utc>,
    pub percent_done: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateChange {
    pub at: DateTime<Utc>,
    pub state: ProjectState,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProjectFile {
    pub project: ProjectRequest,
    pub requested_at: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub ready_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// Percent done after the start, each report, and readiness (100).
    pub series: Vec<Point>,
    /// Every change of state, the request first.
    pub changes: Vec<StateChange>,
}

pub fn evolve(file: &mut ProjectFile, (at, event): &(DateTime<Utc>, ProjectEvent)) {
    let at = *at;
    request::evolve(&mut file.project, event);
    if let Some(state) = event.new_state() {
        file.changes.push(StateChange { at, state });
    }
    let point = Point {
        at,
        percent_done: file.project.percent_done,
    };
    match event {
        ProjectEvent::Requested(_) => file.requested_at = Some(at),
        ProjectEvent::Accepted(_) => file.accepted_at = Some(at),
        ProjectEvent::Started => {
            file.started_at = Some(at);
            file.series.push(point);
        }
        ProjectEvent::ProgressReported { .. } => file.series.push(point),
        ProjectEvent::ReadyForDelivery => {
            file.ready_at = Some(at);
            file.series.push(point);
        }
        ProjectEvent::Delivered { .. } => file.delivered_at = Some(at),
        _ => {}
    }
}

/// How far back "the recent pace" looks from the latest report.
pub const PACE_WINDOW_DAYS: i64 = 14;

/// When the work will reach 100 % at the recent pace: the percentage
/// gained from the earliest point within `PACE_WINDOW_DAYS` before the
/// latest one up to the latest, per unit of time, carried on from the
/// latest. `None` without two such points or without progress in them;
/// the readiness time once at 100 %.
pub fn forecast(series: &[Point]) -> Option<DateTime<Utc>> {
    let last = series.last()?;
    if last.percent_done >= 100 {
        return Some(last.at);
    }
    let since = last.at - Duration::days(PACE_WINDOW_DAYS);
    let first = series.iter().find(|p| p.at >= since)?;
    let gained = i64::from(last.percent_done) - i64::from(first.percent_done);
    let took = (last.at - first.at).num_milliseconds();
    if gained <= 0 || took <= 0 {
        return None;
    }
    let remaining = i64::from(100 - last.percent_done);
    let millis = (remaining as i128 * took as i128 / gained as i128) as i64;
    Some(last.at + Duration::milliseconds(millis))
}

/// Whom the project waits on in a state: the business until it is ready
/// for delivery (an unanswered request included), then the client until
/// they confirm receipt; nobody once it has ended.
fn waiting_on(state: ProjectState) -> Option<Side> {
    match state {
        ProjectState::Requested | ProjectState::Planned | ProjectState::InProgress => {
            Some(Side::Business)
        }
        ProjectState::ReadyForDelivery => Some(Side::Client),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Business,
    Client,
}

/// Seconds spent waiting on the business and on the client, up to `now`
/// for a project still open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Waiting {
    pub on_business_seconds: i64,
    pub on_client_seconds: i64,
}

impl Waiting {
    pub fn add(&mut self, other: Waiting) {
        self.on_business_seconds += other.on_business_seconds;
        self.on_client_seconds += other.on_client_seconds;
    }
}

pub fn waiting(file: &ProjectFile, now: DateTime<Utc>) -> Waiting {
    let mut out = Waiting::default();
    for (i, change) in file.changes.iter().enumerate() {
        let until = file.changes.get(i + 1).map_or(now, |next| next.at);
        let seconds = (until - change.at).num_seconds().max(0);
        match waiting_on(change.state) {
            Some(Side::Business) => out.on_business_seconds += seconds,
            Some(Side::Client) => out.on_client_seconds += seconds,
            None => {}
        }
    }
    out
}

/// `/me/projects/counts`: proposed = requested and not yet answered (kept
/// waiting included), planned = accepted and not started, in_progress =
/// started and not yet delivered (ready for delivery included), finished
/// = delivered; refused and withdrawn in none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub proposed: u64,
    pub planned: u64,
    pub in_progress: u64,
    pub finished: u64,
}

pub fn counts<'a>(states: impl IntoIterator<Item = &'a ProjectState>) -> Counts {
    let mut out = Counts::default();
    for state in states {
        match state {
            ProjectState::Requested => out.proposed += 1,
            ProjectState::Planned => out.planned += 1,
            ProjectState::InProgress | ProjectState::ReadyForDelivery => out.in_progress += 1,
            ProjectState::Delivered => out.finished += 1,
            ProjectState::Refused | ProjectState::Withdrawn => {}
        }
    }
    out
}

/// One month of the project statistics (months in the business's zone).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Month {
    /// `2026-11`.
    pub month: String,
    pub requests: u64,
    /// Delivered that month: the agreed price (after re-plans), per currency.
    pub revenue: BTreeMap<String, Decimal>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Statistics {
    pub requests: u64,
    pub accepted: u64,
    pub refused: u64,
    /// accepted / (accepted + refused): the answered requests; `None`
    /// before any answer.
    pub acceptance_rate: Option<f64>,
    /// Mean hours from the request to its acceptance, over accepted ones.
    pub mean_hours_to_acceptance: Option<f64>,
    /// Mean hours from the start to confirmed delivery, over delivered ones.
    pub mean_hours_start_to_delivery: Option<f64>,
    pub waiting: Waiting,
    pub months: Vec<Month>,
}

fn mean_hours(spans: &[Duration]) -> Option<f64> {
    if spans.is_empty() {
        return None;
    }
    let total: i64 = spans.iter().map(|d| d.num_seconds()).sum();
    Some(total as f64 / spans.len() as f64 / 3600.0)
}

pub fn statistics(files: &[ProjectFile], zone: Tz, now: DateTime<Utc>) -> Statistics {
    let mut out = Statistics::default();
    let mut months: BTreeMap<String, Month> = BTreeMap::new();
    fn month(months: &mut BTreeMap<String, Month>, zone: Tz, t: DateTime<Utc>) -> &mut Month {
        let key = t.with_timezone(&zone).format("%Y-%m").to_string();
        months.entry(key.clone()).or_insert_with(|| Month {
            month: key,
            ..Default::default()
        })
    }
    let (mut to_acceptance, mut to_delivery) = (Vec::new(), Vec::new());
    for file in files {
        let Some(requested) = file.requested_at else {
            continue;
        };
        out.requests += 1;
        month(&mut months, zone, requested).requests += 1;
        if let Some(accepted) = file.accepted_at {
            out.accepted += 1;
            to_acceptance.push(accepted - requested);
        }
        if file.project.state == ProjectState::Refused {
            out.refused += 1;
        }
        if let (Some(started), Some(delivered)) = (file.started_at, file.delivered_at) {
            to_delivery.push(delivered - started);
            if let Some(agreement) = &file.project.agreement {
                *month(&mut months, zone, delivered)
                    .revenue
                    .entry(agreement.price.currency.clone())
                    .or_default() += agreement.price.amount;
            }
        }
        out.waiting.add(waiting(file, now));
    }
    let answered = out.accepted + out.refused;
    out.acceptance_rate = (answered > 0).then(|| out.accepted as f64 / answered as f64);
    out.mean_hours_to_acceptance = mean_hours(&to_acceptance);
    out.mean_hours_start_to_delivery = mean_hours(&to_delivery);
    out.months = months.into_values().collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn point(t: &str, percent_done: u8) -> Point {
        Point {
            at: at(t),
            percent_done,
        }
    }

    #[test]
    fn the_forecast_carries_the_recent_pace_on_to_100() {
        // A month-old start is outside the window; from Jan 5 (20 %) to
        // Jan 11 (50 %): 30 % in 6 days, 5 % a day; 50 % to go = 10 days.
        let series = [
            point("2026-12-01T00:00:00Z", 0),
            point("2027-01-05T00:00:00Z", 20),
            point("2027-01-11T00:00:00Z", 50),
        ];
        assert_eq!(forecast(&series), Some(at("2027-01-21T00:00:00Z")));
        // Twelve hours for 25 %: the other 25 % in twelve more.
        let fast = [
            point("2027-01-11T00:00:00Z", 50),
            point("2027-01-11T12:00:00Z", 75),
        ];
        assert_eq!(forecast(&fast), Some(at("2027-01-12T00:00:00Z")));
    }

    #[test]
    fn no_forecast_without_recent_progress() {
        assert_eq!(forecast(&[]), None);
        assert_eq!(forecast(&[point("2027-01-11T00:00:00Z", 50)]), None);
        let stalled = [
            point("2027-01-05T00:00:00Z", 50),
            point("2027-01-11T00:00:00Z", 40),
        ];
        assert_eq!(forecast(&stalled), None);
        let done = [point("2027-01-11T00:00:00Z", 100)];
        assert_eq!(forecast(&done), Some(at("2027-01-11T00:00:00Z")));
    }

    #[test]
    fn waiting_is_split_between_business_and_client() {
        let change = |t: &str, state| StateChange { at: at(t), state };
        let file = ProjectFile {
            changes: vec![
                change("2027-01-01T00:00:00Z", ProjectState::Requested),
                change("2027-01-02T00:00:00Z", ProjectState::Planned),
                change("2027-01-03T00:00:00Z", ProjectState::InProgress),
                change("2027-01-05T00:00:00Z", ProjectState::ReadyForDelivery),
            ],
            ..Default::default()
        };
        let w = waiting(&file, at("2027-01-05T06:00:00Z"));
        assert_eq!(w.on_business_seconds, 4 * 86_400);
        assert_eq!(w.on_client_seconds, 6 * 3600);
    }

    #[test]
    fn counts_follow_the_documented_buckets() {
        use ProjectState as S;
        let states = [
            S::Requested,
            S::Requested,
            S::Planned,
            S::InProgress,
            S::ReadyForDelivery,
            S::Delivered,
            S::Refused,
            S::Withdrawn,
        ];
        assert_eq!(
            counts(&states),
            Counts {
                proposed: 2,
                planned: 1,
                in_progress: 2,
                finished: 1
            }
        );
    }
}
