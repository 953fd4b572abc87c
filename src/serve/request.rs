//! `POST /v1/chat/completions` bodies in the OpenAI chat format, read into an LCL episode:
//! each support shot is a user turn with one image followed by an assistant turn whose text
//! is its label; the last user turn's image is the query. Every refusal names its field.

use serde_json::{Map, Value};

use crate::serve::data_url;
use crate::serve::error::ApiError;
use crate::template::SYSTEM_TEXT;

/// The request limits a server enforces.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Most images in one request (support shots and the query).
    pub max_images: usize,
    /// Most tokens one request may generate (`max_tokens`); also its default.
    pub max_tokens: usize,
    /// Longest prompt plus answer in tokens (the model's context).
    pub max_context: usize,
}

/// An image of the request, still encoded as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    /// The file's bytes (PNG, JPEG, ...).
    pub bytes: Vec<u8>,
    /// Where it was in the request, for errors.
    pub param: String,
}

/// How to pick tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// 0 = greedy (the original's evaluation).
    pub temperature: f64,
    /// Nucleus mass.
    pub top_p: f64,
    /// Sampler seed.
    pub seed: u64,
}

/// A chat completion request, read.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// Support shots in prompt order: image and label.
    pub support: Vec<(Upload, String)>,
    /// The query image.
    pub query: Upload,
    /// Token choice.
    pub sampling: Sampling,
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Strings that end the answer (not included in it).
    pub stop: Vec<String>,
    /// Answer as server-sent events.
    pub stream: bool,
    /// With `stream`: a last event with `usage`.
    pub include_usage: bool,
    /// Also score each shown name's likelihood as the answer (the `lcl` extension).
    pub score_names: bool,
}

/// Fields of the OpenAI chat format this server reads; any other is refused, as OpenAI's
/// own API refuses an unrecognised argument.
const KNOWN_FIELDS: [&str; 17] = [
    "model",
    "messages",
    "temperature",
    "top_p",
    "seed",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "stream",
    "stream_options",
    "n",
    "user",
    "logprobs",
    "presence_penalty",
    "frequency_penalty",
    "lcl",
    "metadata",
];

/// Reads a request body; `model` is the id the server serves.
pub fn parse(body: &[u8], model: &str, limits: &Limits) -> Result<ChatRequest, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|err| {
        ApiError::new(400, "invalid_json", format!("the body is not JSON: {err}"))
    })?;
    let Value::Object(fields) = value else {
        return Err(ApiError::new(
            400,
            "invalid_json",
            "the body must be a JSON object",
        ));
    };
    if let Some(unknown) = fields.keys().find(|k| !KNOWN_FIELDS.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            unknown.clone(),
            "unsupported_parameter",
            "not a parameter this server takes (it reads: model, messages, temperature, \
             top_p, seed, max_tokens, stop, stream, stream_options, n = 1, lcl)",
        ));
    }
    check_model(&fields, model)?;
    check_defaults(&fields)?;
    let (support, query) = episode(fields.get("messages"), limits)?;
    let max_tokens = max_tokens(&fields, limits)?;
    let stream = optional_bool(&fields, "stream")?.unwrap_or(false);
    let include_usage = match fields.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(options)) => optional_bool(options, "include_usage")
            .map_err(|e| prefixed(e, "stream_options"))?
            .unwrap_or(false),
        Some(_) => {
            return Err(ApiError::invalid(
                "stream_options",
                "invalid_type",
                "must be an object",
            ));
        }
    };
    let score_names = match fields.get("lcl") {
        None | Some(Value::Null) => false,
        Some(Value::Object(options)) => {
            if let Some(unknown) = options.keys().find(|k| k.as_str() != "score_names") {
                return Err(ApiError::invalid(
                    format!("lcl.{unknown}"),
                    "unsupported_parameter",
                    "the lcl extension takes score_names only",
                ));
            }
            optional_bool(options, "score_names")
                .map_err(|e| prefixed(e, "lcl"))?
                .unwrap_or(false)
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "lcl",
                "invalid_type",
                "must be an object",
            ));
        }
    };
    Ok(ChatRequest {
        support,
        query,
        sampling: sampling(&fields)?,
        max_tokens,
        stop: stop(fields.get("stop"))?,
        stream,
        include_usage,
        score_names,
    })
}

fn check_model(fields: &Map<String, Value>, model: &str) -> Result<(), ApiError> {
    match fields.get("model") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(name)) if name == model => Ok(()),
        Some(Value::String(name)) => Err(ApiError {
            status: 404,
            message: format!("this server serves {model:?}, not {name:?} (GET /v1/models)"),
            param: Some("model".into()),
            code: "model_not_found",
        }),
        Some(_) => Err(ApiError::invalid(
            "model",
            "invalid_type",
            "must be a string",
        )),
    }
}

/// Parameters taken only at their neutral values: anything else would be ignored.
fn check_defaults(fields: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some(n) = fields.get("n").filter(|v| !v.is_null())
        && n.as_u64() != Some(1)
    {
        return Err(ApiError::invalid(
            "n",
            "unsupported_value",
            "only n = 1 is served",
        ));
    }
    if fields
        .get("logprobs")
        .is_some_and(|v| v.as_bool() == Some(true))
    {
        return Err(ApiError::invalid(
            "logprobs",
            "unsupported_value",
            "token log-probabilities are not served; lcl.score_names gives each shown \
             name's likelihood",
        ));
    }
    for penalty in ["presence_penalty", "frequency_penalty"] {
        if let Some(v) = fields.get(penalty).filter(|v| !v.is_null())
            && v.as_f64() != Some(0.0)
        {
            return Err(ApiError::invalid(
                penalty,
                "unsupported_value",
                "only 0 is served",
            ));
        }
    }
    if fields
        .get("user")
        .is_some_and(|v| !v.is_string() && !v.is_null())
    {
        return Err(ApiError::invalid(
            "user",
            "invalid_type",
            "must be a string",
        ));
    }
    Ok(())
}

fn sampling(fields: &Map<String, Value>) -> Result<Sampling, ApiError> {
    let temperature = optional_number(fields, "temperature")?.unwrap_or(0.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::invalid(
            "temperature",
            "invalid_value",
            "must be within 0..=2",
        ));
    }
    let top_p = optional_number(fields, "top_p")?.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::invalid(
            "top_p",
            "invalid_value",
            "must be within (0, 1]",
        ));
    }
    let seed = match fields.get("seed") {
        None | Some(Value::Null) => 42,
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_i64().map(|s| s as u64))
            .ok_or_else(|| ApiError::invalid("seed", "invalid_type", "must be an integer"))?,
    };
    Ok(Sampling {
        temperature,
        top_p,
        seed,
    })
}

fn max_tokens(fields: &Map<String, Value>, limits: &Limits) -> Result<usize, ApiError> {
    let mut asked = None;
    for name in ["max_completion_tokens", "max_tokens"] {
        match fields.get(name) {
            None | Some(Value::Null) => {}
            Some(v) => {
                let n = v.as_u64().filter(|&n| n > 0).ok_or_else(|| {
                    ApiError::invalid(name, "invalid_value", "must be a positive integer")
                })?;
                if n as usize > limits.max_tokens {
                    return Err(ApiError::invalid(
                        name,
                        "max_tokens_exceeded",
                        format!(
                            "{n} is over this server's limit of {} tokens (--max-tokens)",
                            limits.max_tokens
                        ),
                    ));
                }
                asked = asked.or(Some(n as usize));
            }
        }
    }
    Ok(asked.unwrap_or(limits.max_tokens))
}

fn stop(value: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let stops = match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str().map(str::to_string).ok_or_else(|| {
                    ApiError::invalid(format!("stop[{i}]"), "invalid_type", "must be a string")
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::invalid(
                "stop",
                "invalid_type",
                "must be a string or a list of strings",
            ));
        }
    };
    if stops.len() > 4 {
        return Err(ApiError::invalid(
            "stop",
            "invalid_value",
            "at most 4 stop strings",
        ));
    }
    if stops.iter().any(String::is_empty) {
        return Err(ApiError::invalid(
            "stop",
            "invalid_value",
            "a stop string is empty",
        ));
    }
    Ok(stops)
}

/// The support shots and the query from `messages`.
fn episode(
    messages: Option<&Value>,
    limits: &Limits,
) -> Result<(Vec<(Upload, String)>, Upload), ApiError> {
    let Some(Value::Array(messages)) = messages else {
        return Err(ApiError::invalid(
            "messages",
            "invalid_type",
            "a list of messages is needed: user turns with an image, each support shot's \
             followed by an assistant turn with its label, the last one the query",
        ));
    };
    let mut turns = messages.iter().enumerate().peekable();
    if let Some((i, first)) = turns.peek()
        && role(first, *i)? == "system"
    {
        let text = text_of(first, *i)?;
        if !text.trim().is_empty() && text.trim() != SYSTEM_TEXT {
            return Err(ApiError::invalid(
                format!("messages[{i}]"),
                "unsupported_value",
                "the LCL template has its own system text; leave the system message out",
            ));
        }
        turns.next();
    }
    // a cheap bound before any image is decoded: a turn pair per image, a system message
    if messages.len() > 2 * limits.max_images + 1 {
        return Err(too_many_images(limits));
    }
    let mut support = Vec::new();
    loop {
        let Some((i, turn)) = turns.next() else {
            return Err(ApiError::invalid(
                "messages",
                "missing_query",
                "the conversation must end with a user turn holding the query image",
            ));
        };
        expect_role(turn, i, "user")?;
        let image = image_of(turn, i)?;
        if support.len() + 1 > limits.max_images {
            return Err(too_many_images(limits));
        }
        let Some((j, answer)) = turns.next() else {
            return Ok((support, image));
        };
        expect_role(answer, j, "assistant")?;
        let label = text_of(answer, j)?.trim().to_string();
        if label.is_empty() {
            return Err(ApiError::invalid(
                format!("messages[{j}].content"),
                "missing_label",
                "an assistant turn after a support image holds its label; this one is empty",
            ));
        }
        support.push((image, label));
    }
}

fn too_many_images(limits: &Limits) -> ApiError {
    ApiError::invalid(
        "messages",
        "too_many_images",
        format!(
            "more than {} images (--max-images), support shots and query together",
            limits.max_images
        ),
    )
}

fn role(message: &Value, i: usize) -> Result<&str, ApiError> {
    message.get("role").and_then(Value::as_str).ok_or_else(|| {
        ApiError::invalid(
            format!("messages[{i}].role"),
            "invalid_type",
            "a role string is needed",
        )
    })
}

fn expect_role(message: &Value, i: usize, wanted: &str) -> Result<(), ApiError> {
    let found = role(message, i)?;
    if found == wanted {
        return Ok(());
    }
    Err(ApiError::invalid(
        format!("messages[{i}].role"),
        "unexpected_role",
        format!(
            "expected a {wanted} turn, found {found:?}: an episode alternates user turns \
             (one image each) and assistant turns (its label), ending with the query's user turn"
        ),
    ))
}

/// The text of a message: a string, or its text parts joined.
fn text_of(message: &Value, i: usize) -> Result<String, ApiError> {
    match message.get("content") {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for (k, part) in parts.iter().enumerate() {
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => text.push_str(
                        part.get("text").and_then(Value::as_str).ok_or_else(|| {
                            ApiError::invalid(
                                format!("messages[{i}].content[{k}].text"),
                                "invalid_type",
                                "must be a string",
                            )
                        })?,
                    ),
                    _ => {
                        return Err(ApiError::invalid(
                            format!("messages[{i}].content[{k}]"),
                            "unexpected_part",
                            "only text parts belong here",
                        ));
                    }
                }
            }
            Ok(text)
        }
        _ => Err(ApiError::invalid(
            format!("messages[{i}].content"),
            "invalid_type",
            "must be a string or a list of parts",
        )),
    }
}

/// The one image of a user turn (its text parts are allowed: the template asks its own
/// question).
fn image_of(message: &Value, i: usize) -> Result<Upload, ApiError> {
    let no_image = || {
        ApiError::invalid(
            format!("messages[{i}].content"),
            "missing_image",
            "a user turn needs one image: an image_url part with a data: URL",
        )
    };
    let Some(Value::Array(parts)) = message.get("content") else {
        return Err(no_image());
    };
    let mut found = None;
    for (k, part) in parts.iter().enumerate() {
        let param = format!("messages[{i}].content[{k}]");
        match part.get("type").and_then(Value::as_str) {
            Some("text") => {}
            Some("image_url") => {
                if found.is_some() {
                    return Err(ApiError::invalid(
                        param,
                        "too_many_images",
                        "one image per user turn: a support shot is an image and its label",
                    ));
                }
                let url = match part.get("image_url") {
                    Some(Value::String(url)) => url,
                    Some(object) => object.get("url").and_then(Value::as_str).ok_or_else(|| {
                        ApiError::invalid(
                            format!("{param}.image_url.url"),
                            "invalid_type",
                            "must be a string",
                        )
                    })?,
                    None => {
                        return Err(ApiError::invalid(
                            format!("{param}.image_url"),
                            "invalid_type",
                            "missing",
                        ));
                    }
                };
                let param = format!("{param}.image_url.url");
                let bytes = data_url::decode(url).map_err(|message| {
                    ApiError::invalid(param.clone(), "invalid_image_url", message)
                })?;
                found = Some(Upload { bytes, param });
            }
            other => {
                return Err(ApiError::invalid(
                    param,
                    "unexpected_part",
                    format!("parts are text or image_url, not {other:?}"),
                ));
            }
        }
    }
    found.ok_or_else(no_image)
}

fn optional_bool(fields: &Map<String, Value>, name: &str) -> Result<Option<bool>, ApiError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::invalid(
            name,
            "invalid_type",
            "must be true or false",
        )),
    }
}

fn optional_number(fields: &Map<String, Value>, name: &str) -> Result<Option<f64>, ApiError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| ApiError::invalid(name, "invalid_type", "must be a number")),
    }
}

fn prefixed(mut error: ApiError, parent: &str) -> ApiError {
    error.param = error.param.map(|p| format!("{parent}.{p}"));
    error
}
