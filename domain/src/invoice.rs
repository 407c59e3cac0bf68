//! Invoices: `issued → paid | void`, each payment with its receipt (an
//! uploaded file); overdue is derived from the due date. Numbers are
//! sequential per year and gap-free: each is taken from the year's counter
//! (`InvoiceNumbers`) in the same commit that issues the invoice, so a
//! refused or failed issue takes no number.

use chrono::NaiveDate;
use cqrs_es::DomainEvent;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::Money;
use crate::{FieldError, RuleKind, RuleViolation};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub description: String,
    pub amount: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Issue {
    pub customer_id: Uuid,
    /// `2026-00001`.
    pub number: String,
    pub amount: Money,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub lines: Vec<Line>,
}

impl Issue {
    pub fn check(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.due_date < self.issue_date {
            errors.push(FieldError::new("due_date", "must not be before issue_date"));
        }
        if self.lines.len() > 200 {
            errors.push(FieldError::new("lines", "at most 200 lines"));
        }
        for (i, line) in self.lines.iter().enumerate() {
            let text = line.description.trim();
            if text.is_empty() || text.chars().count() > 500 {
                errors.push(FieldError::new(
                    format!("lines[{i}].description"),
                    "must be 1 to 500 characters",
                ));
            }
        }
        if !self.lines.is_empty() {
            let total: Decimal = self.lines.iter().map(|l| l.amount).sum();
            if total != self.amount.amount {
                errors.push(FieldError::new(
                    "lines",
                    format!("the lines add up to {total}, not {}", self.amount.amount),
                ));
            }
        }
        if self.amount.amount.is_zero() {
            errors.push(FieldError::new("amount", "must be more than 0"));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    pub payment_id: Uuid,
    pub amount: Decimal,
    pub paid_on: NaiveDate,
    /// The receipt: an uploaded file.
    pub receipt_file_id: Uuid,
    pub recorded_by: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InvoiceCommand {
    Issue(Issue),
    Pay { payment: Payment, currency: String },
    Void { reason: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InvoiceEvent {
    Issued(Issue),
    PaymentRecorded(Payment),
    /// Paid in full (with the payment that completed it).
    Paid,
    Voided {
        reason: String,
    },
}

impl DomainEvent for InvoiceEvent {
    fn event_type(&self) -> String {
        match self {
            InvoiceEvent::Issued(_) => "InvoiceIssued",
            InvoiceEvent::PaymentRecorded(_) => "InvoicePaymentRecorded",
            InvoiceEvent::Paid => "InvoicePaid",
            InvoiceEvent::Voided { .. } => "InvoiceVoided",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceError {
    #[error("the invoice exists already")]
    Exists,
    #[error("no such invoice")]
    NotFound,
    #[error("the invoice is {0}")]
    Closed(&'static str),
    #[error("{paid} of {amount} is paid; {amount_now} more is too much")]
    Overpaid {
        amount: Decimal,
        paid: Decimal,
        amount_now: Decimal,
    },
    #[error("the invoice's currency is {0}")]
    Currency(String),
    #[error("invalid")]
    Invalid(Vec<FieldError>),
}

impl RuleViolation for InvoiceError {
    fn kind(&self) -> RuleKind {
        match self {
            InvoiceError::NotFound => RuleKind::NotFound,
            InvoiceError::Invalid(fields) => RuleKind::Invalid(fields.clone()),
            _ => RuleKind::Conflict,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            InvoiceError::Exists => "exists",
            InvoiceError::NotFound => "not-found",
            InvoiceError::Closed(_) => "invoice-closed",
            InvoiceError::Overpaid { .. } => "overpaid",
            InvoiceError::Currency(_) => "currency-mismatch",
            InvoiceError::Invalid(_) => "validation",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    #[default]
    Issued,
    Paid,
    Void,
}

impl InvoiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Issued => "issued",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Void => "void",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Invoice {
    pub issue: Option<Issue>,
    pub status: InvoiceStatus,
    pub payments: Vec<Payment>,
    pub void_reason: Option<String>,
}

impl Invoice {
    pub fn paid(&self) -> Decimal {
        self.payments.iter().map(|p| p.amount).sum()
    }

    /// Issued, unpaid and past its due date on `day`.
    pub fn overdue(&self, day: NaiveDate) -> bool {
        self.status == InvoiceStatus::Issued
            && self.issue.as_ref().is_some_and(|i| day > i.due_date)
    }
}

pub fn decide(state: &Invoice, command: InvoiceCommand) -> Result<Vec<InvoiceEvent>, InvoiceError> {
    if let InvoiceCommand::Issue(issue) = command {
        if state.issue.is_some() {
            return Err(InvoiceError::Exists);
        }
        issue.check().map_err(InvoiceError::Invalid)?;
        return Ok(vec![InvoiceEvent::Issued(issue)]);
    }
    let issue = state.issue.as_ref().ok_or(InvoiceError::NotFound)?;
    match command {
        InvoiceCommand::Issue(_) => unreachable!("handled above"),
        InvoiceCommand::Pay { payment, currency } => {
            if state.status != InvoiceStatus::Issued {
                return Err(InvoiceError::Closed(state.status.as_str()));
            }
            if currency != issue.amount.currency {
                return Err(InvoiceError::Currency(issue.amount.currency.clone()));
            }
            if payment.amount <= Decimal::ZERO {
                return Err(InvoiceError::Invalid(vec![FieldError::new(
                    "amount",
                    "must be more than 0",
                )]));
            }
            let paid = state.paid();
            if paid + payment.amount > issue.amount.amount {
                return Err(InvoiceError::Overpaid {
                    amount: issue.amount.amount,
                    paid,
                    amount_now: payment.amount,
                });
            }
            let full = paid + payment.amount == issue.amount.amount;
            let mut events = vec![InvoiceEvent::PaymentRecorded(payment)];
            if full {
                events.push(InvoiceEvent::Paid);
            }
            Ok(events)
        }
        InvoiceCommand::Void { reason } => {
            if state.status != InvoiceStatus::Issued {
                return Err(InvoiceError::Closed(state.status.as_str()));
            }
            let reason = reason.trim().to_string();
            if reason.is_empty() || reason.chars().count() > 500 {
                return Err(InvoiceError::Invalid(vec![FieldError::new(
                    "reason",
                    "must be 1 to 500 characters",
                )]));
            }
            Ok(vec![InvoiceEvent::Voided { reason }])
        }
    }
}

pub fn evolve(state: &mut Invoice, event: &InvoiceEvent) {
    match event {
        InvoiceEvent::Issued(issue) => state.issue = Some(issue.clone()),
        InvoiceEvent::PaymentRecorded(payment) => state.payments.push(payment.clone()),
        InvoiceEvent::Paid => state.status = InvoiceStatus::Paid,
        InvoiceEvent::Voided { reason } => {
            state.status = InvoiceStatus::Void;
            state.void_reason = Some(reason.clone());
        }
    }
}

crate::decider_aggregate!(
    Invoice,
    "invoice",
    InvoiceCommand,
    InvoiceEvent,
    InvoiceError,
    decide,
    evolve
);

// ---------------------------------------------------------------- numbers

/// A year's invoice numbers: the next one, and which invoice took each.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InvoiceNumbers {
    pub taken: u32,
}

impl InvoiceNumbers {
    pub fn format(year: i32, n: u32) -> String {
        format!("{year}-{n:05}")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NumberCommand {
    Take { invoice_id: Uuid },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NumberEvent {
    Taken { n: u32, invoice_id: Uuid },
}

impl DomainEvent for NumberEvent {
    fn event_type(&self) -> String {
        "InvoiceNumberTaken".into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("the year's numbers are used up")]
    UsedUp,
}

impl RuleViolation for NumberError {
    fn kind(&self) -> RuleKind {
        RuleKind::Conflict
    }
    fn code(&self) -> &'static str {
        "numbers-used-up"
    }
}

pub fn decide_number(
    state: &InvoiceNumbers,
    command: NumberCommand,
) -> Result<Vec<NumberEvent>, NumberError> {
    match command {
        NumberCommand::Take { invoice_id } => {
            let n = state
                .taken
                .checked_add(1)
                .filter(|n| *n <= 99_999)
                .ok_or(NumberError::UsedUp)?;
            Ok(vec![NumberEvent::Taken { n, invoice_id }])
        }
    }
}

pub fn evolve_number(state: &mut InvoiceNumbers, event: &NumberEvent) {
    match event {
        NumberEvent::Taken { n, .. } => state.taken = *n,
    }
}

crate::decider_aggregate!(
    InvoiceNumbers,
    "invoice_numbers",
    NumberCommand,
    NumberEvent,
    NumberError,
    decide_number,
    evolve_number
);

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(amount: &str) -> Issue {
        Issue {
            customer_id: Uuid::nil(),
            number: "2026-00001".into(),
            amount: Money::parse("amount", amount, "EUR").unwrap(),
            issue_date: "2026-12-01".parse().unwrap(),
            due_date: "2026-12-15".parse().unwrap(),
            lines: vec![],
        }
    }

    fn pay(amount: &str) -> InvoiceCommand {
        InvoiceCommand::Pay {
            payment: Payment {
                payment_id: Uuid::now_v7(),
                amount: amount.parse().unwrap(),
                paid_on: "2026-12-02".parse().unwrap(),
                receipt_file_id: Uuid::nil(),
                recorded_by: None,
            },
            currency: "EUR".into(),
        }
    }

    fn then(state: &mut Invoice, command: InvoiceCommand) -> Vec<InvoiceEvent> {
        let events = decide(state, command).unwrap();
        for e in &events {
            evolve(state, e);
        }
        events
    }

    #[test]
    fn payments_make_it_paid_when_they_reach_the_amount_and_never_more() {
        let mut state = Invoice::default();
        then(&mut state, InvoiceCommand::Issue(issue("100.00")));
        assert_eq!(then(&mut state, pay("40.00")).len(), 1);
        assert!(matches!(
            decide(&state, pay("70.00")),
            Err(InvoiceError::Overpaid { .. })
        ));
        let events = then(&mut state, pay("60.00"));
        assert_eq!(events.last(), Some(&InvoiceEvent::Paid));
        assert_eq!(state.status, InvoiceStatus::Paid);
        assert_eq!(
            decide(&state, pay("1.00")),
            Err(InvoiceError::Closed("paid"))
        );
        assert!(!state.overdue("2027-01-01".parse().unwrap()));
    }

    #[test]
    fn overdue_is_derived_and_void_closes_it() {
        let mut state = Invoice::default();
        then(&mut state, InvoiceCommand::Issue(issue("100.00")));
        assert!(!state.overdue("2026-12-15".parse().unwrap()));
        assert!(state.overdue("2026-12-16".parse().unwrap()));
        then(
            &mut state,
            InvoiceCommand::Void {
                reason: "duplicate".into(),
            },
        );
        assert!(!state.overdue("2026-12-16".parse().unwrap()));
        assert_eq!(
            decide(&state, pay("1.00")),
            Err(InvoiceError::Closed("void"))
        );
    }

    #[test]
    fn lines_must_add_up_and_due_follows_issue() {
        let mut bad = issue("100.00");
        bad.lines = vec![Line {
            description: "Design".into(),
            amount: "60".parse().unwrap(),
        }];
        bad.due_date = "2026-11-01".parse().unwrap();
        let Err(InvoiceError::Invalid(fields)) =
            decide(&Invoice::default(), InvoiceCommand::Issue(bad))
        else {
            panic!("refused")
        };
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["due_date", "lines"]);
    }

    #[test]
    fn numbers_follow_on_without_gaps() {
        let mut numbers = InvoiceNumbers::default();
        for expected in 1..=3 {
            let events = decide_number(
                &numbers,
                NumberCommand::Take {
                    invoice_id: Uuid::nil(),
                },
            )
            .unwrap();
            evolve_number(&mut numbers, &events[0]);
            assert_eq!(numbers.taken, expected);
        }
        assert_eq!(InvoiceNumbers::format(2026, 3), "2026-00003");
    }
}
