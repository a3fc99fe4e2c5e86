//! API tokens: named secrets that carry per-namespace scopes, may expire and can be revoked.
//!
//! A secret is `tkr_<id>_<key>`: `id` (16 hex digits) finds the token's row, `key` (64 hex
//! digits, 256 random bits) is checked against the SHA-256 stored for it, in constant time.
//! The secret itself is never stored: it is shown once, when the token is created.
//!
//! Scopes: `<namespace>:read`, `<namespace>:write` (create, cancel, retry; implies read),
//! `<namespace>:admin` (implies write), and `*` for every namespace: `*:read`, `*:write`,
//! `*:admin`, or `*` alone for admin of every namespace.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;
use subtle::ConstantTimeEq;

use crate::registry::hex;
use crate::{Engine, EngineError};

/// What a scope lets its holder do in a namespace; each level includes the ones before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    /// Read tasks, their steps and events, templates and workers.
    Read,
    /// Also create, cancel and retry tasks.
    Write,
    /// Everything in the namespace.
    Admin,
}

impl Access {
    pub const fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Admin => "admin",
        }
    }
}

/// The namespaces a scope covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Namespaces {
    All,
    One(String),
}

/// One grant: an access level in one namespace or in all of them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub namespaces: Namespaces,
    pub access: Access,
}

/// A scope that is not `<namespace>:<read|write|admin>`, `*:<level>` or `*`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{given:?} is not a scope: {reason} (use <namespace>:read, <namespace>:write, <namespace>:admin, *:read, *:write or *)")]
pub struct InvalidScope {
    pub given: String,
    pub reason: &'static str,
}

fn valid_namespace(ns: &str) -> bool {
    let mut chars = ns.chars();
    matches!(chars.next(), Some('a'..='z'))
        && ns.len() <= 40
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl FromStr for Scope {
    type Err = InvalidScope;

    fn from_str(s: &str) -> Result<Scope, InvalidScope> {
        let bad = |reason| InvalidScope {
            given: s.to_string(),
            reason,
        };
        if s == "*" {
            return Ok(Scope {
                namespaces: Namespaces::All,
                access: Access::Admin,
            });
        }
        let (ns, level) = s.split_once(':').ok_or_else(|| bad("no access level"))?;
        let access = match level {
            "read" => Access::Read,
            "write" => Access::Write,
            "admin" => Access::Admin,
            _ => return Err(bad("the access level is not read, write or admin")),
        };
        let namespaces = if ns == "*" {
            Namespaces::All
        } else if valid_namespace(ns) {
            Namespaces::One(ns.to_string())
        } else {
            return Err(bad("the namespace is not a namespace name (a-z, 0-9, _; 1 to 40)"));
        };
        Ok(Scope { namespaces, access })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespaces {
            Namespaces::All => write!(f, "*:{}", self.access.as_str()),
            Namespaces::One(ns) => write!(f, "{ns}:{}", self.access.as_str()),
        }
    }
}

/// Everything a token may do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes(pub Vec<Scope>);

impl Scopes {
    /// Whether `access` in `namespace` is granted.
    pub fn allows(&self, namespace: &str, access: Access) -> bool {
        self.0.iter().any(|s| {
            s.access >= access
                && match &s.namespaces {
                    Namespaces::All => true,
                    Namespaces::One(ns) => ns == namespace,
                }
        })
    }

    /// Whether `access` is granted in every namespace (a `*` scope at that level or above).
    pub fn allows_everywhere(&self, access: Access) -> bool {
        self.0
            .iter()
            .any(|s| s.access >= access && s.namespaces == Namespaces::All)
    }

    /// The namespaces it may read: `None` for all of them.
    pub fn readable(&self) -> Option<Vec<String>> {
        if self.0.iter().any(|s| s.namespaces == Namespaces::All) {
            return None;
        }
        let mut out: Vec<String> = self
            .0
            .iter()
            .filter_map(|s| match &s.namespaces {
                Namespaces::One(ns) => Some(ns.clone()),
                Namespaces::All => None,
            })
            .collect();
        out.sort();
        out.dedup();
        Some(out)
    }

    fn texts(&self) -> Vec<String> {
        self.0.iter().map(Scope::to_string).collect()
    }
}

/// A token's name: what lists, revocation and the audit trail call it.
pub fn check_token_name(name: &str) -> Result<(), EngineError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(EngineError::Invalid(format!(
            "token name {name:?}: use 1 to 64 letters, digits, '-', '_', '.' or '@'"
        )))
    }
}

/// A token's secret, as created: shown once.
pub struct TokenSecret(String);

impl TokenSecret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(..)")
    }
}

fn digest(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// `(id, key)` of a secret of the right shape.
fn split_secret(secret: &str) -> Option<(&str, &str)> {
    let rest = secret.strip_prefix("tkr_")?;
    let (id, key) = rest.split_once('_')?;
    let hexy = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hexy(id, 16) && hexy(key, 64)).then_some((id, key))
}

/// A token as listed (never its secret).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenView {
    pub name: String,
    pub scopes: Scopes,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl TokenView {
    /// `active`, `expired` or `revoked`, at `now`.
    pub fn state(&self, now: DateTime<Utc>) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at.is_some_and(|e| e <= now) {
            "expired"
        } else {
            "active"
        }
    }
}

/// Who made a request: a valid token's name and scopes.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub name: String,
    pub scopes: Scopes,
}

/// Why a secret was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// Not a secret of ours (wrong shape, unknown id, or a key that does not match).
    Unknown,
    Expired,
    Revoked,
}

fn scopes_of(texts: Vec<String>) -> Result<Scopes, EngineError> {
    texts
        .iter()
        .map(|t| t.parse::<Scope>())
        .collect::<Result<Vec<_>, _>>()
        .map(Scopes)
        .map_err(|e| EngineError::Corrupt(format!("stored token scope: {e}")))
}

fn view(r: &sqlx::postgres::PgRow) -> Result<TokenView, EngineError> {
    Ok(TokenView {
        name: r.try_get("name")?,
        scopes: scopes_of(r.try_get("scopes")?)?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        last_used_at: r.try_get("last_used_at")?,
    })
}

impl Engine {
    /// A new token: its row (with the key's SHA-256 only) and its secret, which nothing can
    /// show again. A token with that name already (even revoked) is a conflict.
    pub async fn create_token(
        &self,
        name: &str,
        scopes: &Scopes,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(TokenView, TokenSecret), EngineError> {
        check_token_name(name)?;
        if scopes.0.is_empty() {
            return Err(EngineError::Invalid("a token needs at least one scope".into()));
        }
        let mut id = [0u8; 8];
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut id);
        rand::rng().fill_bytes(&mut key);
        let (id, key) = (hex(&id), hex(&key));
        let row = sqlx::query(
            "INSERT INTO tasker_api_tokens (token_id, name, key_sha256, scopes, expires_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING
             RETURNING name, scopes, created_at, expires_at, revoked_at, last_used_at",
        )
        .bind(&id)
        .bind(name)
        .bind(digest(&key))
        .bind(scopes.texts())
        .bind(expires_at)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Err(EngineError::Conflict(format!("a token named {name:?} exists already")));
        };
        Ok((view(&row)?, TokenSecret(format!("tkr_{id}_{key}"))))
    }

    /// Every token, by name.
    pub async fn list_tokens(&self) -> Result<Vec<TokenView>, EngineError> {
        sqlx::query(
            "SELECT name, scopes, created_at, expires_at, revoked_at, last_used_at
               FROM tasker_api_tokens ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(view)
        .collect()
    }

    /// Revokes a token for good; `false` when there is no token of that name. Revoking twice
    /// keeps the first time.
    pub async fn revoke_token(&self, name: &str) -> Result<bool, EngineError> {
        let done = sqlx::query("UPDATE tasker_api_tokens SET revoked_at = COALESCE(revoked_at, now()) WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether the token of this name may still be used now (neither revoked nor expired): what
    /// a long-lived request authenticated earlier checks from time to time.
    pub async fn token_active(&self, name: &str) -> Result<bool, EngineError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM tasker_api_tokens
                             WHERE name = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()))",
        )
        .bind(name)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The token a secret belongs to, if it is valid now.
    pub async fn authenticate(&self, secret: &str) -> Result<Result<Principal, AuthFailure>, EngineError> {
        let Some((id, key)) = split_secret(secret.trim()) else {
            return Ok(Err(AuthFailure::Unknown));
        };
        let Some(row) = sqlx::query(
            "SELECT name, key_sha256, scopes, expires_at <= now() AS expired, revoked_at IS NOT NULL AS revoked,
                    last_used_at IS NULL OR last_used_at < now() - interval '1 minute' AS stale
               FROM tasker_api_tokens WHERE token_id = $1",
        )
        .bind(id.to_ascii_lowercase())
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(Err(AuthFailure::Unknown));
        };
        let stored: Vec<u8> = row.try_get("key_sha256")?;
        if !bool::from(stored.ct_eq(&digest(&key.to_ascii_lowercase()))) {
            return Ok(Err(AuthFailure::Unknown));
        }
        if row.try_get::<bool, _>("revoked")? {
            return Ok(Err(AuthFailure::Revoked));
        }
        if row.try_get::<Option<bool>, _>("expired")?.unwrap_or(false) {
            return Ok(Err(AuthFailure::Expired));
        }
        // When it was last used, to the minute: one write a minute per token, not one per request.
        if row.try_get::<bool, _>("stale")? {
            sqlx::query("UPDATE tasker_api_tokens SET last_used_at = now() WHERE token_id = $1")
                .bind(id.to_ascii_lowercase())
                .execute(&self.pool)
                .await?;
        }
        Ok(Ok(Principal {
            name: row.try_get("name")?,
            scopes: scopes_of(row.try_get("scopes")?)?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(list: &[&str]) -> Scopes {
        Scopes(list.iter().map(|s| s.parse().unwrap()).collect())
    }

    #[test]
    fn scopes_parse_and_print_back() {
        for s in [
            "payments:read",
            "payments:write",
            "customer_success:admin",
            "*:read",
            "*:write",
        ] {
            assert_eq!(s.parse::<Scope>().unwrap().to_string(), s);
        }
        assert_eq!("*".parse::<Scope>().unwrap().to_string(), "*:admin");
        for bad in [
            "payments",
            "payments:delete",
            "Payments:read",
            ":read",
            "a-b:read",
            "*:",
            "",
        ] {
            assert!(bad.parse::<Scope>().is_err(), "{bad}");
        }
    }

    #[test]
    fn write_implies_read_and_admin_implies_write_in_its_namespace_only() {
        let s = scopes(&["customer_success:write", "payments:read"]);
        assert!(s.allows("customer_success", Access::Read));
        assert!(s.allows("customer_success", Access::Write));
        assert!(!s.allows("customer_success", Access::Admin));
        assert!(s.allows("payments", Access::Read));
        assert!(!s.allows("payments", Access::Write));
        assert!(!s.allows("ecommerce", Access::Read));
        assert_eq!(s.readable(), Some(vec!["customer_success".into(), "payments".into()]));
        let all = scopes(&["*:read"]);
        assert!(all.allows("anything", Access::Read) && !all.allows("anything", Access::Write));
        assert_eq!(all.readable(), None);
        assert!(scopes(&["*"]).allows("x", Access::Admin));
        assert!(all.allows_everywhere(Access::Read) && !all.allows_everywhere(Access::Write));
        assert!(!s.allows_everywhere(Access::Read));
    }

    #[test]
    fn only_well_formed_secrets_are_looked_up() {
        let id = "0123456789abcdef";
        let key = "a".repeat(64);
        assert_eq!(split_secret(&format!("tkr_{id}_{key}")), Some((id, key.as_str())));
        for bad in [
            format!("tkr_{id}_{}", "a".repeat(63)),
            format!("tkn_{id}_{key}"),
            format!("tkr_{id}{key}"),
            format!("tkr_{}_{key}", "g".repeat(16)),
            String::new(),
        ] {
            assert_eq!(split_secret(&bad), None, "{bad}");
        }
    }

    #[test]
    fn token_names_are_plain() {
        assert!(check_token_name("ci-deploy@payments.team").is_ok());
        for bad in ["", "has space", "semi;colon", &"x".repeat(65)] {
            assert!(check_token_name(bad).is_err(), "{bad}");
        }
    }
}
