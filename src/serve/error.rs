//! A refused request: an HTTP status and an OpenAI-style JSON error naming the field and the
//! problem.

use serde_json::{Value, json};

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status (4xx for the client's input, 5xx for the server's state).
    pub status: u16,
    /// What is wrong, for a person.
    pub message: String,
    /// The request field at fault (`messages[2].content[0].image_url.url`), if one is.
    pub param: Option<String>,
    /// A stable code for programs (`invalid_image`, `too_many_images`, ...).
    pub code: &'static str,
}

impl ApiError {
    /// A 400 about `param`.
    pub fn invalid(
        param: impl Into<String>,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status: 400,
            message: message.into(),
            param: Some(param.into()),
            code,
        }
    }

    /// An error with no field at fault.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            param: None,
            code,
        }
    }

    /// The JSON body: `{"error": {"message", "type", "param", "code"}}`.
    pub fn body(&self) -> Value {
        let kind = if self.status >= 500 {
            "server_error"
        } else {
            "invalid_request_error"
        };
        let message = match &self.param {
            Some(param) => format!("{param}: {}", self.message),
            None => self.message.clone(),
        };
        json!({"error": {
            "message": message,
            "type": kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.body()["error"]["message"])
    }
}

impl std::error::Error for ApiError {}
