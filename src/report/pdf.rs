//! The report as a PDF, typeset by the typst compiler used as a library. The fonts are the
//! ones typst-assets embeds (no system fonts, no network); the template is the method's
//! `report/report.typ`; the report reaches it as one JSON string in `sys.inputs`, so customer
//! text is data, never typst markup. The method's logo is the one file it may read.

use std::sync::LazyLock;

use anyhow::{Context, bail};
use typst::diag::{FileError, FileResult};
use typst::foundations::{Bytes, Datetime, Dict, IntoValue};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World, WorldExt};

use super::Report;
use crate::method::Method;

const TEMPLATE: &str = "report/report.typ";

/// The embedded fonts, loaded once per process.
static FONTS: LazyLock<(LazyHash<FontBook>, Vec<Font>)> = LazyLock::new(|| {
    let fonts: Vec<Font> = typst_assets::fonts()
        .flat_map(|data| Font::iter(Bytes::new(data)))
        .collect();
    (LazyHash::new(FontBook::from_fonts(&fonts)), fonts)
});

/// The one-file world the report compiles in.
struct ReportWorld {
    library: LazyHash<Library>,
    main: Source,
    /// The logo, as `/{path}`.
    logo: Option<(FileId, Bytes)>,
}

impl World for ReportWorld {
    fn library(&self) -> &LazyHash<Library> {
        &self.library
    }

    fn book(&self) -> &LazyHash<FontBook> {
        &FONTS.0
    }

    fn main(&self) -> FileId {
        self.main.id()
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.main.id() {
            Ok(self.main.clone())
        } else {
            Err(FileError::AccessDenied)
        }
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        match &self.logo {
            Some((logo, bytes)) if *logo == id => Ok(bytes.clone()),
            _ => Err(FileError::AccessDenied),
        }
    }

    fn font(&self, index: usize) -> Option<Font> {
        FONTS.1.get(index).cloned()
    }

    fn today(&self, _offset: Option<typst::foundations::Duration>) -> Option<Datetime> {
        None
    }
}

fn file_id(path: &str) -> anyhow::Result<FileId> {
    let path = VirtualPath::new(path).map_err(|err| anyhow::anyhow!("{err:?}"))?;
    Ok(FileId::new(RootedPath::new(VirtualRoot::Project, path)))
}

/// Typesets `report` by `method` (the order's) for `business` into PDF bytes.
pub fn render(report: &Report, method: &Method, business: &str) -> anyhow::Result<Vec<u8>> {
    let mut data = serde_json::to_value(report).context("cannot encode the report")?;
    data["business"] = serde_json::json!(method.display_name(business));
    data["assessment"] = serde_json::json!(method.assessment.name);
    data["primary"] = serde_json::json!(method.brand.primary());
    data["tier"] = serde_json::json!(method.tier_name(&report.tier));
    let level = report
        .scores
        .level
        .as_deref()
        .and_then(|name| method.scoring.levels.iter().find(|l| l.name == name));
    data["level_description"] = serde_json::json!(level.map(|l| l.description.as_str()));
    let chart: Vec<_> = report
        .scores
        .categories
        .iter()
        .map(|c| {
            serde_json::json!({
                "id": c.id,
                "title": c.title,
                "shown": c.shown(),
                "out_of": format!("{:.0}", c.out_of),
                "reach": c.reach(),
            })
        })
        .collect();
    data["chart"] = serde_json::json!(chart);
    data["peers"] = serde_json::json!(report.peers.as_ref().map(|p| p.shown(&report.scores)));
    let logo = match &method.brand.logo {
        Some(logo) => {
            let bytes = method
                .files()
                .get(&logo.path)
                .with_context(|| format!("the method has no {}", logo.path))?;
            let path = format!("/{}", logo.path);
            data["logo"] = serde_json::json!(path);
            Some((file_id(&path)?, Bytes::new(bytes.clone())))
        }
        None => None,
    };
    let template = method
        .text(TEMPLATE)
        .with_context(|| format!("the method has no {TEMPLATE}"))?;
    let mut inputs = Dict::new();
    inputs.insert("report".into(), data.to_string().into_value());
    let main = Source::new(file_id("/report.typ")?, template.to_owned());
    let world = ReportWorld {
        library: LazyHash::new(Library::builder().with_inputs(inputs).build()),
        main: main.clone(),
        logo,
    };
    let document = match typst::compile::<typst_layout::PagedDocument>(&world).output {
        Ok(document) => document,
        Err(errors) => {
            let messages: Vec<_> = errors
                .iter()
                .map(|e| {
                    let line = world
                        .range(e.span)
                        .and_then(|r| main.lines().byte_to_line(r.start));
                    match line {
                        Some(line) => format!("{TEMPLATE}:{}: {}", line + 1, e.message),
                        None => format!("{TEMPLATE}: {}", e.message),
                    }
                })
                .collect();
            bail!("the report does not typeset: {}", messages.join("; "));
        }
    };
    typst_pdf::pdf(&document, &typst_pdf::PdfOptions::default()).map_err(|errors| {
        let messages: Vec<_> = errors.iter().map(|e| e.message.to_string()).collect();
        anyhow::anyhow!("the report does not export: {}", messages.join("; "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::{CategoryScore, Scores, TierDef};
    use crate::report::sample;

    fn report(tier: &TierDef, method: &Method) -> Report {
        let mut written = sample::written(tier, method);
        written.summary =
            "#set page(fill: red) [*bold*] $x^2$ <script> Ignore previous instructions.".into();
        Report {
            company: "Acme #strong[Evil] & Co".into(),
            tier: tier.id.clone(),
            scores: Scores {
                categories: method
                    .questionnaire
                    .categories
                    .iter()
                    .enumerate()
                    .map(|(i, p)| CategoryScore {
                        id: p.id.clone(),
                        title: p.title.clone(),
                        score: (i != 2).then_some(1.5 + i as f64 * 0.5),
                        out_of: 5.0,
                    })
                    .collect(),
                overall: Some(61),
                level: Some("Chaser".into()),
            },
            written,
            sample: false,
            peers: None,
        }
    }

    #[test]
    fn every_tier_typesets_into_a_pdf() {
        let method = Method::builtin();
        for tier in &method.tiers {
            let pdf = render(&report(tier, &method), &method, "Compass").expect("typesets");
            assert!(pdf.starts_with(b"%PDF-"), "{}", tier.id);
            assert!(pdf.len() > 10_000, "{}: {} bytes", tier.id, pdf.len());
        }
    }
}
