//! The command line: `serve` (default), `migrate`, `openapi`, `replay`.
//! Settings come from the environment (and `.env`); see README.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::platform::Module;
use crate::startup::{self, Application};

#[derive(Debug, Parser)]
#[command(
    name = "annals",
    version,
    about = "Event-sourced backend for service businesses",
    long_about = "Event-sourced backend for service businesses.\n\n\
                  Without configuration it runs embedded: SQLite under ANNALS_DATA_DIR (./data) and \
                  in-process fan-out. Set DATABASE_URL (postgres://...) and NATS_URL (nats://...) for \
                  server mode. Settings are environment variables (an optional .env file is read); \
                  the README lists them all."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server and the consumers (the default). Migrates first.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the OpenAPI document (JSON) and exit.
    Openapi,
    /// Rebuild one read model from position 0 of the log.
    /// Manage users (works on the same database as the server, also while it runs).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Print the permission matrix (Markdown).
    Permissions,
    /// Personal data: erase a person's (crypto-shredding).
    Privacy {
        #[command(subcommand)]
        command: PrivacyCommand,
    },
    /// The audit trail: verify the hash chain.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    Replay {
        /// The consumer (read model) to rebuild; `annals replay --list` shows them.
        #[arg(long, required_unless_present_any = ["list", "verify"])]
        consumer: Option<String>,
        /// List the consumers that can be replayed.
        #[arg(long)]
        list: bool,
        /// Rebuild every read model (or only `--consumer`) into a shadow
        /// copy and compare it row for row with the live one, changing
        /// nothing; exits 1 when any differs.
        #[arg(long, conflicts_with = "list")]
        verify: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PrivacyCommand {
    /// Erase a person's personal data: destroys their keys, so every field
    /// encrypted with them reads `[erased]`; the hash chain still verifies.
    /// The records linked to the one named (a user's customer record, a
    /// customer's lead) are erased with it.
    #[command(group(clap::ArgGroup::new("person").required(true)))]
    Erase {
        /// A user, by username or id.
        #[arg(long, group = "person")]
        user: Option<String>,
        /// A customer, by id.
        #[arg(long, group = "person")]
        customer: Option<uuid::Uuid>,
        /// A lead, by id.
        #[arg(long, group = "person")]
        lead: Option<uuid::Uuid>,
        /// An order, by id: a guest's is erased alone, a signed-in buyer's
        /// erases the buyer.
        #[arg(long, group = "person")]
        order: Option<uuid::Uuid>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain from the stored events and check every
    /// signed checkpoint; exits 0 when intact, 1 naming the first bad
    /// position otherwise.
    Verify {
        /// The first position to check (default 1).
        #[arg(long)]
        from: Option<i64>,
        /// The last position to check (default: the last sealed).
        #[arg(long)]
        to: Option<i64>,
    },
    /// Write events with their chain hashes and the signed checkpoints
    /// covering them to standard output (NDJSON), up to the first
    /// checkpoint at or after --to-position.
    Export {
        #[arg(long, default_value_t = 1)]
        from_position: i64,
        /// Default: the last sealed position.
        #[arg(long)]
        to_position: Option<i64>,
    },
    /// Check an export offline, with nothing but the file and the key.
    VerifyExport {
        /// The export (NDJSON).
        file: std::path::PathBuf,
        /// The public key (hex), as `GET /api/v1/audit/public-key` gives it.
        #[arg(long)]
        public_key: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; prints the new user's id on the last line.
    Create {
        #[arg(long)]
        username: String,
        /// The password (visible in the process list: prefer --password-stdin).
        #[arg(
            long,
            conflicts_with = "password_stdin",
            required_unless_present = "password_stdin"
        )]
        password: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// A role to hold; repeat for several (admin, manager, operator, marketer, master, client, dealer, auditor).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Full name (defaults to the username).
        #[arg(long)]
        full_name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        phone: Option<String>,
    },
    /// Grant a role to a user.
    Grant {
        #[arg(long)]
        username: String,
        #[arg(long)]
        role: String,
    },
}

/// Runs the CLI with the given modules (the binary passes `crate::modules()`).
pub async fn run(cli: Cli, modules: Vec<Box<dyn Module>>) -> Result<()> {
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Permissions = command {
        print!("{}", crate::auth::permissions::markdown());
        return Ok(());
    }
    if let Command::Openapi = command {
        let doc = crate::http::openapi_document(&modules);
        println!("{}", doc.to_pretty_json().context("rendering OpenAPI")?);
        return Ok(());
    }
    if let Command::Audit {
        command: AuditCommand::VerifyExport { file, public_key },
    } = &command
    {
        // Offline: no settings, no database.
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let (events, checkpoints) = crate::audit::verify_export(&text, public_key)?;
        println!("intact: {events} events, {checkpoints} signed checkpoints");
        return Ok(());
    }
    let settings = Settings::from_env()?;
    crate::telemetry::init(settings.log_format);
    match command {
        Command::Serve => {
            let app = Application::build(settings, modules).await?;
            app.run_until(startup::shutdown_signal()).await
        }
        Command::Migrate => {
            let db = crate::store::Db::connect(&settings.database, 2).await?;
            db.migrate().await?;
            db.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::Replay {
            consumer,
            verify: true,
            ..
        } => {
            let mut settings = settings;
            settings.nats = None;
            let platform = startup::connect(settings, &modules).await?;
            let projectors = match consumer {
                Some(name) => vec![known_projector(&platform, &name)?],
                None => platform.projectors().to_vec(),
            };
            let report = crate::bus::shadow::verify(&projectors, &platform.db, &platform.log).await;
            platform.db.close().await;
            let report = report?;
            for (name, position) in &report.checked {
                println!("rebuilt {name} to position {position}");
            }
            for name in &report.skipped {
                println!("skipped {name}: not a read model");
            }
            for d in &report.differences {
                println!(
                    "DIFFERS {}: {} live rows, {} rebuilt",
                    d.table, d.live_rows, d.shadow_rows
                );
                for row in &d.only_live {
                    println!("  only live:    {row}");
                }
                for row in &d.only_shadow {
                    println!("  only rebuilt: {row}");
                }
            }
            if report.ok() {
                println!("identical: {} tables", report.tables);
                Ok(())
            } else {
                anyhow::bail!(
                    "{} of {} tables differ from their rebuild",
                    report.differences.len(),
                    report.tables
                )
            }
        }
        Command::Replay { consumer, list, .. } => {
            let mut settings = settings;
            // Replay reads the log directly; it never needs NATS.
            settings.nats = None;
            let platform = startup::connect(settings, &modules).await?;
            if list {
                for projector in platform.projectors() {
                    println!("{}", projector.name());
                }
                return Ok(());
            }
            let name = consumer.expect("clap requires --consumer");
            let projector = known_projector(&platform, &name)?;
            let started = std::time::Instant::now();
            // A rebuild is derived data: its commits need not wait for the disk.
            let position =
                crate::bus::replay(projector, &platform.db.derived, &platform.log).await?;
            let elapsed = started.elapsed();
            println!(
                "replayed {name} to position {position} in {:.2}s ({:.0} events/s)",
                elapsed.as_secs_f64(),
                position as f64 / elapsed.as_secs_f64().max(1e-9)
            );
            platform.db.close().await;
            Ok(())
        }
        Command::Privacy {
            command:
                PrivacyCommand::Erase {
                    user,
                    customer,
                    lead,
                    order,
                },
        } => {
            use crate::app::privacy::Person;
            let person = match (user, customer, lead, order) {
                (Some(user), ..) => Person::User(match uuid::Uuid::parse_str(&user) {
                    Ok(id) => id,
                    Err(_) => crate::auth::user_id(&user),
                }),
                (None, Some(id), ..) => Person::Customer(id),
                (None, None, Some(id), _) => Person::Lead(id),
                (None, None, None, Some(id)) => Person::Order(id),
                (None, None, None, None) => unreachable!("clap requires one"),
            };
            let mut settings = settings;
            settings.nats = None;
            let platform = startup::connect(settings, &modules).await?;
            let ctx = crate::app::CommandContext::new(annals_domain::EventMetadata::for_command(
                annals_domain::Actor::Cli,
            ));
            let done = crate::app::privacy::erase(&platform, &ctx, person).await;
            platform.db.close().await;
            let done = done.map_err(|err| anyhow::anyhow!("{}: {}", err.code, err.detail))?;
            let erased = &done.value;
            let list = |ids: &std::collections::BTreeSet<uuid::Uuid>| {
                ids.iter()
                    .map(|id| id.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            println!(
                "erased the personal data of users [{}] customers [{}] leads [{}] orders [{}] (last event at position {})",
                list(&erased.users),
                list(&erased.customers),
                list(&erased.leads),
                list(&erased.orders),
                done.position
            );
            Ok(())
        }
        Command::User { command } => {
            let mut settings = settings;
            settings.nats = None;
            let platform = startup::connect(settings, &modules).await?;
            let result = user_command(&platform, command).await;
            platform.db.close().await;
            result
        }
        Command::Audit {
            command: AuditCommand::Verify { from, to },
        } => {
            let mut settings = settings;
            settings.nats = None;
            let platform = startup::connect(settings, &modules).await?;
            let mut conn = platform.db.any.acquire().await?;
            let key = platform.audit_key.verifying_key();
            let report = crate::audit::verify(&mut conn, &key, from, to).await?;
            drop(conn);
            platform.db.close().await;
            if report.ok {
                println!(
                    "intact: {} events checked, {} signed checkpoints, sealed to position {}",
                    report.checked, report.checkpoints, report.sealed_to
                );
                Ok(())
            } else {
                anyhow::bail!(
                    "position {}: {}",
                    report.first_bad_position.unwrap_or(0),
                    report.reason.unwrap_or_default()
                )
            }
        }
        Command::Audit {
            command:
                AuditCommand::Export {
                    from_position,
                    to_position,
                },
        } => {
            let mut settings = settings;
            settings.nats = None;
            let platform = startup::connect(settings, &modules).await?;
            let mut conn = platform.db.any.acquire().await?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let written = crate::audit::export(
                &mut conn,
                &platform.audit_key,
                from_position,
                to_position,
                &mut out,
            )
            .await;
            std::io::Write::flush(&mut out)?;
            drop(conn);
            platform.db.close().await;
            eprintln!("exported {} events", written?);
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::VerifyExport { .. },
        } => unreachable!("handled before the settings"),
        Command::Openapi | Command::Permissions => unreachable!(),
    }
}

fn known_projector(
    platform: &crate::Platform,
    name: &str,
) -> Result<std::sync::Arc<dyn annals_projections::Projector>> {
    platform.projector(name).with_context(|| {
        let known: Vec<_> = platform.projectors().iter().map(|p| p.name()).collect();
        format!("no consumer named '{name}'; known: {}", known.join(", "))
    })
}

async fn user_command(platform: &crate::Platform, command: UserCommand) -> Result<()> {
    use annals_domain::user::{self, Profile, Role, User, Username};
    use annals_domain::{Actor, EventMetadata};

    use crate::app::CommandContext;
    use crate::auth::{secrets, user_id, AuthStore};

    let bus = platform.command_bus::<User>();
    let run = |id: uuid::Uuid, command: user::UserCommand| {
        let bus = &bus;
        async move {
            let ctx = CommandContext::new(EventMetadata::for_command(Actor::Cli));
            bus.execute(&ctx, &id.to_string(), command)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))
        }
    };
    let field = |e: annals_domain::FieldError| {
        anyhow::anyhow!("--{}: {}", e.field.replace('_', "-"), e.message)
    };
    match command {
        UserCommand::Create {
            username,
            password,
            password_stdin,
            roles,
            full_name,
            email,
            phone,
        } => {
            let username = Username::parse(&username).map_err(field)?;
            let password = match (password, password_stdin) {
                (Some(p), false) => p,
                _ => {
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("reading the password from stdin")?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            user::values::check_password("password", &password).map_err(field)?;
            let roles = roles
                .iter()
                .map(|r| {
                    Role::parse(r.trim()).with_context(|| format!("--role: '{r}' is not a role"))
                })
                .collect::<Result<_>>()?;
            let profile = Profile {
                full_name: full_name.unwrap_or_else(|| username.as_str().to_string()),
                email: email
                    .map(|e| user::Email::parse("email", &e))
                    .transpose()
                    .map_err(field)?,
                phone: phone
                    .map(|p| user::Phone::parse("phone", &p))
                    .transpose()
                    .map_err(field)?,
                ..Profile::default()
            };
            let id = user_id(username.as_str());
            let hash = secrets::hash_password(password).await?;
            run(
                id,
                user::UserCommand::Register {
                    username: username.clone(),
                    profile,
                    roles,
                },
            )
            .await?;
            AuthStore::set_password(&platform.db.any, id, username.as_str(), &hash).await?;
            println!("created user {}", username.as_str());
            println!("{id}");
        }
        UserCommand::Grant { username, role } => {
            let username = Username::parse(&username).map_err(field)?;
            let role = Role::parse(role.trim())
                .with_context(|| format!("--role: '{role}' is not a role"))?;
            let id = user_id(username.as_str());
            run(id, user::UserCommand::GrantRole { role }).await?;
            println!("granted {role} to {}", username.as_str());
        }
    }
    Ok(())
}
