//! What the notifier says about which event: one table, event type →
//! template. A later domain adds its alerts as entries here.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use annals_domain::appointment::{AppointmentEvent, Booking};
use annals_domain::shop::{Delivery, OrderEvent};
use annals_domain::StoredEvent;

/// A staff alert, before names are looked up.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub headline: &'static str,
    pub lines: Vec<(&'static str, Ref)>,
    /// Link-style reference to the thing (`appointment/<id>`).
    pub link: String,
}

/// A value shown in an alert; ids become names when the read models know them.
#[derive(Debug, Clone, PartialEq)]
pub enum Ref {
    User(Uuid),
    Service(Uuid),
    Time(DateTime<Utc>),
    Text(String),
    /// Look up client, service, master and time of this appointment.
    Appointment(Uuid),
    /// A campaign, by its name.
    Campaign(Uuid),
}

pub type Template = fn(&StoredEvent) -> Option<Alert>;

/// Every staff alert.
pub const ALERTS: &[(&str, Template)] = &[
    ("AppointmentBooked", appointment_booked),
    ("AppointmentCancelled", appointment_cancelled),
    ("AppointmentRescheduled", appointment_rescheduled),
    ("OrderPlaced", order_placed),
    ("LeadCreated", lead_created),
    ("ProjectRequested", project_requested),
];

pub fn template(event_type: &str) -> Option<Template> {
    ALERTS
        .iter()
        .find(|(t, _)| *t == event_type)
        .map(|(_, f)| *f)
}

fn appointment(event: &StoredEvent) -> Option<(Uuid, AppointmentEvent)> {
    let id = Uuid::parse_str(&event.aggregate_id).ok()?;
    Some((id, serde_json::from_value(event.payload.clone()).ok()?))
}

fn booking_lines(b: &Booking) -> Vec<(&'static str, Ref)> {
    vec![
        ("Client", Ref::User(b.client_id)),
        ("Service", Ref::Service(b.service_id)),
        ("Master", Ref::User(b.master_id)),
        ("Time", Ref::Time(b.start)),
    ]
}

fn appointment_booked(event: &StoredEvent) -> Option<Alert> {
    let (id, AppointmentEvent::Booked(b)) = appointment(event)? else {
        return None;
    };
    Some(Alert {
        headline: "New appointment",
        lines: booking_lines(&b),
        link: format!("appointment/{id}"),
    })
}

fn appointment_cancelled(event: &StoredEvent) -> Option<Alert> {
    let (id, AppointmentEvent::Cancelled { reason }) = appointment(event)? else {
        return None;
    };
    Some(Alert {
        headline: "Appointment cancelled",
        lines: vec![
            ("Appointment", Ref::Appointment(id)),
            ("Reason", Ref::Text(reason)),
        ],
        link: format!("appointment/{id}"),
    })
}

fn appointment_rescheduled(event: &StoredEvent) -> Option<Alert> {
    let (
        id,
        AppointmentEvent::Rescheduled {
            from_start,
            to_start,
            to_master_id,
            ..
        },
    ) = appointment(event)?
    else {
        return None;
    };
    Some(Alert {
        headline: "Appointment rescheduled",
        lines: vec![
            ("Appointment", Ref::Appointment(id)),
            ("From", Ref::Time(from_start)),
            ("To", Ref::Time(to_start)),
            ("Master", Ref::User(to_master_id)),
        ],
        link: format!("appointment/{id}"),
    })
}

fn order_placed(event: &StoredEvent) -> Option<Alert> {
    let id = Uuid::parse_str(&event.aggregate_id).ok()?;
    let OrderEvent::Placed(placed) = serde_json::from_value(event.payload.clone()).ok()? else {
        return None;
    };
    let items: u32 = placed.lines.iter().map(|l| l.quantity).sum();
    let delivery = match &placed.delivery {
        Delivery::Pickup => "pickup".to_string(),
        Delivery::Shipping(a) => format!("shipping to {}, {}", a.city, a.country),
    };
    Some(Alert {
        headline: "New order",
        lines: vec![
            ("Order", Ref::Text(placed.number.clone())),
            ("Customer", Ref::Text(placed.customer.name.clone())),
            (
                "Total",
                Ref::Text(format!(
                    "{} {} ({items} items)",
                    placed.total, placed.currency
                )),
            ),
            ("Delivery", Ref::Text(delivery)),
        ],
        link: format!("order/{id}"),
    })
}

fn lead_created(event: &StoredEvent) -> Option<Alert> {
    use annals_domain::marketing::LeadEvent;
    let id = Uuid::parse_str(&event.aggregate_id).ok()?;
    let LeadEvent::Created { info, .. } = serde_json::from_value(event.payload.clone()).ok()?
    else {
        return None;
    };
    let mut lines = vec![("Name", Ref::Text(info.full_name))];
    if let Some(phone) = info.phone {
        lines.push(("Phone", Ref::Text(phone.as_str().to_string())));
    }
    if let Some(email) = info.email {
        lines.push(("E-mail", Ref::Text(email.as_str().to_string())));
    }
    if let Some(campaign) = info.campaign_id {
        lines.push(("Campaign", Ref::Campaign(campaign)));
    }
    Some(Alert {
        headline: "New lead",
        lines,
        link: format!("lead/{id}"),
    })
}

fn project_requested(event: &StoredEvent) -> Option<Alert> {
    use annals_domain::projects::ProjectEvent;
    let id = Uuid::parse_str(&event.aggregate_id).ok()?;
    let ProjectEvent::Requested(request) = serde_json::from_value(event.payload.clone()).ok()?
    else {
        return None;
    };
    let mut lines = vec![
        ("Client", Ref::User(request.client_id)),
        ("Title", Ref::Text(request.title)),
    ];
    if let Some(deadline) = request.desired_deadline {
        lines.push(("Wanted by", Ref::Text(deadline.to_string())));
    }
    if let Some(budget) = request.budget_hint {
        lines.push((
            "Budget",
            Ref::Text(format!("{} {}", budget.amount, budget.currency)),
        ));
    }
    Some(Alert {
        headline: "New project request",
        lines,
        link: format!("project/{id}"),
    })
}
