//! Variable resolution in configuration values: `#{codepipeline.PipelineExecutionId}`, `#{variables.Name}` and
//! `#{Namespace.Key}`. Resolution is single-pass: substituted values are not scanned again (behaviour.md §8.1).

/// Replaces every `#{namespace.key}` in `text` using `lookup`; the first reference `lookup` cannot resolve is
/// returned as the error (without the braces).
pub fn resolve(text: &str, lookup: impl Fn(&str, &str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("#{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let reference = &after[..end];
        let (namespace, key) = reference.split_once('.').unwrap_or((reference, ""));
        let value = lookup(namespace, key).ok_or_else(|| reference.to_string())?;
        out.push_str(&rest[..start]);
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
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

    #[test]
    fn references_are_replaced_once() {
        assert_eq!(resolve("id=#{codepipeline.PipelineExecutionId};", lookup), Ok("id=e-1;".into()));
        assert_eq!(resolve("#{Src.CommitId}", lookup), Ok("#{Src.Other}".into()), "no second pass");
        assert_eq!(resolve("plain #{unterminated", lookup), Ok("plain #{unterminated".into()));
    }

    #[test]
    fn unresolvable_references_are_reported() {
        assert_eq!(resolve("x #{Nope.Key} y", lookup), Err("Nope.Key".into()));
    }
}
