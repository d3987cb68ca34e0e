//! The one glob matcher: AWS's glob syntax for trigger filters (integrations.md §4.4), which is Java's `PathMatcher`
//! glob, also used for the names in behaviour rules ([`NamePattern`]); a pipeline version compiles each of its
//! trigger patterns once ([`GlobCache`]).
//!
//! | pattern | matches |
//! |---|---|
//! | `*` | zero or more characters within one path component (never `/`) |
//! | `**` | zero or more characters across components |
//! | `?` | exactly one character (not `/`) |
//! | `[abc]`, `[a-z]`, `[!a-c]` | one character of, or not of, a set; `*`, `?` and `\` are themselves inside; `-` is itself first |
//! | `{a,b}` | one of the alternatives; groups do not nest |
//! | `\x` | the character `x` itself |
//!
//! A pattern is translated to an anchored regular expression (the `regex` crate does the matching), as Java itself
//! does. `globset` is close but differs: its `**` crosses `/` only as a whole path component.

use regex::Regex;

/// The largest compiled form a pattern may take (patterns are at most 255 characters).
const SIZE_LIMIT: usize = 64 * 1024;

/// A compiled glob.
#[derive(Debug, Clone)]
pub struct Glob(Regex);

impl Glob {
    /// Compiles `pattern`, or says why it is not a valid glob.
    pub fn new(pattern: &str) -> Result<Glob, String> {
        let mut out = String::from("^");
        let mut chars = pattern.chars().peekable();
        let mut in_group = false;
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(escaped) => out.push_str(&regex::escape(escaped.encode_utf8(&mut [0; 4]))),
                    None => return Err(format!("The pattern '{pattern}' ends with an escape character")),
                },
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    out.push_str(".*");
                }
                '*' => out.push_str("[^/]*"),
                '?' => out.push_str("[^/]"),
                '[' => out.push_str(
                    &class(&mut chars)
                        .ok_or_else(|| format!("The pattern '{pattern}' has an unclosed '[' or a '/' inside one"))?,
                ),
                '{' if in_group => return Err(format!("The pattern '{pattern}' nests '{{' groups")),
                '{' => {
                    in_group = true;
                    out.push_str("(?:");
                }
                ',' if in_group => out.push('|'),
                '}' if in_group => {
                    in_group = false;
                    out.push(')');
                }
                other => out.push_str(&regex::escape(other.encode_utf8(&mut [0; 4]))),
            }
        }
        if in_group {
            return Err(format!("The pattern '{pattern}' has an unclosed '{{'"));
        }
        out.push('$');
        regex::RegexBuilder::new(&out)
            .size_limit(SIZE_LIMIT)
            .build()
            .map(Glob)
            .map_err(|e| format!("The pattern '{pattern}' cannot be used: {e}"))
    }

    /// Whether `value` matches the whole pattern.
    pub fn is_match(&self, value: &str) -> bool {
        self.0.is_match(value)
    }
}

/// The globs of one pipeline version's trigger filters, each compiled the first time it is used and kept with the
/// version (a version never changes, so neither do its patterns).
#[derive(Debug, Default)]
pub struct GlobCache(std::sync::Mutex<std::collections::HashMap<Box<str>, Option<Glob>>>);

impl GlobCache {
    /// Whether `value` matches `pattern` (a pattern that is not a valid glob matches nothing; CreatePipeline refuses
    /// those).
    pub fn is_match(&self, pattern: &str, value: &str) -> bool {
        let mut compiled = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if !compiled.contains_key(pattern) {
            compiled.insert(pattern.into(), Glob::new(pattern).ok());
        }
        compiled.get(pattern).and_then(Option::as_ref).is_some_and(|g| g.is_match(value))
    }
}

/// A name pattern of a behaviour rule (a pipeline, stage, action or rule name): a glob, compiled when the rule is
/// read; a text that is not a valid glob matches itself only. Names cannot hold the glob's special characters, so
/// a pattern without any is the name itself.
#[derive(Debug, Clone)]
pub struct NamePattern {
    source: String,
    glob: Option<Glob>,
}

impl NamePattern {
    /// Whether `name` matches the pattern.
    pub fn matches(&self, name: &str) -> bool {
        match &self.glob {
            Some(glob) => glob.is_match(name),
            None => self.source == name,
        }
    }
}

impl From<&str> for NamePattern {
    fn from(source: &str) -> NamePattern {
        NamePattern { source: source.to_string(), glob: Glob::new(source).ok() }
    }
}

impl PartialEq for NamePattern {
    fn eq(&self, other: &NamePattern) -> bool {
        self.source == other.source
    }
}

impl Eq for NamePattern {}

impl serde::Serialize for NamePattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> serde::Deserialize<'de> for NamePattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<NamePattern, D::Error> {
        let source = String::deserialize(deserializer)?;
        Ok(NamePattern::from(source.as_str()))
    }
}

/// A bracket expression after its `[`, as a regex class; `None` when it is not closed or names the separator
/// (which Java refuses: a class never matches `/`).
fn class(chars: &mut std::iter::Peekable<std::str::Chars>) -> Option<String> {
    let mut out = String::from("[");
    if chars.peek() == Some(&'!') {
        chars.next();
        // A negated class does not match the separator either.
        out.push_str("^/");
    }
    let mut first = true;
    loop {
        let c = chars.next()?;
        match c {
            ']' if !first => break,
            '/' => return None,
            '-' if !first && chars.peek() != Some(&']') => out.push('-'),
            other => {
                if matches!(other, '\\' | '[' | ']' | '^' | '-' | '&' | '~') {
                    out.push('\\');
                }
                out.push(other);
            }
        }
        first = false;
    }
    out.push(']');
    Some(out)
}

/// Whether a glob matches, for callers that compile once per use; an invalid pattern matches nothing.
pub fn matches(pattern: &str, value: &str) -> bool {
    Glob::new(pattern).is_ok_and(|glob| glob.is_match(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_compiles_each_pattern_once_and_an_invalid_one_matches_nothing() {
        let cache = GlobCache::default();
        assert!(cache.is_match("release/*", "release/1"));
        assert!(!cache.is_match("release/*", "release/1/2"));
        assert!(!cache.is_match("[unclosed", "[unclosed"));
        assert_eq!(cache.0.lock().expect("lock").len(), 2, "one compiled entry per pattern");
    }

    #[test]
    fn the_documented_syntax() {
        let yes = |p: &str, v: &str| assert!(matches(p, v), "'{p}' should match '{v}'");
        let no = |p: &str, v: &str| assert!(!matches(p, v), "'{p}' should not match '{v}'");
        // `*` stays within one component; `**` crosses them.
        yes("feature/*", "feature/x");
        no("feature/*", "feature/x/y");
        yes("feature/**", "feature/x/y");
        yes("main*", "main-v2");
        no("main*", "maintenance/x");
        yes("**", "src/app/main.rs");
        yes("**", "");
        yes("src/**/*.js", "src/a/b/c.js");
        yes("**.js", "a/b/c.js");
        yes("*.js", "c.js");
        no("*.js", "a/c.js");
        yes("dir/*", "dir/file");
        no("dir/*", "dir/sub/file");
        // `?` is one character, never a separator.
        yes("v?", "v1");
        no("v?", "v10");
        no("a?b", "a/b");
        // Bracket expressions.
        yes("release-[0-9]", "release-7");
        no("release-[0-9]", "release-x");
        yes("[!a-c]x", "dx");
        no("[!a-c]x", "bx");
        no("[!a-c]x", "/x");
        yes("[-a]", "-");
        yes("[*?\\]", "?");
        yes("[*?\\]", "\\");
        assert!(Glob::new("[a/b]").is_err(), "a class never names the separator");
        // Alternatives and escapes.
        yes("{main,release/*}", "release/1.2");
        yes("{main,release/*}", "main");
        no("{main,release/*}", "dev");
        yes("\\*literal", "*literal");
        no("\\*literal", "xliteral");
        yes("a.b", "a.b");
        no("a.b", "axb");
        yes("(x)+", "(x)+");
    }

    #[test]
    fn invalid_patterns_are_refused() {
        for bad in ["[abc", "{a,{b}}", "{a,b", "trailing\\"] {
            assert!(Glob::new(bad).is_err(), "{bad}");
            assert!(!matches(bad, "a"), "{bad}");
        }
    }
}
