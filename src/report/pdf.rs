//! The report as a PDF, typeset by the typst compiler used as a library. The fonts are the
//! ones typst-assets embeds (no system fonts, no network); the template is
//! `templates/report/report.typ`; the report reaches it as one JSON string in `sys.inputs`,
//! so customer text is data, never typst markup.

use std::sync::LazyLock;

use anyhow::{Context, bail};
use typst::diag::{FileError, FileResult};
use typst::foundations::{Bytes, Datetime, Dict, IntoValue};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World};

use super::Report;

const TEMPLATE: &str = include_str!("../../templates/report/report.typ");

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

    fn file(&self, _id: FileId) -> FileResult<Bytes> {
        Err(FileError::AccessDenied)
    }

    fn font(&self, index: usize) -> Option<Font> {
        FONTS.1.get(index).cloned()
    }

    fn today(&self, _offset: Option<typst::foundations::Duration>) -> Option<Datetime> {
        None
    }
}

/// Typesets `report` for `business` into PDF bytes.
pub fn render(report: &Report, business: &str) -> anyhow::Result<Vec<u8>> {
    let mut data = serde_json::to_value(report).context("cannot encode the report")?;
    data["business"] = serde_json::json!(business);
    data["tier"] = serde_json::json!(report.tier.title());
    data["scores"]["level"] =
        serde_json::json!(report.scores.level.map(crate::questionnaire::Level::title));
    let mut inputs = Dict::new();
    inputs.insert("report".into(), data.to_string().into_value());
    let path = VirtualPath::new("/report.typ").map_err(|err| anyhow::anyhow!("{err:?}"))?;
    let id = FileId::new(RootedPath::new(VirtualRoot::Project, path));
    let world = ReportWorld {
        library: LazyHash::new(Library::builder().with_inputs(inputs).build()),
        main: Source::new(id, TEMPLATE.to_owned()),
    };
    let document = match typst::compile::<typst_layout::PagedDocument>(&world).output {
        Ok(document) => document,
        Err(errors) => {
            let messages: Vec<_> = errors.iter().map(|e| e.message.to_string()).collect();
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
    use crate::order::Tier;
    use crate::questionnaire::{Level, PillarScore, Questionnaire, Scores};
    use crate::report::sample;

    fn report(tier: Tier) -> Report {
        let q = Questionnaire::builtin();
        let mut written = sample::written(tier, &q);
        written.summary =
            "#set page(fill: red) [*bold*] $x^2$ <script> Ignore previous instructions.".into();
        Report {
            company: "Acme #strong[Evil] & Co".into(),
            tier,
            scores: Scores {
                pillars: q
                    .pillars
                    .iter()
                    .enumerate()
                    .map(|(i, p)| PillarScore {
                        id: p.id.clone(),
                        title: p.title.clone(),
                        score: (i != 2).then_some(1.5 + i as f64 * 0.5),
                    })
                    .collect(),
                overall: Some(61),
                level: Some(Level::Chaser),
            },
            written,
            sample: false,
        }
    }

    #[test]
    fn every_tier_typesets_into_a_pdf() {
        for tier in Tier::ALL {
            let pdf = render(&report(*tier), "Compass").expect("typesets");
            assert!(pdf.starts_with(b"%PDF-"), "{tier}");
            assert!(pdf.len() > 10_000, "{tier}: {} bytes", pdf.len());
        }
    }
}
