//! Images sent inline as `data:` URLs (RFC 2397); remote URLs are refused, nothing is fetched.

use base64::Engine;

/// The bytes of a `data:[<type>];base64,<data>` URL, or why it is not one we take.
pub fn decode(url: &str) -> Result<Vec<u8>, String> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Err(
            "remote image URLs are not fetched (the server reads no network): send \
                    the image inline as a data: URL, data:image/png;base64,..."
                .into(),
        );
    }
    let Some(rest) = url.strip_prefix("data:") else {
        return Err("not a data: URL (expected data:image/png;base64,...)".into());
    };
    let Some((header, data)) = rest.split_once(',') else {
        return Err("a data: URL without the ',' before its data".into());
    };
    if !header
        .split(';')
        .any(|part| part.eq_ignore_ascii_case("base64"))
    {
        return Err(format!(
            "a data: URL must be base64 (data:image/png;base64,...), got data:{header},..."
        ));
    }
    let compact: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|err| format!("the data: URL's base64 does not decode: {err}"))
}

/// `bytes` as a `data:` URL of media type `mime`.
pub fn encode(mime: &str, bytes: &[u8]) -> String {
    format!(
        "data:{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_url_round_trips_and_remote_urls_are_refused() {
        let url = encode("image/png", b"\x89PNG\r\n");
        assert_eq!(decode(&url).unwrap(), b"\x89PNG\r\n");
        assert!(
            decode("https://example.com/a.png")
                .unwrap_err()
                .contains("not fetched")
        );
        assert!(decode("data:image/png,abc").unwrap_err().contains("base64"));
        assert!(
            decode("data:image/png;base64,@@@")
                .unwrap_err()
                .contains("decode")
        );
        assert!(
            decode("file:///etc/passwd")
                .unwrap_err()
                .contains("not a data: URL")
        );
    }
}
