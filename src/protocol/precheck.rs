//! A quick pass that tells whether a request body is valid against its input shape, reading the bytes once and
//! building nothing.
//!
//! Nearly every request is valid. For those, this pass replaces parsing the body into a `serde_json::Value`,
//! walking that tree with [`super::validate`] and converting the tree into the operation's typed input: the operation
//! deserializes its input straight from the bytes. Anything else (a syntax error, a member of the wrong type, a
//! violated constraint, a null element, a repeated member) is "not clean" and takes the full path,
//! which words the error exactly as AWS does. So this pass decides only how fast an answer comes, never what it says;
//! it must never call clean a body that the full path refuses (the tests hold both to that on every request of the
//! reference captures and on a set of broken ones).

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::model::{Member, Model, ShapeId, ShapeKind};
use super::validate::{integer_violations, size_violation, string_violations};

/// Whether `bytes` is a JSON object that [`super::validate::validate`] accepts for `shape`.
pub fn is_clean(model: &Model, shape: ShapeId, bytes: &[u8]) -> bool {
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    let object = matches!(model.shape(shape).kind, ShapeKind::Structure { .. });
    object && matches!(Check { model, shape }.deserialize(&mut reader), Ok(true)) && reader.end().is_ok()
}

/// Checks one value against one shape; its answer is whether the value was anything but `null`.
#[derive(Clone, Copy)]
struct Check<'m> {
    model: &'m Model,
    shape: ShapeId,
}

/// Any reason at all that the body is not clean; the full path says which.
fn dirty<E: serde::de::Error>() -> E {
    E::custom("")
}

fn clean_if<E: serde::de::Error>(ok: bool) -> Result<bool, E> {
    if ok { Ok(true) } else { Err(dirty()) }
}

impl<'de> DeserializeSeed<'de> for Check<'_> {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, reader: D) -> Result<bool, D::Error> {
        reader.deserialize_any(self)
    }
}

impl Check<'_> {
    fn kind(&self) -> &ShapeKind {
        &self.model.shape(self.shape).kind
    }

    fn integer<E: serde::de::Error>(self, value: i64) -> Result<bool, E> {
        let shape = self.model.shape(self.shape);
        match shape.kind {
            ShapeKind::Integer if i32::try_from(value).is_err() => Err(dirty()),
            ShapeKind::Integer | ShapeKind::Long => clean_if(integer_violations(shape, value).is_empty()),
            ShapeKind::Double | ShapeKind::Timestamp => Ok(true),
            _ => Err(dirty()),
        }
    }

    /// The elements of a list, or the values of a map: present (a null element is a violation) and clean.
    fn element<'de, A: SeqAccess<'de>>(self, items: &mut A) -> Result<Option<()>, A::Error> {
        match items.next_element_seed(self)? {
            None => Ok(None),
            Some(present) => clean_if(present).map(|_| Some(())),
        }
    }

    fn structure<'de, A: MapAccess<'de>>(self, members: &[Member], mut entries: A) -> Result<bool, A::Error> {
        if members.len() > 128 {
            return Err(dirty());
        }
        let mut seen = 0u128;
        while let Some(found) = entries.next_key_seed(MemberName(members))? {
            let Some(index) = found else {
                entries.next_value::<IgnoredAny>()?;
                continue;
            };
            let bit = 1u128 << index;
            if seen & bit != 0 {
                return Err(dirty());
            }
            if entries.next_value_seed(Check { model: self.model, shape: members[index].shape })? {
                seen |= bit;
            }
        }
        let all_there = members.iter().enumerate().all(|(i, m)| !m.required || seen & (1u128 << i) != 0);
        clean_if(all_there)
    }

    fn map<'de, A: MapAccess<'de>>(self, key: ShapeId, value: ShapeId, mut entries: A) -> Result<bool, A::Error> {
        let mut count = 0usize;
        while entries.next_key_seed(Check { model: self.model, shape: key })?.is_some() {
            let present = entries.next_value_seed(Check { model: self.model, shape: value })?;
            clean_if(present)?;
            count += 1;
        }
        // Repeated keys are counted twice here and once by the full path: a size this count finds too large may be
        // fine there (not clean, so the full path decides), but one it finds fine is fine there too.
        clean_if(size_violation(self.model.shape(self.shape), count).is_none())
    }
}

impl<'de> Visitor<'de> for Check<'_> {
    type Value = bool;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a value of the model's shape")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<bool, E> {
        clean_if(matches!(self.kind(), ShapeKind::Boolean))
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<bool, E> {
        self.integer(value)
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<bool, E> {
        match i64::try_from(value) {
            Ok(value) => self.integer(value),
            Err(_) => clean_if(matches!(self.kind(), ShapeKind::Double | ShapeKind::Timestamp)),
        }
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<bool, E> {
        clean_if(matches!(self.kind(), ShapeKind::Double | ShapeKind::Timestamp))
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<bool, E> {
        let shape = self.model.shape(self.shape);
        match shape.kind {
            ShapeKind::String { .. } => clean_if(string_violations(shape, text).is_empty()),
            ShapeKind::Blob => Ok(true),
            _ => Err(dirty()),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<bool, A::Error> {
        let shape = self.model.shape(self.shape);
        let ShapeKind::List { member } = shape.kind else { return Err(dirty()) };
        let element = Check { model: self.model, shape: member };
        let mut count = 0usize;
        while element.element(&mut items)?.is_some() {
            count += 1;
        }
        clean_if(size_violation(shape, count).is_none())
    }

    fn visit_map<A: MapAccess<'de>>(self, entries: A) -> Result<bool, A::Error> {
        match &self.model.shape(self.shape).kind {
            ShapeKind::Structure { members, .. } => self.structure(members, entries),
            ShapeKind::Map { key, value } => self.map(*key, *value, entries),
            _ => Err(dirty()),
        }
    }
}

/// Reads a structure's member name: the index of the model member it names, or `None` for a member the model does
/// not have (ignored, as the full path ignores it).
struct MemberName<'m>(&'m [Member]);

impl<'de> DeserializeSeed<'de> for MemberName<'_> {
    type Value = Option<usize>;

    fn deserialize<D: serde::Deserializer<'de>>(self, reader: D) -> Result<Option<usize>, D::Error> {
        reader.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for MemberName<'_> {
    type Value = Option<usize>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a member name")
    }

    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|m| m.name == name))
    }
}

#[cfg(test)]
#[path = "precheck_tests.rs"]
mod tests;
