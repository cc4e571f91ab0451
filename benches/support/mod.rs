//! What the benchmarks share.

/// A number from the environment, or `default`.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `compass init` in `dir`; the config file it wrote.
pub fn init(dir: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let init = std::process::Command::new(env!("CARGO_BIN_EXE_compass"))
        .args(["init", "--dir"])
        .arg(dir)
        .output()?;
    anyhow::ensure!(
        init.status.success(),
        "init failed: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    Ok(dir.join("compass.toml"))
}
