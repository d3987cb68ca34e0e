//! A build's output artifacts (real-actions.md §5.4): the files its `artifacts` (or one of its
//! `secondary-artifacts`) select, zipped. `files` globs are relative to the source directory or `base-directory`
//! (`**/*` is every file, at any depth); `exclude-paths` leaves files out; `discard-paths: yes` puts every file at
//! the root of the zip.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::buildspec::{Artifacts, is_yes, text};

/// Every file under `dir`, as paths relative to it with `/` separators (symbolic links are not followed).
fn walk(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    while let Some((path, relative)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else { continue };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else { continue };
            let name = entry.file_name().to_string_lossy().into_owned();
            let inner = if relative.is_empty() { name } else { format!("{relative}/{name}") };
            if kind.is_dir() {
                pending.push((entry.path(), inner));
            } else if kind.is_file() {
                found.push((inner, entry.path()));
            }
        }
    }
    found.sort();
    found
}

fn set(patterns: &[serde_yaml_ng::Value]) -> Result<GlobSet, String> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let pattern = text(pattern);
        let pattern = pattern.trim_start_matches("./");
        let glob = globset::GlobBuilder::new(pattern).literal_separator(true).build();
        builder.add(glob.map_err(|e| format!("invalid artifact path {pattern}: {e}"))?);
    }
    builder.build().map_err(|e| e.to_string())
}

/// The files `spec` selects in `source`: `(name in the zip, file)`.
pub fn select(source: &Path, spec: &Artifacts) -> Result<Vec<(String, PathBuf)>, String> {
    let base = match spec.base_directory.as_ref().map(text).filter(|b| !b.is_empty()) {
        None => source.to_path_buf(),
        Some(base) if base.contains(['*', '?', '[']) => {
            // A glob: the first directory it matches.
            let pattern = Glob::new(base.trim_end_matches('/')).map_err(|e| e.to_string())?.compile_matcher();
            let mut directories: Vec<PathBuf> = walk(source)
                .into_iter()
                .filter_map(|(relative, _)| relative.rsplit_once('/').map(|(d, _)| d.to_string()))
                .filter(|d| pattern.is_match(d))
                .map(|d| source.join(d))
                .collect();
            directories.sort();
            directories.into_iter().next().ok_or_else(|| format!("no matching base directory path found for {base}"))?
        }
        Some(base) => source.join(base.trim_start_matches("./")),
    };
    let files = set(&spec.files)?;
    let excluded = set(&spec.exclude_paths)?;
    let flat = is_yes(spec.discard_paths.as_ref());
    let chosen: Vec<(String, PathBuf)> = walk(&base)
        .into_iter()
        .filter(|(relative, _)| files.is_match(relative) && !excluded.is_match(relative))
        .map(|(relative, path)| {
            let name = if flat { relative.rsplit('/').next().unwrap_or(&relative).to_string() } else { relative };
            (name, path)
        })
        .collect();
    if chosen.is_empty() {
        return Err("no matching artifact paths found".into());
    }
    Ok(chosen)
}

/// Zips `files` into `into`.
pub fn zip(files: &[(String, PathBuf)], into: &Path) -> Result<(), String> {
    let file = std::fs::File::create(into).map_err(|e| e.to_string())?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated).large_file(true);
    for (name, path) in files {
        zip.start_file(name.as_str(), options).map_err(|e| e.to_string())?;
        let mut reader = std::fs::File::open(path).map_err(|e| format!("{name}: {e}"))?;
        std::io::copy(&mut reader, &mut zip).map_err(|e| format!("{name}: {e}"))?;
    }
    zip.finish().map_err(|e| e.to_string())?.flush().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> Artifacts {
        serde_yaml_ng::from_str(yaml).expect("artifacts")
    }

    #[test]
    fn globs_base_directories_exclusions_and_flattening_select_as_codebuild_does() {
        let root = std::env::temp_dir().join(format!("cpl-select-{}", uuid::Uuid::new_v4()));
        for file in ["a.txt", "dist/app.js", "dist/lib/util.js", "my-build2/my-subdirectory/my-file3.txt", "dist/x.map"]
        {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("dirs");
            std::fs::write(&path, file).expect("writes");
        }
        let names = |s: &Artifacts| select(&root, s).map(|f| f.into_iter().map(|(n, _)| n).collect::<Vec<_>>());
        let all = names(&spec("files: ['**/*']")).expect("all");
        assert_eq!(all.len(), 5, "{all:?}");
        assert!(all.contains(&"a.txt".to_string()), "the root's files too: {all:?}");
        assert_eq!(names(&spec("files: ['dist/*']")).expect("dist"), ["dist/app.js", "dist/x.map"]);
        let based = names(&spec("files: ['*/my-file3.txt']\nbase-directory: my-build2")).expect("based");
        assert_eq!(based, ["my-subdirectory/my-file3.txt"]);
        let flat = names(&spec("files: ['dist/**/*']\ndiscard-paths: yes\nexclude-paths: ['**/*.map']")).expect("flat");
        assert_eq!(flat, ["app.js", "util.js"]);
        assert_eq!(names(&spec("files: ['nothing/*']")), Err("no matching artifact paths found".into()));
        let _ = std::fs::remove_dir_all(&root);
    }
}
