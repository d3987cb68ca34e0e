//! Opaque, tamper-evident pagination tokens and a page cutter.
//!
//! A token records the sort key of the last item served and the operation it belongs to, sealed with a keyed hash
//! whose key is drawn at random when the process starts. A token this server did not issue (or issued for another
//! operation, or before a restart) fails the check and is answered with `InvalidNextTokenException`, as AWS does.
//! Because a token names a position rather than an index, items created or deleted between pages never make a
//! later page repeat or skip an item that existed throughout.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::LazyLock;

use super::error::{ApiError, ErrorCode};

/// The process-wide secret key of the token seal.
static SEAL: LazyLock<RandomState> = LazyLock::new(RandomState::new);

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

/// Issues a token for `kind` (usually the operation name) that resumes after the item with sort key `position`.
pub fn issue(kind: &str, position: &str) -> String {
    let payload = hex_encode(position.as_bytes());
    format!("{payload}.{:016x}", seal(kind, &payload))
}

/// Checks a token and returns the position it resumes after.
pub fn redeem(kind: &str, token: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::new(ErrorCode::InvalidNextTokenException, "The nextToken is invalid or has expired");
    let (payload, mac) = token.rsplit_once('.').ok_or_else(invalid)?;
    let mac = u64::from_str_radix(mac, 16).map_err(|_| invalid())?;
    if mac != seal(kind, payload) {
        return Err(invalid());
    }
    let bytes = hex_decode(payload).ok_or_else(invalid)?;
    String::from_utf8(bytes).map_err(|_| invalid())
}

/// Cuts one page out of `items`, which must be sorted ascending by `key`. A page holds at most `max` items; when
/// more follow, the page carries a token that resumes after its last item.
pub fn paginate<T>(
    kind: &str,
    items: impl IntoIterator<Item = T>,
    key: impl Fn(&T) -> String,
    token: Option<&str>,
    max: usize,
) -> Result<Page<T>, ApiError> {
    let after = token.map(|t| redeem(kind, t)).transpose()?;
    let mut remaining = items
        .into_iter()
        .skip_while(|item| after.as_deref().is_some_and(|after| key(item).as_str() <= after))
        .peekable();
    let max = max.max(1);
    let mut page = Vec::new();
    while page.len() < max {
        match remaining.next() {
            Some(item) => page.push(item),
            None => break,
        }
    }
    let next_token = match (remaining.peek(), page.last()) {
        (Some(_), Some(last)) => Some(issue(kind, &key(last))),
        _ => None,
    };
    Ok(Page { items: page, next_token })
}

fn seal(kind: &str, payload: &str) -> u64 {
    let mut hasher = SEAL.build_hasher();
    hasher.write(kind.as_bytes());
    hasher.write_u8(0xff);
    hasher.write(payload.as_bytes());
    hasher.finish()
}

fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// The bytes of lowercase or uppercase hex text; `None` if it is not hex.
pub(crate) fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| text.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let token = issue("ListPipelines", "pipe-ü-42");
        assert_eq!(redeem("ListPipelines", &token).expect("valid"), "pipe-ü-42");
    }

    #[test]
    fn foreign_or_tampered_tokens_are_refused() {
        let token = issue("ListPipelines", "b");
        for bad in [
            "garbage".to_string(),
            String::new(),
            ".".to_string(),
            token.replacen('6', "7", 1),
            format!("{token}0"),
            "zz.0000000000000000".to_string(),
        ] {
            let err = redeem("ListPipelines", &bad).expect_err("refused");
            assert_eq!(err.code, ErrorCode::InvalidNextTokenException, "{bad}");
        }
        assert!(redeem("ListWebhooks", &token).is_err(), "a token is bound to its operation");
    }

    #[test]
    fn pages_cover_every_item_once() {
        let items: Vec<String> = (0..25).map(|i| format!("item-{i:02}")).collect();
        let mut seen = Vec::new();
        let mut token = None;
        loop {
            let page = paginate("T", items.clone(), |s| s.clone(), token.as_deref(), 10).expect("valid");
            seen.extend(page.items);
            match page.next_token {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, items);
    }

    #[test]
    fn exact_multiple_has_no_trailing_token() {
        let items = vec!["a", "b"];
        let page = paginate("T", items, |s| (*s).to_string(), None, 2).expect("valid");
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.next_token, None);
    }

    #[test]
    fn deletions_between_pages_do_not_skip_survivors() {
        let first = paginate("T", vec!["a", "b", "c", "d"], |s| (*s).to_string(), None, 2).expect("valid");
        assert_eq!(first.items, ["a", "b"]);
        // "b" (the position) and "c" are deleted before the next call.
        let next = paginate("T", vec!["a", "d"], |s| (*s).to_string(), first.next_token.as_deref(), 2).expect("valid");
        assert_eq!(next.items, ["d"]);
    }
}
