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

    /// `len` letters (either case) and digits, as the random part of an artifact's key (`AGsHVF1`).
    pub fn alphanumeric(&self, len: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut out = String::with_capacity(len);
        while out.len() < len {
            let bytes = self.uuid().into_bytes();
            // The UUID's version and variant bits are fixed: only its other bytes are drawn from.
            for b in bytes.iter().enumerate().filter(|(i, _)| *i != 6 && *i != 8).map(|(_, b)| *b) {
                if out.len() < len {
                    out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
                }
            }
        }
        out
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

    #[test]
    fn artifact_key_suffixes_mix_both_cases_and_digits_as_aws_does() {
        let ids = Ids::random();
        let drawn: String = (0..50).map(|_| ids.alphanumeric(7)).inspect(|s| assert_eq!(s.len(), 7)).collect();
        assert!(drawn.chars().all(|c| c.is_ascii_alphanumeric()), "{drawn}");
        assert!(drawn.chars().any(|c| c.is_ascii_lowercase()) && drawn.chars().any(|c| c.is_ascii_uppercase()));
        assert!(drawn.chars().any(|c| c.is_ascii_digit()), "{drawn}");
    }
}
