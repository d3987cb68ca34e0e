//! The CodePipeline service model, loaded from `fixtures/model/service-2.json`.
//!
//! The fixture is botocore's model with its documentation strings stripped (see `scripts/update-model.py`). It is
//! embedded in the binary and parsed once at start-up into a compact, index-based form that the validator walks.
//! Nothing here knows about pipelines: every constraint of every operation comes from the data.

use std::collections::HashMap;
use std::fmt;

use regex::Regex;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

/// The embedded model text.
const SERVICE_MODEL: &str = include_str!("../../fixtures/model/service-2.json");
/// Corrections where the live service differs from the published model, each with its evidence.
const OVERRIDES: &str = include_str!("../../fixtures/model/overrides.json");

/// Index of a shape inside `Model::shapes`.
pub type ShapeId = usize;

/// A loaded service model.
#[derive(Debug)]
pub struct Model {
    shapes: Vec<Shape>,
    by_name: HashMap<String, ShapeId>,
    operations: HashMap<String, OperationModel>,
    /// The model's `targetPrefix`, e.g. `CodePipeline_20150709`.
    pub target_prefix: String,
    /// The botocore version the fixture was taken from.
    pub source_version: String,
}

/// The part of an operation the server needs: its input and output shapes and its declared errors.
#[derive(Debug)]
pub struct OperationModel {
    pub input: Option<ShapeId>,
    pub output: Option<ShapeId>,
    pub errors: Vec<String>,
}

/// One shape with its constraints.
#[derive(Debug)]
pub struct Shape {
    pub name: String,
    pub kind: ShapeKind,
    /// `min` of the model: a length for strings, lists and maps; a value for numbers.
    pub min: Option<i64>,
    /// `max` of the model, with the same meaning as `min`.
    pub max: Option<i64>,
}

/// The type of a shape and its type-specific constraints.
#[derive(Debug)]
pub enum ShapeKind {
    Structure { members: Vec<Member>, exception: bool },
    List { member: ShapeId },
    Map { key: ShapeId, value: ShapeId },
    String { enum_values: Option<Vec<String>>, pattern: Option<Pattern> },
    Integer,
    Long,
    Boolean,
    Timestamp,
    Double,
    Blob,
}

/// A structure member.
#[derive(Debug)]
pub struct Member {
    pub name: String,
    pub shape: ShapeId,
    pub required: bool,
}

/// A model pattern: the text as AWS prints it in messages, and its whole-string matcher, compiled when first used
/// (an idle server keeps none; the model's patterns are checked to compile by a unit test).
#[derive(Debug)]
pub struct Pattern {
    pub source: String,
    regex: std::sync::OnceLock<Option<Regex>>,
}

impl Pattern {
    fn new(source: &str) -> Pattern {
        Pattern { source: source.to_string(), regex: std::sync::OnceLock::new() }
    }

    fn compile(source: &str) -> Result<Regex, regex::Error> {
        Regex::new(&format!("^(?:{})$", java_to_rust_regex(source)))
    }

    /// AWS (Coral, in Java) matches the whole value against the pattern, as `Matcher.matches()` does. A pattern
    /// that does not compile (a broken fixture, which a unit test rules out) matches everything.
    pub fn matches(&self, value: &str) -> bool {
        self.regex.get_or_init(|| Pattern::compile(&self.source).ok()).as_ref().is_none_or(|r| r.is_match(value))
    }
}

/// Why an embedded fixture (the model or the catalogue) could not be loaded. Only a broken fixture causes this.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("the service model is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("shape '{0}' refers to unknown shape '{1}'")]
    UnknownShape(String, String),
    #[error("shape '{0}' has unsupported type '{1}'")]
    UnsupportedType(String, String),
}

impl Model {
    /// Parses the embedded CodePipeline model and applies the embedded overrides.
    pub fn load() -> Result<Model, ModelError> {
        let mut model = Model::parse(SERVICE_MODEL)?;
        model.apply_overrides(OVERRIDES)?;
        Ok(model)
    }

    /// Applies an overrides document: `{"shapes": {"<Shape>": {"min"?, "max"?, "enum"?}}}`.
    pub fn apply_overrides(&mut self, text: &str) -> Result<(), ModelError> {
        let overrides: RawOverrides = serde_json::from_str(text)?;
        for (name, change) in overrides.shapes {
            let id =
                self.shape_id(&name).ok_or_else(|| ModelError::UnknownShape("overrides.json".into(), name.clone()))?;
            let shape = &mut self.shapes[id];
            if change.min.is_some() {
                shape.min = change.min;
            }
            if change.max.is_some() {
                shape.max = change.max;
            }
            if let (Some(values), ShapeKind::String { enum_values, .. }) = (change.enum_values, &mut shape.kind) {
                *enum_values = Some(values);
            }
        }
        Ok(())
    }

    /// Parses a botocore-format model document.
    pub fn parse(text: &str) -> Result<Model, ModelError> {
        let raw: RawModel = serde_json::from_str(text)?;
        let mut by_name = HashMap::with_capacity(raw.shapes.len());
        for (index, (name, _)) in raw.shapes.iter().enumerate() {
            by_name.insert(name.clone(), index);
        }
        let resolve = |owner: &str, target: &str| -> Result<ShapeId, ModelError> {
            by_name.get(target).copied().ok_or_else(|| ModelError::UnknownShape(owner.to_string(), target.to_string()))
        };

        let mut shapes = Vec::with_capacity(raw.shapes.len());
        for (name, raw_shape) in &raw.shapes {
            let kind = match raw_shape.kind.as_str() {
                "structure" => {
                    let mut members = Vec::with_capacity(raw_shape.members.len());
                    for (member_name, member) in &raw_shape.members {
                        members.push(Member {
                            name: member_name.clone(),
                            shape: resolve(name, &member.shape)?,
                            required: raw_shape.required.iter().any(|r| r == member_name),
                        });
                    }
                    ShapeKind::Structure { members, exception: raw_shape.exception }
                }
                "list" => {
                    let member = raw_shape
                        .member
                        .as_ref()
                        .ok_or_else(|| ModelError::UnknownShape(name.clone(), "<list member>".into()))?;
                    ShapeKind::List { member: resolve(name, &member.shape)? }
                }
                "map" => {
                    let (key, value) = match (&raw_shape.key, &raw_shape.value) {
                        (Some(k), Some(v)) => (resolve(name, &k.shape)?, resolve(name, &v.shape)?),
                        _ => return Err(ModelError::UnknownShape(name.clone(), "<map key/value>".into())),
                    };
                    ShapeKind::Map { key, value }
                }
                "string" => {
                    let pattern = raw_shape.pattern.as_deref().map(Pattern::new);
                    ShapeKind::String { enum_values: raw_shape.enum_values.clone(), pattern }
                }
                "integer" => ShapeKind::Integer,
                "long" => ShapeKind::Long,
                "boolean" => ShapeKind::Boolean,
                "timestamp" => ShapeKind::Timestamp,
                "double" | "float" => ShapeKind::Double,
                "blob" => ShapeKind::Blob,
                other => return Err(ModelError::UnsupportedType(name.clone(), other.to_string())),
            };
            shapes.push(Shape { name: name.clone(), kind, min: raw_shape.min, max: raw_shape.max });
        }

        let mut operations = HashMap::with_capacity(raw.operations.len());
        for (name, op) in raw.operations {
            let input = op.input.map(|r| resolve(&name, &r.shape)).transpose()?;
            let output = op.output.map(|r| resolve(&name, &r.shape)).transpose()?;
            let errors = op.errors.into_iter().map(|e| e.shape).collect();
            operations.insert(name, OperationModel { input, output, errors });
        }

        Ok(Model {
            shapes,
            by_name,
            operations,
            target_prefix: raw.metadata.target_prefix,
            source_version: raw.metadata.botocore_version.unwrap_or_default(),
        })
    }

    /// The shape with the given id. Ids come from this model, so they are always in range.
    pub fn shape(&self, id: ShapeId) -> &Shape {
        &self.shapes[id]
    }

    /// Looks a shape up by its model name.
    pub fn shape_id(&self, name: &str) -> Option<ShapeId> {
        self.by_name.get(name).copied()
    }

    /// The model of an operation, by its wire name (e.g. `CreatePipeline`).
    pub fn operation(&self, name: &str) -> Option<&OperationModel> {
        self.operations.get(name)
    }

    /// The names of all operations in the model.
    pub fn operation_names(&self) -> impl Iterator<Item = &str> {
        self.operations.keys().map(String::as_str)
    }

    /// The names of all exception shapes in the model.
    pub fn exception_names(&self) -> impl Iterator<Item = &str> {
        self.shapes.iter().filter_map(|s| match s.kind {
            ShapeKind::Structure { exception: true, .. } => Some(s.name.as_str()),
            _ => None,
        })
    }
}

/// Translates the few Java regex constructs in the model whose meaning differs in the `regex` crate:
/// Java's `\w` is ASCII-only, and Java's `.` does not match line terminators (`\n`, `\r`, U+0085, U+2028, U+2029).
/// A pipeline variable value containing a newline therefore fails `.*` on AWS, and does here too.
fn java_to_rust_regex(pattern: &str) -> String {
    const WORD: &str = "0-9A-Za-z_";
    const DOT: &str = r"[^\n\r\x{85}\x{2028}\x{2029}]";
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut in_class = false;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('w') if in_class => out.push_str(WORD),
                Some('w') => {
                    out.push('[');
                    out.push_str(WORD);
                    out.push(']');
                }
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push_str(r"\\"),
            },
            '[' if !in_class => {
                in_class = true;
                out.push(c);
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            '.' if !in_class => out.push_str(DOT),
            _ => out.push(c),
        }
    }
    out
}

// --- the botocore document format ------------------------------------------------------------------------------

#[derive(Deserialize)]
struct RawModel {
    metadata: RawMetadata,
    #[serde(deserialize_with = "ordered")]
    operations: Vec<(String, RawOperation)>,
    #[serde(deserialize_with = "ordered")]
    shapes: Vec<(String, RawShape)>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMetadata {
    target_prefix: String,
    botocore_version: Option<String>,
}

#[derive(Deserialize)]
struct RawOverrides {
    #[serde(deserialize_with = "ordered")]
    shapes: Vec<(String, RawOverride)>,
}

#[derive(Deserialize)]
struct RawOverride {
    min: Option<i64>,
    max: Option<i64>,
    #[serde(rename = "enum")]
    enum_values: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawOperation {
    input: Option<RawRef>,
    output: Option<RawRef>,
    #[serde(default)]
    errors: Vec<RawRef>,
}

#[derive(Deserialize)]
struct RawRef {
    shape: String,
}

#[derive(Deserialize)]
struct RawShape {
    #[serde(rename = "type")]
    kind: String,
    /// Member order matters: AWS reports violations in declaration order.
    #[serde(default, deserialize_with = "ordered")]
    members: Vec<(String, RawRef)>,
    #[serde(default)]
    required: Vec<String>,
    member: Option<RawRef>,
    key: Option<RawRef>,
    value: Option<RawRef>,
    min: Option<i64>,
    max: Option<i64>,
    pattern: Option<String>,
    #[serde(rename = "enum")]
    enum_values: Option<Vec<String>>,
    #[serde(default)]
    exception: bool,
}

/// Deserializes a JSON object into its entries in document order (serde_json's map would sort them).
fn ordered<'de, D, T>(deserializer: D) -> Result<Vec<(String, T)>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Entries<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for Entries<T> {
        type Value = Vec<(String, T)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
            while let Some(entry) = map.next_entry()? {
                out.push(entry);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(Entries(std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_model_loads_with_all_operations() {
        let model = Model::load().expect("embedded model loads");
        assert_eq!(model.operation_names().count(), 44);
        assert_eq!(model.target_prefix, "CodePipeline_20150709");
        assert_eq!(model.exception_names().count(), 42);
        let op = model.operation("CreatePipeline").expect("CreatePipeline is modeled");
        assert_eq!(model.shape(op.input.expect("has input")).name, "CreatePipelineInput");
    }

    #[test]
    fn overrides_apply_observed_limits() {
        let model = Model::load().expect("embedded model loads");
        let value = model.shape(model.shape_id("ActionConfigurationValue").expect("shape exists"));
        assert_eq!((value.min, value.max), (Some(1), Some(50000)));
        let range = model.shape(model.shape_id("StartTimeRange").expect("shape exists"));
        let ShapeKind::String { enum_values, .. } = &range.kind else {
            panic!("string expected");
        };
        assert_eq!(enum_values.as_deref(), Some(&["All".to_string(), "Latest".to_string()][..]));
    }

    #[test]
    fn member_order_follows_the_document() {
        let model = Model::load().expect("embedded model loads");
        let id = model.shape_id("LatestInPipelineExecutionFilter").expect("shape exists");
        let ShapeKind::Structure { members, .. } = &model.shape(id).kind else {
            panic!("structure expected");
        };
        let names: Vec<_> = members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["pipelineExecutionId", "startTimeRange"]);
        assert!(members.iter().all(|m| m.required));
    }

    #[test]
    fn every_model_pattern_compiles() {
        // Patterns compile when first used; a broken one must not reach a server.
        let model = Model::load().expect("embedded model loads");
        let mut count = 0;
        for shape in &model.shapes {
            if let ShapeKind::String { pattern: Some(p), .. } = &shape.kind {
                assert!(Pattern::compile(&p.source).is_ok(), "pattern {:?} does not compile", p.source);
                count += 1;
            }
        }
        assert!(count >= 30, "{count} patterns");
    }

    #[test]
    fn patterns_match_whole_values_like_java() {
        let model = Model::load().expect("embedded model loads");
        let pattern = |shape: &str| {
            let id = model.shape_id(shape).expect("shape exists");
            match &model.shape(id).kind {
                ShapeKind::String { pattern: Some(p), .. } => p,
                _ => panic!("{shape} has no pattern"),
            }
        };
        let name = pattern("PipelineName");
        assert_eq!(name.source, r"[A-Za-z0-9.@\-_]+");
        assert!(name.matches("my-pipeline.v2@x_y"));
        assert!(!name.matches("my pipeline"), "a partial match is not a match");
        let owner = pattern("ActionTypeOwner");
        assert!(owner.matches("AWS") && owner.matches("ThirdParty"));
        assert!(!owner.matches("AWSX"), "alternation is anchored as a whole");
        let value = pattern("PipelineVariableValue");
        assert!(value.matches("anything at all"));
        assert!(!value.matches("two\nlines"), "Java's '.' excludes line terminators");
        let role = pattern("RoleArn");
        assert!(role.matches("arn:aws:iam::123456789012:role/x"));
        assert!(role.matches("arn:aws-cn:iam::123456789012:role/x"));
        assert!(!role.matches("arn:aws-ü:iam::123456789012:role/x"), "Java's \\w is ASCII");
    }

    #[test]
    fn java_translation_keeps_escapes_and_classes() {
        assert_eq!(java_to_rust_regex(r"[a-z\-\.]+"), r"[a-z\-\.]+");
        assert_eq!(java_to_rust_regex(r"(-[\w]+)*"), "(-[0-9A-Za-z_]+)*");
        assert_eq!(java_to_rust_regex(r"a\wb"), "a[0-9A-Za-z_]b");
        assert_eq!(java_to_rust_regex(r"\.x."), r"\.x[^\n\r\x{85}\x{2028}\x{2029}]");
    }
}
