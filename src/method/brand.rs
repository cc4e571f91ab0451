//! The brand: the name, logo and colour that pages, emails and the report show.

use serde::Serialize;

use super::Files;

/// The look of a method.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Brand {
    /// The name shown; `[business] name` when `None`.
    pub name: Option<String>,
    pub logo: Option<Logo>,
    /// `#rrggbb`, for headings, buttons and the chart.
    pub primary: Option<String>,
}

/// A logo file of the method.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Logo {
    /// Its path in the method folder.
    pub path: String,
    /// `image/svg+xml` or `image/png`.
    pub mime: &'static str,
}

/// The colour the built-in pages and report use.
pub const DEFAULT_PRIMARY: &str = "#2457d6";

impl Brand {
    /// The colour to use.
    pub fn primary(&self) -> &str {
        self.primary.as_deref().unwrap_or(DEFAULT_PRIMARY)
    }
}

/// Checks `[brand]`; the message says what to do.
pub(super) fn check(
    name: Option<String>,
    logo: Option<String>,
    primary: Option<String>,
    files: &Files,
) -> Result<Brand, String> {
    if let Some(name) = &name
        && (name.trim().is_empty() || name.chars().count() > 100)
    {
        return Err("[brand] name must have 1 to 100 characters".into());
    }
    if let Some(colour) = &primary
        && !is_colour(colour)
    {
        return Err(format!(
            "[brand] primary `{colour}` must be a colour like #1f4e79"
        ));
    }
    let logo = match logo {
        None => None,
        Some(path) => {
            let Some(bytes) = files.get(&path) else {
                return Err(format!(
                    "[brand] logo `{path}` is not in the method folder (an .svg or .png file \
                     beside method.toml)"
                ));
            };
            let mime = if path.ends_with(".svg") {
                usvg::Tree::from_data(bytes, &usvg::Options::default())
                    .map_err(|err| format!("[brand] logo `{path}` is not an SVG image: {err}"))?;
                "image/svg+xml"
            } else if path.ends_with(".png") {
                image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
                    .map_err(|err| format!("[brand] logo `{path}` is not a PNG image: {err}"))?;
                "image/png"
            } else {
                return Err(format!(
                    "[brand] logo `{path}` must be an .svg or .png file"
                ));
            };
            Some(Logo { path, mime })
        }
    };
    Ok(Brand {
        name,
        logo,
        primary,
    })
}

fn is_colour(text: &str) -> bool {
    text.len() == 7 && text.starts_with('#') && text[1..].chars().all(|c| c.is_ascii_hexdigit())
}
