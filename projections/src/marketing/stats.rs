//! Campaign statistics, folded from `campaign_facts` (pure: the caller
//! chooses which facts — all, or those recorded up to an instant).
//!
//! The cohort of a campaign is the leads it brought whose creation falls on
//! a business date in `[from, to]`; what became of them is counted up to
//! the end of `to`: converted when a contract for the lead was signed on or
//! before `to`, its revenue the contract's amount (in the campaign's
//! currency); spend is the campaign's entries dated in `[from, to]`.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::queries::FactRow;

/// The business dates the figures are for (none when `from` is after `to`).
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub from: Option<NaiveDate>,
    pub to: NaiveDate,
    pub timezone: chrono_tz::Tz,
}

impl Window {
    fn date_of(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.timezone).date_naive()
    }

    fn covers(&self, day: NaiveDate) -> bool {
        self.from.is_none_or(|from| from <= day) && day <= self.to
    }
}

/// A campaign as the statistics need it.
#[derive(Debug, Clone)]
pub struct CampaignInfo {
    pub id: Uuid,
    pub name: String,
    pub currency: String,
}

/// Seconds spent in a stage by the leads that left it: the median and the
/// 90th percentile (nearest rank).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageTimes {
    pub leads: usize,
    pub median_seconds: Option<i64>,
    pub p90_seconds: Option<i64>,
}

impl StageTimes {
    fn of(mut seconds: Vec<i64>) -> Self {
        seconds.sort_unstable();
        let rank = |p: f64| {
            let n = seconds.len();
            (n > 0).then(|| seconds[((p * n as f64).ceil() as usize).clamp(1, n) - 1])
        };
        Self {
            leads: seconds.len(),
            median_seconds: rank(0.5),
            p90_seconds: rank(0.9),
        }
    }
}

/// How many of the cohort reached each stage (or passed it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Funnel {
    pub new: usize,
    pub in_progress: usize,
    pub converted: usize,
    /// Lost at the end of the window (not reopened since).
    pub lost: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CampaignFigures {
    pub campaign_id: Uuid,
    pub name: String,
    pub currency: String,
    pub leads_attracted: usize,
    pub leads_converted: usize,
    /// Converted / attracted (none without leads).
    pub conversion_rate: Option<f64>,
    pub revenue: Decimal,
    pub spend: Decimal,
    /// Revenue / spend, 2 decimals (none without spend).
    pub revenue_per_spend: Option<Decimal>,
    pub funnel: Funnel,
    pub time_new: StageTimes,
    pub time_in_progress: StageTimes,
}

/// What one lead's facts say, up to the end of the window.
#[derive(Default)]
struct Story {
    created: Option<DateTime<Utc>>,
    started: Option<DateTime<Utc>>,
    /// When it left `new` (started, lost or converted first).
    left_new: Option<DateTime<Utc>>,
    /// When it left `in_progress` after starting (lost or converted).
    left_progress: Option<DateTime<Utc>>,
    converted_at: Option<DateTime<Utc>>,
    lost: bool,
    /// Contracts signed within the window's end: (currency, amount).
    contracts: Vec<(String, Decimal)>,
}

pub fn fold(campaigns: &[CampaignInfo], facts: &[FactRow], window: Window) -> Vec<CampaignFigures> {
    let mut cohort: HashMap<Uuid, Uuid> = HashMap::new();
    let mut stories: HashMap<Uuid, Story> = HashMap::new();
    let mut spend: HashMap<Uuid, Decimal> = HashMap::new();
    for fact in facts {
        match fact.kind.as_str() {
            "spend" => {
                if let (Some(c), Some(on), Some(amount)) =
                    (fact.campaign_id, fact.on_date, fact.amount)
                {
                    if window.covers(on) {
                        *spend.entry(c).or_default() += amount;
                    }
                }
                continue;
            }
            "contract" => {
                let (Some(lead), Some(on), Some(amount), Some(currency)) =
                    (fact.lead_id, fact.on_date, fact.amount, &fact.currency)
                else {
                    continue;
                };
                if on <= window.to {
                    stories
                        .entry(lead)
                        .or_default()
                        .contracts
                        .push((currency.clone(), amount));
                }
                continue;
            }
            _ => {}
        }
        let Some(lead) = fact.lead_id else { continue };
        let at = fact.recorded_at;
        if window.date_of(at) > window.to {
            continue;
        }
        let story = stories.entry(lead).or_default();
        match fact.kind.as_str() {
            "lead_created" => {
                story.created = Some(at);
                if let Some(c) = fact.campaign_id {
                    if window.covers(window.date_of(at)) {
                        cohort.insert(lead, c);
                    }
                }
            }
            "lead_started" | "lead_reopened" => {
                story.left_new.get_or_insert(at);
                story.started.get_or_insert(at);
                story.lost = false;
            }
            "lead_lost" => {
                story.left_new.get_or_insert(at);
                if story.started.is_some() {
                    story.left_progress.get_or_insert(at);
                }
                story.lost = true;
            }
            "lead_converted" => {
                story.left_new.get_or_insert(at);
                if story.started.is_some() {
                    story.left_progress.get_or_insert(at);
                }
                story.converted_at = Some(at);
                story.lost = false;
            }
            _ => {}
        }
    }
    campaigns
        .iter()
        .map(|campaign| {
            let members: Vec<&Story> = cohort
                .iter()
                .filter(|(_, c)| **c == campaign.id)
                .filter_map(|(lead, _)| stories.get(lead))
                .collect();
            let converted: Vec<&&Story> =
                members.iter().filter(|s| !s.contracts.is_empty()).collect();
            let revenue: Decimal = converted
                .iter()
                .flat_map(|s| s.contracts.iter())
                .filter(|(currency, _)| *currency == campaign.currency)
                .map(|(_, amount)| *amount)
                .sum();
            let spent = spend.get(&campaign.id).copied().unwrap_or_default();
            let seconds = |from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>| {
                from.zip(to).map(|(a, b)| (b - a).num_seconds())
            };
            CampaignFigures {
                campaign_id: campaign.id,
                name: campaign.name.clone(),
                currency: campaign.currency.clone(),
                leads_attracted: members.len(),
                leads_converted: converted.len(),
                conversion_rate: (!members.is_empty())
                    .then(|| converted.len() as f64 / members.len() as f64),
                revenue,
                spend: spent,
                revenue_per_spend: (!spent.is_zero()).then(|| {
                    let mut ratio = (revenue / spent).round_dp(2);
                    ratio.rescale(2);
                    ratio
                }),
                funnel: Funnel {
                    new: members.len(),
                    in_progress: members
                        .iter()
                        .filter(|s| s.started.is_some() || !s.contracts.is_empty())
                        .count(),
                    converted: converted.len(),
                    lost: members.iter().filter(|s| s.lost).count(),
                },
                time_new: StageTimes::of(
                    members
                        .iter()
                        .filter_map(|s| seconds(s.created, s.left_new))
                        .collect(),
                ),
                time_in_progress: StageTimes::of(
                    members
                        .iter()
                        .filter_map(|s| seconds(s.started, s.left_progress))
                        .collect(),
                ),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_by_nearest_rank() {
        let times = StageTimes::of(vec![50, 10, 40, 20, 30]);
        assert_eq!(
            (times.leads, times.median_seconds, times.p90_seconds),
            (5, Some(30), Some(50))
        );
        assert_eq!(StageTimes::of(vec![]).median_seconds, None);
    }
}
