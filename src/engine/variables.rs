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
    let mut copied = 0;
    for reference in references(text) {
        let (namespace, key) = reference.text.split_once('.').unwrap_or((reference.text, ""));
        let value = lookup(namespace, key).ok_or_else(|| Unresolvable::Unknown(reference.text.to_string()))?;
        push(&mut out, &text[copied..reference.start])?;
        push(&mut out, &value)?;
        copied = reference.end;
    }
    push(&mut out, &text[copied..])?;
    Ok(out)
}

/// The value of `#{namespace.key}` in an execution, if it has one.
pub fn lookup(execution: &crate::state::execution::Execution, namespace: &str, key: &str) -> Option<String> {
    match namespace {
        "codepipeline" if key == "PipelineExecutionId" => Some(execution.id.to_string()),
        "variables" if execution.declaration.variables.as_deref().is_some_and(|v| !v.is_empty()) => {
            execution.variables.iter().find(|v| v.name == key).map(|v| v.resolved_value.clone())
        }
        _ => execution
            .running
            .as_ref()
            .and_then(|r| r.namespaces.get(namespace))
            .and_then(|vars| crate::state::execution::variable(vars, key))
            .map(str::to_string),
    }
}

/// One `#{...}` reference in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reference<'a> {
    /// Where `#{` starts.
    pub start: usize,
    /// Just after the closing `}`.
    pub end: usize,
    /// What is between the braces.
    pub text: &'a str,
}

/// The `#{...}` references of `text`, in order: the one scanner of references, for resolving them and for checking
/// them in a pipeline's declaration. A `#{` without a closing brace ends the scan.
pub fn references(text: &str) -> impl Iterator<Item = Reference<'_>> {
    let mut from = 0;
    std::iter::from_fn(move || {
        let start = from + text.get(from..)?.find("#{")?;
        let inner = start + 2;
        let end = inner + text.get(inner..)?.find('}')?;
        from = end + 1;
        Some(Reference { start, end: end + 1, text: &text[inner..end] })
    })
}

/// Puts an execution's pipeline variables in the order AWS returns them: a function of the names alone, whatever the
/// order of declaration or of the overrides in the request. The order is that of a Java `HashMap` keyed by the names:
/// by bucket (`String.hashCode`, spread, over a table of 16 slots, doubled while more than three quarters full).
/// Within a bucket, two AWS answers show Zulu before Middle whichever of them was declared first or overridden
/// (declared Middle, Alpha, Zulu with Middle and Alpha overridden \[NATIVE\]; declared Zulu, Alpha, Middle with Zulu
/// and Alpha overridden in either order [issue 28]): the spread hash decides there, as it would in a larger table,
/// and declaration order only between equal hashes. Beyond these two answers the rule is UNCONFIRMED.
pub fn aws_order<T>(variables: &mut [T], name: impl Fn(&T) -> &str) {
    let mut capacity = 16u32;
    while variables.len() * 4 > capacity as usize * 3 {
        capacity = capacity.saturating_mul(2);
    }
    let spread = |n: &str| {
        let hash = n.encode_utf16().fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)));
        let hash = hash.cast_unsigned();
        hash ^ (hash >> 16)
    };
    // A stable sort keeps declaration order between equal keys.
    variables.sort_by_cached_key(|v| {
        let hash = spread(name(v));
        (hash & (capacity - 1), hash)
    });
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

    fn ordered(declared: &[&'static str]) -> Vec<&'static str> {
        let mut names = declared.to_vec();
        aws_order(&mut names, |n| n);
        names
    }

    #[test]
    fn variables_come_in_aws_hash_order() {
        // Declared Middle, Alpha, Zulu [NATIVE] or Zulu, Alpha, Middle [issue 28]: AWS answers Alpha, Zulu, Middle.
        assert_eq!(ordered(&["Middle", "Alpha", "Zulu"]), ["Alpha", "Zulu", "Middle"]);
        assert_eq!(ordered(&["Zulu", "Alpha", "Middle"]), ["Alpha", "Zulu", "Middle"]);
        // "Aa" and "BB" have the same hash: declaration order decides between them.
        assert_eq!(ordered(&["BB", "Aa"]), ["BB", "Aa"]);
        assert_eq!(ordered(&["Aa", "BB"]), ["Aa", "BB"]);
        // Thirteen names need 32 buckets: still a permutation of them.
        let many = ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M"];
        let mut sorted = ordered(&many);
        sorted.sort_unstable();
        assert_eq!(sorted, many);
    }

    #[test]
    fn references_are_replaced_once() {
        assert_eq!(resolve("id=#{codepipeline.PipelineExecutionId};", MAX, lookup), Ok("id=e-1;".into()));
        assert_eq!(resolve("#{Src.CommitId}", MAX, lookup), Ok("#{Src.Other}".into()), "no second pass");
        assert_eq!(resolve("plain #{unterminated", MAX, lookup), Ok("plain #{unterminated".into()));
    }

    #[test]
    fn references_are_found_in_order_with_their_places() {
        let found: Vec<_> = references("a#{x.y}b#{z}#{open").map(|r| (r.start, r.end, r.text)).collect();
        assert_eq!(found, [(1, 7, "x.y"), (8, 12, "z")]);
        assert_eq!(references("#{}").map(|r| r.text).collect::<Vec<_>>(), [""]);
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
