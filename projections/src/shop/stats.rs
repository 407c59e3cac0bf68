//! Order statistics: revenue by month, category or product, the average
//! order value and the dealers' share, folded from the orders read model.
//! Revenue counts orders once they are paid (by the month they were paid),
//! at their line totals; refunds are reported beside it, as an order-level
//! figure, not spread over categories or products.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::queries::OrderRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Month,
    Category,
    Product,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Group {
    /// `2026-11`, a category id or a product id.
    pub key: String,
    /// A product's name (as ordered); for categories the caller names them.
    pub label: String,
    pub orders: u64,
    pub quantity: u64,
    pub revenue: Decimal,
    pub dealer_revenue: Decimal,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct OrderStats {
    pub orders: u64,
    pub revenue: Decimal,
    pub refunded: Decimal,
    pub average_order_value: Decimal,
    pub dealer_revenue: Decimal,
    /// Dealer revenue / revenue, 0–1 (4 places).
    pub dealer_share: Decimal,
    /// By revenue, largest first (months: in time order).
    pub groups: Vec<Group>,
}

/// The statistics of `orders`, all in one currency.
pub fn fold(orders: &[OrderRow], by: GroupBy) -> OrderStats {
    let mut stats = OrderStats::default();
    let mut groups = BTreeMap::<String, Group>::new();
    for order in orders {
        stats.orders += 1;
        stats.revenue += order.total;
        stats.refunded += order.refunded;
        if order.dealer {
            stats.dealer_revenue += order.total;
        }
        let month = order.paid_at.as_deref().unwrap_or(&order.placed_at);
        let mut seen = std::collections::BTreeSet::new();
        for line in &order.lines {
            let (key, label) = match by {
                GroupBy::Month => (month.get(..7).unwrap_or(month).to_string(), String::new()),
                GroupBy::Category => (line.category_id.to_string(), String::new()),
                GroupBy::Product => (line.product_id.to_string(), line.name.clone()),
            };
            let group = groups.entry(key.clone()).or_insert_with(|| Group {
                key: key.clone(),
                label,
                ..Group::default()
            });
            if seen.insert(key) {
                group.orders += 1;
            }
            group.quantity += u64::from(line.quantity);
            group.revenue += line.line_total;
            if order.dealer {
                group.dealer_revenue += line.line_total;
            }
        }
    }
    if stats.orders > 0 {
        stats.average_order_value = (stats.revenue / Decimal::from(stats.orders)).round_dp(2);
    }
    if !stats.revenue.is_zero() {
        stats.dealer_share = (stats.dealer_revenue / stats.revenue).round_dp(4);
    }
    let mut groups: Vec<Group> = groups.into_values().collect();
    if by != GroupBy::Month {
        groups.sort_by(|a, b| b.revenue.cmp(&a.revenue).then(a.key.cmp(&b.key)));
    }
    stats.groups = groups;
    stats
}
