//! The one permission matrix: which roles may perform which action, and
//! which action each route performs. The README prints this table; the
//! tests call every route as every role from it.

use annals_domain::user::Role;

/// Everything a caller can ask Annals to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Sign up as a client.
    Register,
    LogIn,
    /// Ask for / use a password reset e-mail.
    ResetPassword,
    LogOut,
    ReadOwnProfile,
    UpdateOwnProfile,
    ChangeOwnPassword,
    ListUsers,
    ManageRoles,
    ManageActivation,
    /// Erase a person's personal data (crypto-shredding).
    ErasePersonalData,
    /// The public catalog: categories, services, masters, availability.
    ReadCatalog,
    /// Create and change categories, services, masters and their hours.
    ManageCatalog,
    /// Book an appointment (a client for themself; staff for a client).
    BookAppointment,
    /// Read appointments: clients their own, masters theirs, staff all.
    ReadAppointments,
    /// Cancel or reschedule (clients their own, within the notice period).
    ChangeAppointment,
    /// Confirm, complete, mark as no-show.
    ProcessAppointment,
    /// A master's schedule with free gaps (masters their own).
    ReadSchedule,
    /// Business statistics.
    ReadStatistics,
    /// A client's own dashboard.
    ReadOwnDashboard,
    /// The Telegram notifier's settings.
    ManageNotifier,
    /// Link or unlink one's own Telegram chat (for reminders).
    LinkOwnTelegram,
    /// The shop's catalog: product categories, products, the storefront.
    ReadShop,
    /// Create and change product categories, products and their stock.
    ManageShop,
    /// A cart (one's own, or a guest's by its id) and checkout.
    Shop,
    /// Orders: clients their own, staff all.
    ReadOrders,
    /// Payments, shipping, pickup, cancelling and refunds.
    ProcessOrders,
    /// The payment provider's webhook (authenticated by its signature).
    ReportPayment,
    /// Apply to the dealer program and see one's standing.
    ApplyForDealer,
    /// List and decide dealer applications.
    ManageDealers,
    /// The studio's plans on offer.
    ReadPlans,
    /// Plans, subscriptions, their payments, freezes and cancellation.
    ManageSubscriptions,
    /// The subscriber lists and the expiry forecast.
    ReadSubscribers,
    /// Subscriptions: clients their own, staff all.
    ReadSubscriptions,
    /// Groups, trainings, invitations and meeting links.
    ManageTrainings,
    /// Trainings: staff and coaches all, clients those they are invited to;
    /// answering one's own invitation.
    AttendTrainings,
    /// Whether an invitee came (admin, manager, the training's coach).
    RecordAttendance,
    /// Send broadcasts to clients and follow their delivery.
    ManageBroadcasts,
    /// Create and change the catalog's services (advertised by campaigns).
    ManageServices,
    /// Read campaigns (to attribute leads).
    ReadCampaigns,
    /// Plan, run, cancel campaigns; their budget and spend.
    ManageCampaigns,
    /// Create and work leads: edit, start, lose, reopen, notes, assignment.
    ManageLeads,
    /// Read leads and their history.
    ReadLeads,
    /// Convert a lead into a customer with a contract.
    ConvertLeads,
    /// Read contracts and the customers they belong to.
    ReadContracts,
    /// Upload files (contract documents, receipts, a project's brief).
    UploadFiles,
    /// Download a file (the handler checks what it belongs to: 403 for
    /// roles that may not see that).
    ReadFiles,
    /// The campaign statistics.
    ReadCampaignStatistics,
    /// Customers, their page, scheduled messages and the due reminders;
    /// reading invoices.
    ManageCustomers,
    /// Issue invoices, record payments with receipts, void.
    ManageInvoices,
    /// Request a project (as its client).
    RequestProjects,
    /// Projects, their history and progress: clients their own, staff all.
    ReadProjects,
    /// Accept, refuse, keep waiting, start, report progress, re-plan,
    /// deliver.
    ManageProjects,
    /// Withdraw one's request, confirm receipt (the handler checks that the
    /// project is the caller's).
    ChangeOwnProjects,
    /// The project statistics.
    ReadProjectStatistics,
    /// Send messages to clients.
    SendClientMessages,
    /// Read messages: clients their own (reading marks them read), staff all.
    ReadClientMessages,
    /// Give feedback, read one's own (staff read all).
    GiveFeedback,
    /// Mark feedback handled.
    HandleFeedback,
    /// The public products roadmap.
    ReadRoadmap,
    /// Plan roadmap products, move them on, see the demand.
    ManageRoadmap,
    /// Ask to buy a roadmap product that is not available yet.
    RegisterInterest,
    /// The audit routes: the event feed, any aggregate's history and
    /// state as of any time, the hash chain's verification.
    ReadAudit,
}

/// Who may perform an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Any signed-in user, whatever their roles.
    SignedIn,
    /// Signed-in users holding one of these roles.
    Roles(&'static [Role]),
    /// Anyone whose request carries a valid signature (the handler checks
    /// it; without one the answer is 401, whoever signs in).
    Signed,
}

/// The matrix: role × action, in one place.
pub const MATRIX: &[(Action, Access)] = &[
    (Action::Register, Access::Public),
    (Action::LogIn, Access::Public),
    (Action::ResetPassword, Access::Public),
    (Action::LogOut, Access::SignedIn),
    (Action::ReadOwnProfile, Access::SignedIn),
    (Action::UpdateOwnProfile, Access::Roles(CHANGERS)),
    (Action::ChangeOwnPassword, Access::SignedIn),
    (Action::ListUsers, Access::Roles(&[Role::Admin])),
    (Action::ManageRoles, Access::Roles(&[Role::Admin])),
    (Action::ManageActivation, Access::Roles(&[Role::Admin])),
    (Action::ErasePersonalData, Access::Roles(&[Role::Admin])),
    (Action::ReadCatalog, Access::Public),
    (
        Action::ManageCatalog,
        Access::Roles(&[Role::Admin, Role::Manager]),
    ),
    (Action::BookAppointment, Access::Roles(CHANGERS)),
    (Action::ReadAppointments, Access::SignedIn),
    (Action::ChangeAppointment, Access::Roles(CHANGERS)),
    (
        Action::ProcessAppointment,
        Access::Roles(&[Role::Admin, Role::Manager, Role::Operator, Role::Master]),
    ),
    (
        Action::ReadSchedule,
        Access::Roles(&[Role::Admin, Role::Manager, Role::Operator, Role::Master]),
    ),
    (
        Action::ReadStatistics,
        Access::Roles(&[Role::Admin, Role::Manager, Role::Marketer]),
    ),
    (Action::ReadOwnDashboard, Access::SignedIn),
    (Action::ManageNotifier, Access::Roles(&[Role::Admin])),
    (Action::LinkOwnTelegram, Access::Roles(CHANGERS)),
    (Action::ReadShop, Access::Public),
    (
        Action::ManageShop,
        Access::Roles(&[Role::Admin, Role::Manager]),
    ),
    (Action::Shop, Access::Public),
    (Action::ReadOrders, Access::SignedIn),
    (
        Action::ProcessOrders,
        Access::Roles(&[Role::Admin, Role::Manager, Role::Operator]),
    ),
    (Action::ReportPayment, Access::Signed),
    (Action::ApplyForDealer, Access::Roles(CHANGERS)),
    (
        Action::ManageDealers,
        Access::Roles(&[Role::Admin, Role::Manager]),
    ),
    (Action::ReadPlans, Access::Public),
    (
        Action::ManageSubscriptions,
        Access::Roles(&[Role::Admin, Role::Manager]),
    ),
    (
        Action::ReadSubscribers,
        Access::Roles(&[Role::Admin, Role::Manager, Role::Operator]),
    ),
    (Action::ReadSubscriptions, Access::SignedIn),
    (
        Action::ManageTrainings,
        Access::Roles(&[Role::Admin, Role::Manager]),
    ),
    (Action::AttendTrainings, Access::Roles(CHANGERS)),
    (
        Action::RecordAttendance,
        Access::Roles(&[Role::Admin, Role::Manager, Role::Master]),
    ),
    (
        Action::ManageBroadcasts,
        Access::Roles(&[Role::Admin, Role::Manager]),
    ),
    (
        Action::ManageServices,
        Access::Roles(&[Role::Admin, Role::Manager, Role::Marketer]),
    ),
    (Action::ReadCampaigns, Access::Roles(MARKETING_STAFF)),
    (
        Action::ManageCampaigns,
        Access::Roles(&[Role::Admin, Role::Marketer]),
    ),
    (
        Action::ManageLeads,
        Access::Roles(&[Role::Admin, Role::Operator]),
    ),
    (
        Action::ReadLeads,
        Access::Roles(&[Role::Admin, Role::Manager, Role::Operator]),
    ),
    (
        Action::ConvertLeads,
        Access::Roles(&[Role::Admin, Role::Manager]),
    ),
    (
        Action::ReadContracts,
        Access::Roles(&[Role::Admin, Role::Manager]),
    ),
    (Action::UploadFiles, Access::Roles(CHANGERS)),
    (Action::ReadFiles, Access::SignedIn),
    (
        Action::ReadCampaignStatistics,
        Access::Roles(MARKETING_STAFF),
    ),
    (
        Action::ManageCustomers,
        Access::Roles(&[Role::Admin, Role::Manager, Role::Operator]),
    ),
    (
        Action::ManageInvoices,
        Access::Roles(&[Role::Admin, Role::Manager]),
    ),
    (Action::RequestProjects, Access::Roles(CHANGERS)),
    (Action::ReadProjects, Access::SignedIn),
    (
        Action::ManageProjects,
        Access::Roles(&[Role::Admin, Role::Manager]),
    ),
    (Action::ChangeOwnProjects, Access::Roles(CHANGERS)),
    (
        Action::ReadProjectStatistics,
        Access::Roles(&[Role::Admin, Role::Manager]),
    ),
    (
        Action::SendClientMessages,
        Access::Roles(&[Role::Admin, Role::Manager, Role::Operator]),
    ),
    (Action::ReadClientMessages, Access::SignedIn),
    (Action::GiveFeedback, Access::Roles(CHANGERS)),
    (
        Action::HandleFeedback,
        Access::Roles(&[Role::Admin, Role::Manager, Role::Operator]),
    ),
    (Action::ReadRoadmap, Access::Public),
    (
        Action::ManageRoadmap,
        Access::Roles(&[Role::Admin, Role::Manager]),
    ),
    (Action::RegisterInterest, Access::Roles(CHANGERS)),
    (
        Action::ReadAudit,
        Access::Roles(&[Role::Admin, Role::Auditor]),
    ),
];

/// Every role but the auditor's: those who may change things (the
/// actions any signed-in user may take that change something).
pub const CHANGERS: &[Role] = &[
    Role::Admin,
    Role::Manager,
    Role::Operator,
    Role::Marketer,
    Role::Master,
    Role::Client,
    Role::Dealer,
];

/// The roles of the marketing side (every one reads the campaign
/// statistics).
pub const MARKETING_STAFF: &[Role] = &[Role::Admin, Role::Manager, Role::Operator, Role::Marketer];

/// Staff who act on any client's appointments (book for them, cancel late).
pub const APPOINTMENT_STAFF: &[Role] = &[Role::Admin, Role::Manager, Role::Operator];

/// Every API route (method, path under the server root) and its action.
/// A route missing here is refused with 403, and a test fails.
pub const ROUTES: &[(&str, &str, Action)] = &[
    ("POST", "/api/v1/auth/register", Action::Register),
    ("POST", "/api/v1/auth/login", Action::LogIn),
    ("POST", "/api/v1/auth/logout", Action::LogOut),
    ("POST", "/api/v1/auth/password-reset", Action::ResetPassword),
    (
        "POST",
        "/api/v1/auth/password-reset/confirm",
        Action::ResetPassword,
    ),
    ("GET", "/api/v1/me", Action::ReadOwnProfile),
    ("PUT", "/api/v1/me", Action::UpdateOwnProfile),
    ("POST", "/api/v1/me/password", Action::ChangeOwnPassword),
    ("GET", "/api/v1/users", Action::ListUsers),
    ("GET", "/api/v1/users/{id}", Action::ListUsers),
    ("POST", "/api/v1/users/{id}/roles", Action::ManageRoles),
    (
        "DELETE",
        "/api/v1/users/{id}/roles/{role}",
        Action::ManageRoles,
    ),
    (
        "POST",
        "/api/v1/users/{id}/deactivate",
        Action::ManageActivation,
    ),
    (
        "POST",
        "/api/v1/users/{id}/erase",
        Action::ErasePersonalData,
    ),
    (
        "POST",
        "/api/v1/users/{id}/reactivate",
        Action::ManageActivation,
    ),
    ("GET", "/api/v1/service-categories", Action::ReadCatalog),
    ("POST", "/api/v1/service-categories", Action::ManageCatalog),
    (
        "GET",
        "/api/v1/service-categories/{id}",
        Action::ReadCatalog,
    ),
    ("GET", "/api/v1/services", Action::ReadCatalog),
    ("POST", "/api/v1/services", Action::ManageServices),
    ("GET", "/api/v1/services/{id}", Action::ReadCatalog),
    ("PUT", "/api/v1/services/{id}", Action::ManageServices),
    (
        "POST",
        "/api/v1/services/{id}/deactivate",
        Action::ManageServices,
    ),
    ("GET", "/api/v1/masters", Action::ReadCatalog),
    ("POST", "/api/v1/masters", Action::ManageCatalog),
    ("GET", "/api/v1/masters/{id}", Action::ReadCatalog),
    (
        "PUT",
        "/api/v1/masters/{id}/working-hours",
        Action::ManageCatalog,
    ),
    (
        "POST",
        "/api/v1/masters/{id}/days-off",
        Action::ManageCatalog,
    ),
    ("GET", "/api/v1/availability", Action::ReadCatalog),
    ("POST", "/api/v1/appointments", Action::BookAppointment),
    ("GET", "/api/v1/appointments", Action::ReadAppointments),
    ("GET", "/api/v1/appointments/{id}", Action::ReadAppointments),
    (
        "GET",
        "/api/v1/appointments/{id}/history",
        Action::ReadAppointments,
    ),
    (
        "POST",
        "/api/v1/appointments/{id}/cancel",
        Action::ChangeAppointment,
    ),
    (
        "POST",
        "/api/v1/appointments/{id}/reschedule",
        Action::ChangeAppointment,
    ),
    (
        "POST",
        "/api/v1/appointments/{id}/confirm",
        Action::ProcessAppointment,
    ),
    (
        "POST",
        "/api/v1/appointments/{id}/complete",
        Action::ProcessAppointment,
    ),
    (
        "POST",
        "/api/v1/appointments/{id}/no-show",
        Action::ProcessAppointment,
    ),
    ("GET", "/api/v1/masters/{id}/schedule", Action::ReadSchedule),
    ("GET", "/api/v1/stats/appointments", Action::ReadStatistics),
    ("GET", "/api/v1/me/dashboard", Action::ReadOwnDashboard),
    ("GET", "/api/v1/notifier/settings", Action::ManageNotifier),
    ("PUT", "/api/v1/notifier/settings", Action::ManageNotifier),
    ("GET", "/api/v1/notifier/parked", Action::ManageNotifier),
    (
        "POST",
        "/api/v1/notifier/parked/retry",
        Action::ManageNotifier,
    ),
    ("POST", "/api/v1/me/telegram-link", Action::LinkOwnTelegram),
    (
        "DELETE",
        "/api/v1/me/telegram-link",
        Action::LinkOwnTelegram,
    ),
    ("GET", "/api/v1/product-categories", Action::ReadShop),
    ("POST", "/api/v1/product-categories", Action::ManageShop),
    ("GET", "/api/v1/products", Action::ReadShop),
    ("POST", "/api/v1/products", Action::ManageShop),
    ("GET", "/api/v1/products/{id}", Action::ReadShop),
    ("PUT", "/api/v1/products/{id}", Action::ManageShop),
    (
        "POST",
        "/api/v1/products/{id}/stock/receive",
        Action::ManageShop,
    ),
    (
        "POST",
        "/api/v1/products/{id}/stock/correct",
        Action::ManageShop,
    ),
    ("GET", "/api/v1/store", Action::ReadShop),
    ("GET", "/api/v1/vehicles", Action::ReadShop),
    ("GET", "/api/v1/cart", Action::Shop),
    ("POST", "/api/v1/cart", Action::Shop),
    ("POST", "/api/v1/cart/items", Action::Shop),
    ("PUT", "/api/v1/cart/items/{product_id}", Action::Shop),
    ("DELETE", "/api/v1/cart/items/{product_id}", Action::Shop),
    ("POST", "/api/v1/checkout", Action::Shop),
    ("GET", "/api/v1/orders", Action::ReadOrders),
    ("GET", "/api/v1/orders/{id}", Action::ReadOrders),
    ("GET", "/api/v1/orders/{id}/history", Action::ReadOrders),
    (
        "POST",
        "/api/v1/orders/{id}/payments",
        Action::ProcessOrders,
    ),
    ("POST", "/api/v1/orders/{id}/ship", Action::ProcessOrders),
    ("POST", "/api/v1/orders/{id}/deliver", Action::ProcessOrders),
    (
        "POST",
        "/api/v1/orders/{id}/ready-for-pickup",
        Action::ProcessOrders,
    ),
    (
        "POST",
        "/api/v1/orders/{id}/picked-up",
        Action::ProcessOrders,
    ),
    ("POST", "/api/v1/orders/{id}/cancel", Action::ProcessOrders),
    (
        "POST",
        "/api/v1/orders/{id}/erase",
        Action::ErasePersonalData,
    ),
    ("POST", "/api/v1/orders/{id}/refunds", Action::ProcessOrders),
    ("POST", "/api/v1/webhooks/payments", Action::ReportPayment),
    ("GET", "/api/v1/stats/orders", Action::ReadStatistics),
    (
        "POST",
        "/api/v1/dealer-applications",
        Action::ApplyForDealer,
    ),
    ("GET", "/api/v1/dealer-applications", Action::ManageDealers),
    (
        "POST",
        "/api/v1/dealer-applications/{id}/approve",
        Action::ManageDealers,
    ),
    (
        "POST",
        "/api/v1/dealer-applications/{id}/reject",
        Action::ManageDealers,
    ),
    ("GET", "/api/v1/me/dealer", Action::ApplyForDealer),
    ("GET", "/api/v1/plans", Action::ReadPlans),
    ("POST", "/api/v1/plans", Action::ManageSubscriptions),
    ("GET", "/api/v1/plans/{id}", Action::ReadPlans),
    (
        "POST",
        "/api/v1/plans/{id}/deactivate",
        Action::ManageSubscriptions,
    ),
    ("POST", "/api/v1/subscriptions", Action::ManageSubscriptions),
    (
        "GET",
        "/api/v1/subscriptions/{id}",
        Action::ReadSubscriptions,
    ),
    (
        "POST",
        "/api/v1/subscriptions/{id}/payments",
        Action::ManageSubscriptions,
    ),
    (
        "POST",
        "/api/v1/subscriptions/{id}/payments/{payment_id}/void",
        Action::ManageSubscriptions,
    ),
    (
        "POST",
        "/api/v1/subscriptions/{id}/freezes",
        Action::ManageSubscriptions,
    ),
    (
        "POST",
        "/api/v1/subscriptions/{id}/freezes/{freeze_id}/end",
        Action::ManageSubscriptions,
    ),
    (
        "POST",
        "/api/v1/subscriptions/{id}/cancel",
        Action::ManageSubscriptions,
    ),
    ("GET", "/api/v1/subscribers", Action::ReadSubscribers),
    (
        "GET",
        "/api/v1/subscriptions/expiring",
        Action::ReadSubscribers,
    ),
    ("GET", "/api/v1/me/subscriptions", Action::ReadSubscriptions),
    (
        "GET",
        "/api/v1/clients/{id}/card",
        Action::ReadSubscriptions,
    ),
    ("GET", "/api/v1/stats/subscriptions", Action::ReadStatistics),
    ("POST", "/api/v1/groups", Action::ManageTrainings),
    ("GET", "/api/v1/groups", Action::ManageTrainings),
    (
        "PUT",
        "/api/v1/groups/{id}/members",
        Action::ManageTrainings,
    ),
    ("POST", "/api/v1/trainings", Action::ManageTrainings),
    ("GET", "/api/v1/trainings", Action::AttendTrainings),
    ("GET", "/api/v1/trainings/{id}", Action::AttendTrainings),
    (
        "POST",
        "/api/v1/trainings/{id}/invitations",
        Action::ManageTrainings,
    ),
    (
        "POST",
        "/api/v1/trainings/{id}/respond",
        Action::AttendTrainings,
    ),
    (
        "PUT",
        "/api/v1/trainings/{id}/link",
        Action::ManageTrainings,
    ),
    (
        "POST",
        "/api/v1/trainings/{id}/attendance",
        Action::RecordAttendance,
    ),
    ("POST", "/api/v1/broadcasts", Action::ManageBroadcasts),
    ("GET", "/api/v1/broadcasts/{id}", Action::ManageBroadcasts),
    ("POST", "/api/v1/campaigns", Action::ManageCampaigns),
    ("GET", "/api/v1/campaigns", Action::ReadCampaigns),
    ("GET", "/api/v1/campaigns/{id}", Action::ReadCampaigns),
    ("GET", "/api/v1/campaign-channels", Action::ReadCampaigns),
    (
        "POST",
        "/api/v1/campaigns/{id}/start",
        Action::ManageCampaigns,
    ),
    (
        "POST",
        "/api/v1/campaigns/{id}/complete",
        Action::ManageCampaigns,
    ),
    (
        "POST",
        "/api/v1/campaigns/{id}/cancel",
        Action::ManageCampaigns,
    ),
    (
        "PUT",
        "/api/v1/campaigns/{id}/budget",
        Action::ManageCampaigns,
    ),
    (
        "POST",
        "/api/v1/campaigns/{id}/spend",
        Action::ManageCampaigns,
    ),
    ("POST", "/api/v1/leads", Action::ManageLeads),
    ("GET", "/api/v1/leads", Action::ReadLeads),
    ("GET", "/api/v1/leads/{id}", Action::ReadLeads),
    ("PUT", "/api/v1/leads/{id}", Action::ManageLeads),
    ("GET", "/api/v1/leads/{id}/history", Action::ReadLeads),
    ("POST", "/api/v1/leads/{id}/start", Action::ManageLeads),
    ("POST", "/api/v1/leads/{id}/lose", Action::ManageLeads),
    ("POST", "/api/v1/leads/{id}/reopen", Action::ManageLeads),
    (
        "POST",
        "/api/v1/leads/{id}/erase",
        Action::ErasePersonalData,
    ),
    (
        "POST",
        "/api/v1/customers/{id}/erase",
        Action::ErasePersonalData,
    ),
    ("POST", "/api/v1/leads/{id}/notes", Action::ManageLeads),
    ("POST", "/api/v1/leads/{id}/assign", Action::ManageLeads),
    ("POST", "/api/v1/leads/{id}/convert", Action::ConvertLeads),
    ("GET", "/api/v1/contracts", Action::ReadContracts),
    ("GET", "/api/v1/contracts/{id}", Action::ReadContracts),
    ("POST", "/api/v1/customers", Action::ManageCustomers),
    ("GET", "/api/v1/customers", Action::ManageCustomers),
    ("GET", "/api/v1/customers/{id}", Action::ManageCustomers),
    ("PUT", "/api/v1/customers/{id}", Action::ManageCustomers),
    (
        "POST",
        "/api/v1/customers/{id}/user",
        Action::ManageCustomers,
    ),
    ("POST", "/api/v1/invoices", Action::ManageInvoices),
    ("GET", "/api/v1/invoices", Action::ManageCustomers),
    ("GET", "/api/v1/invoices/{id}", Action::ManageCustomers),
    (
        "POST",
        "/api/v1/invoices/{id}/payments",
        Action::ManageInvoices,
    ),
    ("POST", "/api/v1/invoices/{id}/void", Action::ManageInvoices),
    (
        "POST",
        "/api/v1/scheduled-messages",
        Action::ManageCustomers,
    ),
    (
        "GET",
        "/api/v1/scheduled-messages/{id}",
        Action::ManageCustomers,
    ),
    (
        "POST",
        "/api/v1/scheduled-messages/{id}/cancel",
        Action::ManageCustomers,
    ),
    (
        "POST",
        "/api/v1/scheduled-messages/{id}/reschedule",
        Action::ManageCustomers,
    ),
    ("GET", "/api/v1/reminders/due", Action::ManageCustomers),
    (
        "POST",
        "/api/v1/reminders/{id}/acknowledge",
        Action::ManageCustomers,
    ),
    ("POST", "/api/v1/files", Action::UploadFiles),
    ("GET", "/api/v1/files/{id}", Action::ReadFiles),
    (
        "GET",
        "/api/v1/stats/campaigns",
        Action::ReadCampaignStatistics,
    ),
    ("POST", "/api/v1/projects", Action::RequestProjects),
    ("GET", "/api/v1/projects", Action::ReadProjects),
    ("GET", "/api/v1/projects/{id}", Action::ReadProjects),
    ("GET", "/api/v1/projects/{id}/history", Action::ReadProjects),
    (
        "GET",
        "/api/v1/projects/{id}/progress",
        Action::ReadProjects,
    ),
    (
        "POST",
        "/api/v1/projects/{id}/accept",
        Action::ManageProjects,
    ),
    (
        "POST",
        "/api/v1/projects/{id}/refuse",
        Action::ManageProjects,
    ),
    (
        "POST",
        "/api/v1/projects/{id}/keep-waiting",
        Action::ManageProjects,
    ),
    (
        "POST",
        "/api/v1/projects/{id}/start",
        Action::ManageProjects,
    ),
    (
        "POST",
        "/api/v1/projects/{id}/progress",
        Action::ManageProjects,
    ),
    (
        "POST",
        "/api/v1/projects/{id}/replan",
        Action::ManageProjects,
    ),
    (
        "POST",
        "/api/v1/projects/{id}/ready-for-delivery",
        Action::ManageProjects,
    ),
    (
        "POST",
        "/api/v1/projects/{id}/withdraw",
        Action::ChangeOwnProjects,
    ),
    (
        "POST",
        "/api/v1/projects/{id}/confirm-receipt",
        Action::ChangeOwnProjects,
    ),
    ("GET", "/api/v1/me/projects/counts", Action::ReadProjects),
    (
        "GET",
        "/api/v1/stats/projects",
        Action::ReadProjectStatistics,
    ),
    ("POST", "/api/v1/messages", Action::SendClientMessages),
    ("GET", "/api/v1/me/messages", Action::ReadClientMessages),
    ("GET", "/api/v1/messages/{id}", Action::ReadClientMessages),
    ("POST", "/api/v1/feedback", Action::GiveFeedback),
    ("GET", "/api/v1/feedback", Action::GiveFeedback),
    ("GET", "/api/v1/feedback/{id}", Action::GiveFeedback),
    (
        "POST",
        "/api/v1/feedback/{id}/handle",
        Action::HandleFeedback,
    ),
    ("GET", "/api/v1/roadmap", Action::ReadRoadmap),
    ("POST", "/api/v1/roadmap", Action::ManageRoadmap),
    ("GET", "/api/v1/roadmap/demand", Action::ManageRoadmap),
    ("GET", "/api/v1/roadmap/{id}", Action::ReadRoadmap),
    (
        "POST",
        "/api/v1/roadmap/{id}/start-work",
        Action::ManageRoadmap,
    ),
    (
        "POST",
        "/api/v1/roadmap/{id}/make-available",
        Action::ManageRoadmap,
    ),
    (
        "POST",
        "/api/v1/roadmap/{id}/interest",
        Action::RegisterInterest,
    ),
    ("GET", "/api/v1/audit/events", Action::ReadAudit),
    (
        "GET",
        "/api/v1/audit/aggregates/{type}/{id}",
        Action::ReadAudit,
    ),
    (
        "GET",
        "/api/v1/audit/aggregates/{type}/{id}/history",
        Action::ReadAudit,
    ),
    ("GET", "/api/v1/audit/verify", Action::ReadAudit),
    ("GET", "/api/v1/audit/public-key", Action::ReadAudit),
];

pub fn access(action: Action) -> Access {
    MATRIX
        .iter()
        .find(|(a, _)| *a == action)
        .map(|(_, access)| *access)
        .unwrap_or(Access::Roles(&[]))
}

/// Whether a caller with `roles` (None: not signed in) may perform `action`.
pub fn allows(roles: Option<&[Role]>, action: Action) -> bool {
    allowed(access(action), roles)
}

pub fn allowed(access: Access, roles: Option<&[Role]>) -> bool {
    match (access, roles) {
        (Access::Public | Access::Signed, _) => true,
        (_, None) => false,
        (Access::SignedIn, Some(_)) => true,
        (Access::Roles(allowed), Some(held)) => held.iter().any(|r| allowed.contains(r)),
    }
}

/// The matrix as a Markdown table (README; `annals permissions`).
pub fn markdown() -> String {
    let mut out = String::from("| action |");
    for role in Role::ALL {
        out.push_str(&format!(" {role} |"));
    }
    out.push_str(" anonymous |\n|---|");
    for _ in 0..=Role::ALL.len() {
        out.push_str("---|");
    }
    out.push('\n');
    for (action, _) in MATRIX {
        out.push_str(&format!("| {action:?} |"));
        for role in Role::ALL {
            out.push_str(if allows(Some(&[role]), *action) {
                " ✓ |"
            } else {
                " |"
            });
        }
        out.push_str(if allows(None, *action) {
            " ✓ |\n"
        } else {
            " |\n"
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_exactly_one_matrix_entry() {
        for (_, _, action) in ROUTES {
            assert_eq!(
                MATRIX.iter().filter(|(a, _)| a == action).count(),
                1,
                "{action:?}"
            );
        }
    }

    #[test]
    fn admin_only_actions_refuse_every_other_role_and_anonymous() {
        for role in Role::ALL {
            assert_eq!(
                allows(Some(&[role]), Action::ManageRoles),
                role == Role::Admin,
                "{role}"
            );
        }
        assert!(!allows(None, Action::ManageRoles));
        assert!(!allows(None, Action::ReadOwnProfile));
        assert!(allows(None, Action::LogIn));
    }
}
