//! The one place engine errors become HTTP answers: every error the API gives is an [`ApiError`],
//! answered as `{"error": {code, message, field, details}}` (spec §0.3) with its status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tasker_engine::{CreateError, CreateErrorKind, EngineError, EngineErrorKind, ErrorDetail};

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorObject,
}

/// What went wrong, spec §0.3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorObject {
    /// UPPER_SNAKE: `INVALID_REQUEST`, `TEMPLATE_NOT_FOUND`, `IDEMPOTENCY_CONFLICT`,
    /// `INVALID_TASK_INPUT`, `TASK_NOT_FOUND`, `STEP_NOT_FOUND`, `CONFLICT`, `NOT_FOUND`,
    /// `METHOD_NOT_ALLOWED`, `PAYLOAD_TOO_LARGE`, `URI_TOO_LONG`, `HEADERS_TOO_LARGE`,
    /// `UNSUPPORTED_MEDIA_TYPE`, `ENGINE_UNAVAILABLE`, `INTERNAL_ERROR`.
    pub code: String,
    pub message: String,
    /// JSON Pointer into the request (body, path parameter or query parameter) to blame.
    #[schema(required)]
    pub field: Option<String>,
    /// Every problem, sorted by field; the first is repeated in `field` and `message`.
    pub details: Vec<ErrorDetail>,
}

/// An error answer: status plus body.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorObject,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorObject {
                code: code.to_string(),
                message: message.into(),
                field: None,
                details: vec![],
            },
        }
    }

    /// A 400 `INVALID_REQUEST` naming the offending field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message.clone()).with_field(field, "request", message)
    }

    /// Names `field` as the culprit, with one detail.
    pub fn with_field(mut self, field: &str, keyword: &str, detail: impl Into<String>) -> Self {
        self.body.field = Some(field.to_string());
        self.body.details = vec![ErrorDetail::new(field, keyword, detail)];
        self
    }

    fn internal(cause: &dyn std::fmt::Display) -> Self {
        // The cause may hold database text: it goes to the log, never to the client.
        tracing::error!(error = %cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "the server failed to handle the request; see its log",
        )
    }

    fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "database unavailable");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            CreateErrorKind::Unavailable.code(),
            "the database is unavailable; try again shortly",
        )
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e.kind() {
            EngineErrorKind::NotFound => {
                let (code, field) = match &e {
                    EngineError::StepNotFound { .. } => ("STEP_NOT_FOUND", "/step_name"),
                    _ => ("TASK_NOT_FOUND", "/task_uuid"),
                };
                ApiError::new(StatusCode::NOT_FOUND, code, e.to_string()).with_field(field, "exists", e.to_string())
            }
            EngineErrorKind::Conflict => ApiError::new(StatusCode::CONFLICT, "CONFLICT", e.to_string()),
            EngineErrorKind::Invalid => ApiError::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", e.to_string()),
            EngineErrorKind::Unavailable => ApiError::unavailable(&e),
            _ => ApiError::internal(&e),
        }
    }
}

impl From<CreateError> for ApiError {
    fn from(e: CreateError) -> Self {
        let status = match e.kind() {
            CreateErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
            CreateErrorKind::TemplateNotFound => StatusCode::NOT_FOUND,
            CreateErrorKind::IdempotencyConflict => StatusCode::CONFLICT,
            CreateErrorKind::InvalidTaskInput => StatusCode::UNPROCESSABLE_ENTITY,
            CreateErrorKind::Unavailable => return ApiError::unavailable(&e),
            _ => return ApiError::internal(&e),
        };
        ApiError {
            status,
            body: ErrorObject {
                code: e.kind().code().to_string(),
                message: e.to_string(),
                field: e.field(),
                details: e.details(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(ErrorBody { error: self.body })).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}
