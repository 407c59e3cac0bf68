//! Outgoing mail: SMTP when ANNALS_SMTP_URL is set, otherwise an `.eml`
//! file under `$ANNALS_DATA_DIR/outbox/` for an operator to read.

use std::path::PathBuf;

use anyhow::{Context, Result};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    Outbox {
        dir: PathBuf,
        from: Mailbox,
    },
}

impl Mailer {
    pub fn new(smtp_url: Option<&str>, from: &str, data_dir: &std::path::Path) -> Result<Self> {
        let from: Mailbox = from
            .parse()
            .context("ANNALS_MAIL_FROM: not a mailbox like 'Annals <no-reply@example.com>'")?;
        Ok(match smtp_url {
            Some(url) => Mailer::Smtp {
                transport: AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .context("ANNALS_SMTP_URL: not an SMTP URL like smtps://user:pass@host")?
                    .build(),
                from,
            },
            None => Mailer::Outbox {
                dir: data_dir.join("outbox"),
                from,
            },
        })
    }

    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<()> {
        let (from, to_box) = match self {
            Mailer::Smtp { from, .. } | Mailer::Outbox { from, .. } => (from.clone(), to),
        };
        let message = Message::builder()
            .from(from)
            .to(to_box.parse().context("recipient address")?)
            .subject(subject)
            .body(body)
            .context("building the message")?;
        match self {
            Mailer::Smtp { transport, .. } => {
                transport.send(message).await.context("sending by SMTP")?;
            }
            Mailer::Outbox { dir, .. } => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .with_context(|| format!("creating {}", dir.display()))?;
                let name = format!("{}.eml", uuid::Uuid::now_v7());
                let tmp = dir.join(format!(".{name}.tmp"));
                tokio::fs::write(&tmp, message.formatted())
                    .await
                    .context("writing the mail")?;
                // Rename: a reader never sees half a file.
                tokio::fs::rename(&tmp, dir.join(&name))
                    .await
                    .context("writing the mail")?;
            }
        }
        Ok(())
    }
}
