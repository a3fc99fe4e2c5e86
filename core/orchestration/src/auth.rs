//! Who is calling, and what they may do: API tokens (`Authorization: Bearer <secret>`, or the
//! dashboard's session cookie holding the same secret) checked on every request but the open
//! ones, and each route's check of the caller's scopes.
//!
//! **Invariant:** with `--auth tokens`, a request reaches a handler only through
//! [`authenticate`], which puts the [`Caller`] in its extensions; every handler that reads or
//! changes a namespace's data asks the caller first ([`Caller::require`], [`Caller::within`]).
//! A request authenticated by the cookie may change nothing unless it also carries the
//! [`CSRF_HEADER`], which a page of another site cannot send.

use std::fmt;
use std::str::FromStr;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use tasker_engine::{Access, Actor, AuthFailure, ErrorDetail, Principal};

use crate::api::AppState;
use crate::error::ApiError;

/// How the server authenticates requests (`--auth`, `TASKER_AUTH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Every request but the open routes needs a valid API token.
    Tokens,
    /// No authentication: anyone who reaches the port may do anything. For a server bound to
    /// loopback, or behind something else that authenticates.
    None,
}

impl FromStr for AuthMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tokens" => Ok(AuthMode::Tokens),
            "none" => Ok(AuthMode::None),
            _ => Err(format!("{s:?} is not an authentication mode (tokens or none)")),
        }
    }
}

impl fmt::Display for AuthMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthMode::Tokens => "tokens",
            AuthMode::None => "none",
        })
    }
}

/// A route that may be opened to callers without a token (`--open`, `TASKER_OPEN`);
/// `/health`, the OpenAPI document, the dashboard's assets and its login page always are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpenRoute {
    /// `/ready`: for probes that cannot carry a token.
    Ready,
    /// `/metrics`: for a Prometheus without a token (closed, it needs a `*:read` token).
    Metrics,
}

impl FromStr for OpenRoute {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ready" => Ok(OpenRoute::Ready),
            "metrics" => Ok(OpenRoute::Metrics),
            _ => Err(format!("{s:?} is not a route that can be opened (ready or metrics)")),
        }
    }
}

/// Authentication settings of one server.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// Routes open without a token when `mode` is `Tokens`.
    pub open: Vec<OpenRoute>,
}

impl Default for AuthConfig {
    /// No authentication (a server on loopback), `/ready` open.
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::None,
            open: vec![OpenRoute::Ready],
        }
    }
}

/// The dashboard's session cookie: the token's secret, HttpOnly and SameSite=Strict.
pub const SESSION_COOKIE: &str = "tasker_session";
/// The header the dashboard's own script sends with every action. A cross-site page cannot
/// add a header to a request without the browser asking the server first (CORS), which this
/// server never allows, so an action authenticated by the cookie must carry it.
pub const CSRF_HEADER: &str = "x-tasker-csrf";

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Caller {
    /// Authentication is off: everything is allowed and nothing is attributed.
    Anyone,
    /// A valid token.
    Token(Principal),
}

impl Caller {
    /// `Ok` when the caller may have `access` to `namespace`; else 403 `FORBIDDEN` naming the
    /// scope needed.
    pub fn require(&self, namespace: &str, access: Access) -> Result<(), ApiError> {
        match self {
            Caller::Anyone => Ok(()),
            Caller::Token(p) if p.scopes.allows(namespace, access) => Ok(()),
            Caller::Token(p) => Err(forbidden(&p.name, &format!("{namespace}:{}", access.as_str()))),
        }
    }

    /// `Ok` when the caller may have `access` to every namespace (`*:<access>`).
    pub fn require_everything(&self, access: Access) -> Result<(), ApiError> {
        match self {
            Caller::Anyone => Ok(()),
            Caller::Token(p) if p.scopes.allows_everywhere(access) => Ok(()),
            Caller::Token(p) => Err(forbidden(&p.name, &format!("*:{}", access.as_str()))),
        }
    }

    /// Whether the caller may read `namespace`.
    pub fn can_read(&self, namespace: &str) -> bool {
        self.require(namespace, Access::Read).is_ok()
    }

    /// The templates of namespaces the caller may read.
    pub fn readable_templates(
        &self,
        mut templates: Vec<tasker_engine::TemplateSummary>,
    ) -> Vec<tasker_engine::TemplateSummary> {
        templates.retain(|t| self.can_read(&t.namespace));
        templates
    }

    /// The workers serving a namespace the caller may read, each with only those namespaces.
    pub fn readable_workers(&self, mut workers: Vec<tasker_engine::WorkerView>) -> Vec<tasker_engine::WorkerView> {
        for w in &mut workers {
            w.namespaces.retain(|ns| self.can_read(ns));
        }
        workers.retain(|w| !w.namespaces.is_empty());
        workers
    }

    /// The namespaces the caller may read: `None` for every one.
    pub fn within(&self) -> Option<Vec<String>> {
        match self {
            Caller::Anyone => None,
            Caller::Token(p) => p.scopes.readable(),
        }
    }

    /// Who to record as the actor of what this caller does.
    pub fn actor(&self) -> Option<Actor> {
        match self {
            Caller::Anyone => None,
            Caller::Token(p) => Some(Actor::Token { name: p.name.clone() }),
        }
    }

    /// The token's name, when there is one.
    pub fn name(&self) -> Option<&str> {
        match self {
            Caller::Anyone => None,
            Caller::Token(p) => Some(&p.name),
        }
    }
}

fn forbidden(token: &str, scope: &str) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
        format!("the token {token:?} lacks the scope {scope}"),
    );
    e.body.details = vec![ErrorDetail::new("/headers/authorization", "scope", scope)];
    e
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Caller, ApiError> {
        // Every route that asks for a caller sits behind `authenticate`.
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            tracing::error!(path = %parts.uri.path(), "a route asked for the caller before authentication");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                "the server failed to handle the request; see its log",
            )
        })
    }
}

/// Routes anyone may call, whatever the mode.
fn always_open(path: &str) -> bool {
    matches!(path, "/health" | "/v1/openapi.json" | "/ui/login" | "/ui/logout") || path.starts_with("/ui/assets/")
}

/// Where the credentials of a request came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Header,
    Cookie,
}

/// The secret a request carries: `Authorization: Bearer <secret>` first, else the session
/// cookie. `Err` for an `Authorization` header of another scheme.
fn credentials(headers: &HeaderMap) -> Result<Option<(String, Source)>, &'static str> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| "the Authorization header is not text")?;
        let (scheme, secret) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
        if !scheme.eq_ignore_ascii_case("bearer") || secret.trim().is_empty() {
            return Err("the Authorization header must be `Bearer <token>`");
        }
        return Ok(Some((secret.trim().to_string(), Source::Header)));
    }
    Ok(session_cookie(headers).map(|s| (s, Source::Cookie)))
}

/// The session cookie's value, if the request has one.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == SESSION_COOKIE)
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty())
}

/// 401 `UNAUTHENTICATED` with `WWW-Authenticate: Bearer` (RFC 6750; `invalid_token` when a
/// token was sent but refused).
fn unauthenticated(message: &str, invalid_token: bool) -> Response {
    let mut res = ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message)
        .with_field("/headers/authorization", "authentication", message)
        .into_response();
    let challenge = if invalid_token {
        format!("Bearer realm=\"tasker\", error=\"invalid_token\", error_description=\"{message}\"")
    } else {
        "Bearer realm=\"tasker\"".to_string()
    };
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}

/// What a refused secret is told.
pub(crate) fn refusal(f: AuthFailure) -> &'static str {
    match f {
        AuthFailure::Unknown => "the token is not valid",
        AuthFailure::Expired => "the token has expired",
        AuthFailure::Revoked => "the token has been revoked",
    }
}

/// A dashboard page's way to the login form, coming back to the page after.
fn to_login(req: &Request, reason: Option<&str>) -> Response {
    let next = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/ui/tasks");
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("next", next);
    if let Some(r) = reason {
        query.append_pair("reason", r);
    }
    Redirect::to(&format!("/ui/login?{}", query.finish())).into_response()
}

/// Authenticates each request (see the module's invariant) and hands it on with its
/// [`Caller`], or answers 401 (a dashboard page: a redirect to the login form) or 403.
pub(crate) async fn authenticate(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let open = always_open(path)
        || (path == "/ready" && s.auth.open.contains(&OpenRoute::Ready))
        || (path == "/metrics" && s.auth.open.contains(&OpenRoute::Metrics));
    if s.auth.mode == AuthMode::None || open {
        req.extensions_mut().insert(Caller::Anyone);
        return next.run(req).await;
    }
    let page = path == "/ui" || path.starts_with("/ui/");
    let (secret, source) = match credentials(req.headers()) {
        Ok(Some(c)) => c,
        Ok(None) if page => return to_login(&req, None),
        Ok(None) => {
            return unauthenticated(
                "this request needs an API token: send `Authorization: Bearer <token>` (create one with `tasker token create`)",
                false,
            )
        }
        Err(problem) => return unauthenticated(problem, true),
    };
    let principal = match s.engine.authenticate(&secret).await {
        Ok(Ok(p)) => p,
        Ok(Err(failure)) if page && source == Source::Cookie => return to_login(&req, Some(refusal(failure))),
        Ok(Err(failure)) => return unauthenticated(refusal(failure), true),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if source == Source::Cookie && !safe && !req.headers().contains_key(CSRF_HEADER) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            format!("an action authenticated by the dashboard's cookie must carry the {CSRF_HEADER} header"),
        )
        .with_field(
            &format!("/headers/{CSRF_HEADER}"),
            "required",
            "the dashboard's own header is missing",
        )
        .into_response();
    }
    // `/metrics` closed spans every namespace; `/ready` closed needs only a valid token.
    if path == "/metrics" {
        if let Err(e) = Caller::Token(principal.clone()).require_everything(Access::Read) {
            return e.into_response();
        }
    }
    tracing::Span::current().record("token", principal.name.as_str());
    req.extensions_mut().insert(Caller::Token(principal));
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn the_bearer_header_wins_over_the_cookie_and_other_schemes_are_refused() {
        let both = headers(&[("authorization", "Bearer tkr_a"), ("cookie", "tasker_session=tkr_b")]);
        assert_eq!(credentials(&both).unwrap().map(|(s, _)| s), Some("tkr_a".to_string()));
        let cookie = headers(&[("cookie", "theme=dark; tasker_session=tkr_b")]);
        assert_eq!(credentials(&cookie).unwrap().map(|(s, _)| s), Some("tkr_b".to_string()));
        assert!(credentials(&headers(&[("authorization", "Basic dXNlcjpwYXNz")])).is_err());
        assert!(credentials(&headers(&[("authorization", "Bearer ")])).is_err());
        assert!(credentials(&headers(&[])).unwrap().is_none());
        assert!(credentials(&headers(&[("cookie", "tasker_session=")]))
            .unwrap()
            .is_none());
    }

    #[test]
    fn modes_and_open_routes_parse() {
        assert_eq!("tokens".parse::<AuthMode>(), Ok(AuthMode::Tokens));
        assert_eq!("none".parse::<AuthMode>(), Ok(AuthMode::None));
        assert!("off".parse::<AuthMode>().is_err());
        assert_eq!("metrics".parse::<OpenRoute>(), Ok(OpenRoute::Metrics));
        assert!("tasks".parse::<OpenRoute>().is_err());
    }

    #[test]
    fn only_health_the_document_and_the_login_are_always_open() {
        for open in ["/health", "/v1/openapi.json", "/ui/login", "/ui/assets/app.js"] {
            assert!(always_open(open), "{open}");
        }
        for closed in ["/ready", "/metrics", "/v1/tasks", "/ui/tasks", "/ui", "/ui/assetsx"] {
            assert!(!always_open(closed), "{closed}");
        }
    }
}
