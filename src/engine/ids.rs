//! Where the ids the engine makes come from: execution, action, rule and job ids, nonces, artifact names and
//! simulated external ids. In service they are random; a test gives the step a [`Ids::sequence`], so that running
//! the same input twice gives the same output.

use std::sync::atomic::{AtomicU64, Ordering};

use uuid::Uuid;

/// A source of ids: random, or a repeatable sequence.
#[derive(Debug, Default)]
pub struct Ids {
    sequence: Option<AtomicU64>,
}

/// Names the ids of a sequence (UUID v5 namespace).
const SEQUENCE: Uuid = Uuid::from_u128(0x3b2e_9f0c_61d4_4a8e_9c57_0e1f_a2b3_c4d5);

impl Ids {
    /// Random ids (UUID v4), as the service makes them.
    pub fn random() -> Ids {
        Ids { sequence: None }
    }

    /// A repeatable sequence of random-looking ids, starting from `start`.
    pub fn sequence(start: u64) -> Ids {
        Ids { sequence: Some(AtomicU64::new(start)) }
    }

    /// The next id, shaped as a version 4 UUID.
    pub fn uuid(&self) -> Uuid {
        match &self.sequence {
            None => Uuid::new_v4(),
            Some(next) => {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let bytes = Uuid::new_v5(&SEQUENCE, &n.to_be_bytes()).into_bytes();
                uuid::Builder::from_random_bytes(bytes).into_uuid()
            }
        }
    }

    /// A new S3 object version id: 32 letters, digits, dots and underscores, like the ones S3 makes.
    pub fn version_id(&self) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";
        let bytes = [self.uuid().into_bytes(), self.uuid().into_bytes()].concat();
        bytes.iter().map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()])).collect()
    }

    /// `len` lowercase hex digits.
    pub fn hex(&self, len: usize) -> String {
        let mut out = String::with_capacity(len + 32);
        while out.len() < len {
            out.push_str(&self.uuid().simple().to_string());
        }
        out.truncate(len);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sequence_repeats_and_random_ids_do_not() {
        let (a, b) = (Ids::sequence(7), Ids::sequence(7));
        let first: Vec<Uuid> = (0..3).map(|_| a.uuid()).collect();
        assert_eq!(first, (0..3).map(|_| b.uuid()).collect::<Vec<_>>());
        assert_ne!(first[0], first[1]);
        assert_eq!(first[0].get_version_num(), 4);
        assert_ne!(Ids::random().uuid(), Ids::random().uuid());
        assert_eq!(Ids::sequence(0).hex(40).len(), 40);
    }
}
