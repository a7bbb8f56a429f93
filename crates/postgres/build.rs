//! Embeds `supabase/migrations/*.sql` (sorted by file name, which starts with the
//! version) into the crate, so a binary applies them without the source tree.

use std::{env, fs, path::PathBuf};

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("../../supabase/migrations");
    println!("cargo:rerun-if-changed={}", dir.display());

    let mut files: Vec<_> = fs::read_dir(&dir)
        .expect("supabase/migrations is readable")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    files.sort();

    let mut out = String::from("&[\n");
    for path in files {
        println!("cargo:rerun-if-changed={}", path.display());
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a UTF-8 file name");
        let (version, name) = stem.split_once('_').unwrap_or((stem, ""));
        assert!(
            version.len() >= 14 && version.bytes().all(|b| b.is_ascii_digit()),
            "migration {stem}: file names start with a timestamp version, e.g. 20261128000000_name.sql"
        );
        out.push_str(&format!(
            "    Migration {{ version: {version:?}, name: {name:?}, sql: include_str!({path:?}) }},\n",
            path = path.canonicalize().expect("the migration exists").display().to_string(),
        ));
    }
    out.push(']');
    let dest = PathBuf::from(env::var("OUT_DIR").expect("set by cargo")).join("migrations.rs");
    fs::write(dest, out).expect("OUT_DIR is writable");
}
