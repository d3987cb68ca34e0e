//! The emulated world that source actions read: the current version of S3 objects, the digest behind ECR image tags,
//! and the branch heads and commits of git repositories (CodeCommit's, and those reached through a connection).
//!
//! Nothing here exists until a source change, a git push or a webhook delivery says so; a source action reading
//! something unknown gets the emulator's own stable answer (see `engine::providers`). Every map is bounded: the
//! oldest entries are forgotten first.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use serde::Serialize;

/// The current version of an S3 object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectVersion {
    pub version_id: String,
    pub etag: String,
}

/// A commit, as a source action reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Commit {
    pub message: String,
    /// When it was authored, as the provider wrote it (ISO 8601).
    pub author_date: Option<String>,
    /// The branch it was pushed to (or, for a pull request, its source branch), when an event said.
    pub branch: Option<String>,
}

/// Which kind of repository a name refers to: the two share no names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum RepositoryKind {
    /// A repository reached through a connection (`FullRepositoryId`, `owner/repo`).
    Connection,
    /// A CodeCommit repository (`RepositoryName`).
    CodeCommit,
}

/// A git repository's branch heads and known commits.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Repository {
    /// The hosting provider as CodeConnections names it (`GitHub`, `GitLab`, `Bitbucket`), when an event said.
    pub provider: Option<String>,
    heads: Bounded<String, String>,
    commits: Bounded<String, Commit>,
}

impl Repository {
    /// The commit a branch points at.
    pub fn head(&self, branch: &str) -> Option<&str> {
        self.heads.get_str(branch).map(String::as_str)
    }

    /// What is known of a commit.
    pub fn commit(&self, id: &str) -> Option<&Commit> {
        self.commits.get_str(id)
    }
}

/// The emulated world of one account and region.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sources {
    objects: Bounded<(String, String), ObjectVersion>,
    /// Objects a source change said are not there (deleted): an S3 source reading one fails, as on AWS.
    #[serde(default, skip_serializing_if = "Bounded::is_empty")]
    absent: Bounded<(String, String), ()>,
    images: Bounded<(String, String), String>,
    repositories: Bounded<(RepositoryKind, String), Repository>,
}

impl Sources {
    /// How many objects, image tags and repositories a partition remembers; and how many branches and commits per
    /// repository.
    pub const LIMIT: usize = 10_000;
    pub const PER_REPOSITORY: usize = 1_000;

    /// The current version of `bucket`/`key`, if a source change set one.
    pub fn object(&self, bucket: &str, key: &str) -> Option<&ObjectVersion> {
        self.objects.get(&(bucket.to_string(), key.to_string()))
    }

    /// Makes `version` the current version of `bucket`/`key`.
    pub fn put_object(&mut self, bucket: &str, key: &str, version: ObjectVersion) {
        let object = (bucket.to_string(), key.to_string());
        self.absent.remove(&object);
        self.objects.insert(object, version, Self::LIMIT);
    }

    /// Says that `bucket`/`key` is not there (it was deleted, or never uploaded).
    pub fn delete_object(&mut self, bucket: &str, key: &str) {
        let object = (bucket.to_string(), key.to_string());
        self.objects.remove(&object);
        self.absent.insert(object, (), Self::LIMIT);
    }

    /// Whether a source change said that `bucket`/`key` is not there.
    pub fn is_absent(&self, bucket: &str, key: &str) -> bool {
        self.absent.get(&(bucket.to_string(), key.to_string())).is_some()
    }

    /// The digest an image tag points at, if a source change set one.
    pub fn image(&self, repository: &str, tag: &str) -> Option<&str> {
        self.images.get(&(repository.to_string(), tag.to_string())).map(String::as_str)
    }

    /// Points an image tag at `digest`.
    pub fn put_image(&mut self, repository: &str, tag: &str, digest: &str) {
        self.images.insert((repository.to_string(), tag.to_string()), digest.to_string(), Self::LIMIT);
    }

    /// A repository, if an event named it.
    pub fn repository(&self, kind: RepositoryKind, name: &str) -> Option<&Repository> {
        self.repositories.get(&(kind, name.to_string()))
    }

    /// Records a commit (and, for a push, that `branch` now points at it).
    pub fn put_commit(
        &mut self,
        kind: RepositoryKind,
        name: &str,
        provider: Option<&str>,
        branch: Option<&str>,
        id: &str,
        commit: Commit,
    ) {
        let key = (kind, name.to_string());
        let mut repository = self.repositories.remove(&key).unwrap_or_default();
        if let Some(provider) = provider {
            repository.provider = Some(provider.to_string());
        }
        if let Some(branch) = branch {
            repository.heads.insert(branch.to_string(), id.to_string(), Self::PER_REPOSITORY);
        }
        repository.commits.insert(id.to_string(), commit, Self::PER_REPOSITORY);
        self.repositories.insert(key, repository, Self::LIMIT);
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty() && self.absent.is_empty() && self.images.is_empty() && self.repositories.is_empty()
    }
}

/// A map that forgets its oldest insertions beyond a limit.
#[derive(Debug, Clone)]
struct Bounded<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
}

impl<K, V> Default for Bounded<K, V> {
    fn default() -> Self {
        Bounded { map: HashMap::new(), order: VecDeque::new() }
    }
}

impl<K, V> Bounded<K, V> {
    fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl<K: Hash + Eq + Clone, V> Bounded<K, V> {
    fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    fn insert(&mut self, key: K, value: V, limit: usize) {
        if self.map.insert(key.clone(), value).is_some() {
            self.order.retain(|k| *k != key);
        }
        self.order.push_back(key);
        while self.order.len() > limit {
            if let Some(oldest) = self.order.pop_front() {
                self.map.remove(&oldest);
            }
        }
    }

    fn remove(&mut self, key: &K) -> Option<V> {
        let value = self.map.remove(key)?;
        self.order.retain(|k| k != key);
        Some(value)
    }
}

/// Saved as its entries, oldest first, so that a loaded map forgets in the same order.
impl<K: Serialize, V: Serialize> Serialize for Bounded<K, V>
where
    K: Hash + Eq,
{
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.order.len()))?;
        for key in &self.order {
            if let Some(value) = self.map.get(key) {
                seq.serialize_element(&(key, value))?;
            }
        }
        seq.end()
    }
}

impl<'de, K, V> serde::Deserialize<'de> for Bounded<K, V>
where
    K: serde::Deserialize<'de> + Hash + Eq + Clone,
    V: serde::Deserialize<'de>,
{
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries = Vec::<(K, V)>::deserialize(deserializer)?;
        let mut bounded = Bounded::default();
        for (key, value) in entries {
            bounded.insert(key, value, usize::MAX);
        }
        Ok(bounded)
    }
}

impl<V> Bounded<String, V> {
    fn get_str(&self, key: &str) -> Option<&V> {
        self.map.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_world_remembers_the_latest_and_forgets_the_oldest() {
        let mut sources = Sources::default();
        let version = |v: &str| ObjectVersion { version_id: v.into(), etag: format!("etag-{v}") };
        sources.put_object("b", "k", version("1"));
        sources.put_object("b", "k", version("2"));
        assert_eq!(sources.object("b", "k"), Some(&version("2")));
        assert_eq!(sources.object("b", "other"), None);
        sources.delete_object("b", "k");
        assert_eq!((sources.object("b", "k"), sources.is_absent("b", "k")), (None, true));
        sources.put_object("b", "k", version("3"));
        assert_eq!((sources.object("b", "k"), sources.is_absent("b", "k")), (Some(&version("3")), false));
        let commit = Commit { message: "m".into(), author_date: None, branch: None };
        sources.put_commit(RepositoryKind::Connection, "o/r", Some("GitLab"), Some("main"), "c1", commit.clone());
        sources.put_commit(RepositoryKind::Connection, "o/r", None, Some("main"), "c2", commit.clone());
        let repository = sources.repository(RepositoryKind::Connection, "o/r").expect("known");
        assert_eq!((repository.head("main"), repository.provider.as_deref()), (Some("c2"), Some("GitLab")));
        assert_eq!(repository.commit("c1"), Some(&commit));
        assert!(sources.repository(RepositoryKind::CodeCommit, "o/r").is_none());
        let mut bounded = Bounded::default();
        for i in 0..5 {
            bounded.insert(i, i, 3);
        }
        assert_eq!((bounded.get(&1), bounded.get(&2), bounded.get(&4)), (None, Some(&2), Some(&4)));
    }
}
