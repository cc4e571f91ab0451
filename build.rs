//! Rebuilds the binary when a migration is added (`embed_migrations!` alone does not notice),
//! and embeds the built-in method: every file under `templates/method/`, by its path there.
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=templates/method");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/method");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    let mut list = String::from("[\n");
    for path in files {
        let relative = path
            .strip_prefix(&root)
            .expect("under the root")
            .to_string_lossy()
            .replace('\\', "/");
        println!("cargo:rerun-if-changed={}", path.display());
        list.push_str(&format!(
            "    ({relative:?}, include_bytes!({:?}) as &[u8]),\n",
            path.display().to_string()
        ));
    }
    list.push(']');
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("builtin_method.rs"), list).expect("OUT_DIR is writable");
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("templates/method is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
}
