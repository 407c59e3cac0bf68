//! Checked values of the identity domain, parsed at the edge.

use serde::{Deserialize, Serialize};

use crate::FieldError;

/// The roles a user may hold (several at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Manager,
    Operator,
    Marketer,
    /// A person who performs services or trains groups.
    Master,
    /// A customer.
    Client,
    /// A client with a dealer discount.
    Dealer,
    /// Reads all history and every audit route; changes nothing.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::Admin,
        Role::Manager,
        Role::Operator,
        Role::Marketer,
        Role::Master,
        Role::Client,
        Role::Dealer,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Operator => "operator",
            Role::Marketer => "marketer",
            Role::Master => "master",
            Role::Client => "client",
            Role::Dealer => "dealer",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// Admin and master count as staff.
    pub fn is_staff(self) -> bool {
        matches!(self, Role::Admin | Role::Master)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 32;
pub const USERNAME_PATTERN: &str = "^[a-z0-9][a-z0-9._-]{2,31}$";
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;
pub const PHONE_PATTERN: &str = r"^\+?[0-9]{10,15}$";
pub const NAME_MAX: usize = 200;
pub const TEXT_MAX: usize = 2000;

/// A username: 3 to 32 of `a-z 0-9 . _ -`, starting with a letter or digit.
/// Case-insensitive: stored lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let lower = raw.trim().to_ascii_lowercase();
        let len = lower.chars().count();
        let ok_chars = lower
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
        let ok_start = lower
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        if !(USERNAME_MIN..=USERNAME_MAX).contains(&len) || !ok_chars || !ok_start {
            return Err(FieldError::new(
                "username",
                format!(
                    "must be {USERNAME_MIN} to {USERNAME_MAX} characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit"
                ),
            ));
        }
        Ok(Self(lower))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a password's length (the hash is made elsewhere; it never
/// enters an event).
pub fn check_password(field: &str, password: &str) -> Result<(), FieldError> {
    let len = password.chars().count();
    if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&len) {
        return Err(FieldError::new(
            field,
            format!("must be {PASSWORD_MIN} to {PASSWORD_MAX} characters"),
        ));
    }
    Ok(())
}

/// An e-mail address, checked for a plausible shape (local@domain.tld).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let value = raw.trim();
        let bad = || FieldError::new(field, "must be an e-mail address like name@example.com");
        if value.len() > 254 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = value.rsplit_once('@').ok_or_else(bad)?;
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if local.is_empty() || local.len() > 64 || local.contains('@') || !domain_ok {
            return Err(bad());
        }
        Ok(Self(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number: an optional `+` and 10 to 15 digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Phone(String);

impl Phone {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let value = raw.trim();
        let digits = value.strip_prefix('+').unwrap_or(value);
        if !(10..=15).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(FieldError::new(
                field,
                "must be an optional '+' and 10 to 15 digits",
            ));
        }
        Ok(Self(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The editable profile of a user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub full_name: String,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub company_name: Option<String>,
    pub company_size: Option<u32>,
    pub client_type: Option<String>,
    pub description: Option<String>,
    pub website: Option<String>,
    pub social_links: Vec<String>,
}

/// What a person's erased fields show.
pub const ERASED: &str = "[erased]";

impl Profile {
    /// The profile after its person's data was erased: the name shows
    /// `[erased]`, everything else is gone.
    pub fn erased() -> Self {
        Self {
            full_name: ERASED.to_string(),
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lowercased_and_bounded() {
        assert_eq!(Username::parse(" Ada.L ").unwrap().as_str(), "ada.l");
        for bad in ["ab", "", "-ada", "ada lovelace", "ädä", &"a".repeat(33)] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn phones_are_an_optional_plus_and_10_to_15_digits() {
        for good in ["+491701234567", "0123456789", "+123456789012345"] {
            assert!(Phone::parse("phone", good).is_ok(), "{good}");
        }
        for bad in [
            "123456789",
            "+1234567890123456",
            "+49 170 1234567",
            "phone",
            "++4917012345",
        ] {
            assert!(Phone::parse("phone", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        for good in ["ada@example.com", "a.b+c@mail.example.org"] {
            assert!(Email::parse("email", good).is_ok(), "{good}");
        }
        for bad in [
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "ada@-x.com",
            "ada@x..com",
        ] {
            assert!(Email::parse("email", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_have_bounds() {
        assert!(check_password("password", "12345678").is_ok());
        assert!(check_password("password", "1234567").is_err());
        assert!(check_password("password", &"x".repeat(129)).is_err());
    }
}
