//! Variable resolution in configuration values: `#{codepipeline.PipelineExecutionId}`, `#{variables.Name}` and
//! `#{Namespace.Key}`. Resolution is single-pass: substituted values are not scanned again (behaviour.md §8.1).

/// Why a value could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolvable {
    /// A reference names nothing (the reference, without the braces).
    Unknown(String),
    /// The resolved value would be longer than allowed.
    TooLong,
}

/// Replaces every `#{namespace.key}` in `text` using `lookup`. The first reference `lookup` cannot resolve is the
/// error, and so is a result longer than `max_chars` characters: resolution stops there rather than building it.
pub fn resolve(
    text: &str,
    max_chars: usize,
    lookup: impl Fn(&str, &str) -> Option<String>,
) -> Result<String, Unresolvable> {
    let mut out = String::with_capacity(text.len().min(max_chars));
    let mut chars = 0usize;
    let mut push = |out: &mut String, piece: &str| {
        chars = chars.saturating_add(piece.chars().count());
        if chars > max_chars {
            return Err(Unresolvable::TooLong);
        }
        out.push_str(piece);
        Ok(())
    };
    let mut rest = text;
    while let Some(start) = rest.find("#{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let reference = &after[..end];
        let (namespace, key) = reference.split_once('.').unwrap_or((reference, ""));
        let value = lookup(namespace, key).ok_or_else(|| Unresolvable::Unknown(reference.to_string()))?;
        push(&mut out, &rest[..start])?;
        push(&mut out, &value)?;
        rest = &after[end + 1..];
    }
    push(&mut out, rest)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(namespace: &str, key: &str) -> Option<String> {
        match (namespace, key) {
            ("codepipeline", "PipelineExecutionId") => Some("e-1".into()),
            ("Src", "CommitId") => Some("#{Src.Other}".into()),
            _ => None,
        }
    }

    const MAX: usize = 1000;

    #[test]
    fn references_are_replaced_once() {
        assert_eq!(resolve("id=#{codepipeline.PipelineExecutionId};", MAX, lookup), Ok("id=e-1;".into()));
        assert_eq!(resolve("#{Src.CommitId}", MAX, lookup), Ok("#{Src.Other}".into()), "no second pass");
        assert_eq!(resolve("plain #{unterminated", MAX, lookup), Ok("plain #{unterminated".into()));
    }

    #[test]
    fn unresolvable_references_are_reported() {
        assert_eq!(resolve("x #{Nope.Key} y", MAX, lookup), Err(Unresolvable::Unknown("Nope.Key".into())));
    }

    #[test]
    fn results_longer_than_the_limit_are_refused() {
        let text = "#{codepipeline.PipelineExecutionId}".repeat(10);
        assert_eq!(resolve(&text, 30, lookup), Ok("e-1".repeat(10)));
        assert_eq!(resolve(&text, 29, lookup), Err(Unresolvable::TooLong));
        assert_eq!(resolve("ééé", 3, lookup), Ok("ééé".into()), "the limit counts characters");
    }
}
