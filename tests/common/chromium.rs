//! A real headless Chromium (Debian's `chromium`): a page's DOM after it loaded, screenshots
//! into the test artefacts, and a page laid out at a phone's width.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `chromium --headless` with a fresh profile and `args`; its standard output.
fn chromium(args: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    // `timeout` kills a headless Chromium that hangs (it can, in containers).
    let output = Command::new("timeout")
        .args(["60", "chromium"])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("chromium is needed for this test: apt-get install chromium");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The DOM of `url` once it has loaded (scripts run, nothing of it styled away).
pub fn dom(url: &str) -> String {
    chromium(&["--dump-dom".to_owned(), url.to_owned()])
}

/// A screenshot of `url` in a `width` × `height` window, as a PNG at `path`.
pub fn screenshot(url: &str, path: &Path, width: u32, height: u32) {
    chromium(&[
        format!("--screenshot={}", path.display()),
        format!("--window-size={width},{height}"),
        url.to_owned(),
    ]);
}

/// Where tests leave what a person may want to look at: `FAILOVER_ARTEFACTS`, else
/// `target/test-artefacts/`.
pub fn artefacts_dir() -> PathBuf {
    let dir = std::env::var_os("FAILOVER_ARTEFACTS").map_or_else(
        || Path::new(env!("CARGO_TARGET_TMPDIR")).join("../test-artefacts"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A page that shows `html` in a frame `width` px wide and, once it loaded, writes the frame's
/// layout width (`data-scroll-width`: wider than `width` means a sideways scroll) on its
/// `<body>`. Headless Chromium's window is never narrower than 500 px, so a phone's width is
/// given to the frame; `srcdoc` keeps the frame in the page's origin, where a script may
/// measure it.
pub fn framed(html: &str, width: u32, height: u32) -> String {
    let escaped = html
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><style>body{{margin:0}}iframe{{border:0;display:block}}</style></head><body><iframe id="phone" width="{width}" height="{height}" srcdoc="{escaped}" onload="var d=this.contentDocument.documentElement;document.body.dataset.scrollWidth=d.scrollWidth;document.body.dataset.clientWidth=d.clientWidth"></iframe></body></html>"#
    )
}

/// The width and height of a PNG file, after checking its signature.
pub fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 24,
        "{} is not a PNG",
        path.display()
    );
    let number = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (number(16), number(20))
}
