//! typst used as a library: one template, its data as one JSON string in `sys.inputs`, the
//! fonts typst-assets embeds (no system fonts, no network), at most one image file (a logo),
//! and export as PDF/UA-1, so that typst refuses a template a screen reader could not read.
//! The report and the invoices are typeset here.

use std::sync::LazyLock;

use anyhow::bail;
use typst::diag::{FileError, FileResult};
use typst::foundations::{Bytes, Datetime, Dict, IntoValue};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World, WorldExt};

pub use typst_layout::PagedDocument;

/// The embedded fonts, loaded once per process.
static FONTS: LazyLock<(LazyHash<FontBook>, Vec<Font>)> = LazyLock::new(|| {
    let fonts: Vec<Font> = typst_assets::fonts()
        .flat_map(|data| Font::iter(Bytes::new(data)))
        .collect();
    (LazyHash::new(FontBook::from_fonts(&fonts)), fonts)
});

/// What one document is made of.
pub struct Job<'a> {
    /// What is typeset, for errors ("the report").
    pub what: &'a str,
    /// The template's name, for errors ("report/report.typ").
    pub name: &'a str,
    /// The template's text.
    pub template: &'a str,
    /// The data, read by the template with `json(bytes(sys.inputs.{input}))`.
    pub input: &'a str,
    pub data: &'a serde_json::Value,
    /// The one file the template may read: its path (`/logo.png`) and bytes.
    pub image: Option<(String, Vec<u8>)>,
}

/// The one-file world a document compiles in.
struct OneFile {
    library: LazyHash<Library>,
    main: Source,
    image: Option<(FileId, Bytes)>,
}

impl World for OneFile {
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
        match &self.image {
            Some((image, bytes)) if *image == id => Ok(bytes.clone()),
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

/// Lays out the pages of `job`; an error names the template's line.
pub fn typeset(job: Job<'_>) -> anyhow::Result<PagedDocument> {
    let mut inputs = Dict::new();
    inputs.insert(job.input.into(), job.data.to_string().into_value());
    let main = Source::new(file_id("/main.typ")?, job.template.to_owned());
    let image = match job.image {
        Some((path, bytes)) => Some((file_id(&path)?, Bytes::new(bytes))),
        None => None,
    };
    let world = OneFile {
        library: LazyHash::new(Library::builder().with_inputs(inputs).build()),
        main: main.clone(),
        image,
    };
    match typst::compile::<PagedDocument>(&world).output {
        Ok(document) => Ok(document),
        Err(errors) => {
            let messages: Vec<_> = errors
                .iter()
                .map(|e| {
                    let line = world
                        .range(e.span)
                        .and_then(|r| main.lines().byte_to_line(r.start));
                    match line {
                        Some(line) => format!("{}:{}: {}", job.name, line + 1, e.message),
                        None => format!("{}: {}", job.name, e.message),
                    }
                })
                .collect();
            bail!("{} does not typeset: {}", job.what, messages.join("; "));
        }
    }
}

/// The document as PDF/UA-1: tagged, with a title and a language, every figure described.
pub fn pdf(document: &PagedDocument, what: &str) -> anyhow::Result<Vec<u8>> {
    let options = typst_pdf::PdfOptions {
        standards: typst_pdf::PdfStandards::new(&[typst_pdf::PdfStandard::Ua_1])
            .map_err(|err| anyhow::anyhow!("{err:?}"))?,
        ..typst_pdf::PdfOptions::default()
    };
    typst_pdf::pdf(document, &options).map_err(|errors| {
        let messages: Vec<_> = errors
            .iter()
            .map(|e| {
                let hints: Vec<_> = e.hints.iter().map(|h| h.v.to_string()).collect();
                if hints.is_empty() {
                    e.message.to_string()
                } else {
                    format!("{} ({})", e.message, hints.join("; "))
                }
            })
            .collect();
        anyhow::anyhow!("{what} does not export: {}", messages.join("; "))
    })
}

/// What tests read of laid-out pages.
#[cfg(test)]
pub mod probe {
    use typst::layout::{Abs, Frame, FrameItem, Point, Size};

    use super::PagedDocument;

    /// Text that runs past the paper's edge less `edge`, horizontally, or past its foot: each
    /// as "page N: the text".
    pub fn text_past_the_edges(document: &PagedDocument, edge: Abs) -> Vec<String> {
        fn walk(
            frame: &Frame,
            at: Point,
            size: Size,
            edge: Abs,
            page: usize,
            out: &mut Vec<String>,
        ) {
            for (pos, item) in frame.items() {
                let pos = at + *pos;
                match item {
                    FrameItem::Group(group) => {
                        let shift = Point::new(group.transform.tx, group.transform.ty);
                        walk(&group.frame, pos + shift, size, edge, page, out);
                    }
                    FrameItem::Text(text) => {
                        let right = pos.x + text.width();
                        if pos.x < edge || right > size.x - edge || pos.y > size.y {
                            out.push(format!("page {page}: {}", text.text));
                        }
                    }
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        for (n, page) in document.pages().iter().enumerate() {
            walk(
                &page.frame,
                Point::zero(),
                page.frame.size(),
                edge,
                n + 1,
                &mut out,
            );
        }
        out
    }

    /// Every line of text of `document`, by page.
    pub fn pages_text(document: &PagedDocument) -> Vec<String> {
        fn walk(frame: &Frame, out: &mut String) {
            for (_, item) in frame.items() {
                match item {
                    FrameItem::Group(group) => walk(&group.frame, out),
                    FrameItem::Text(text) => {
                        out.push_str(&text.text);
                        out.push(' ');
                    }
                    _ => {}
                }
            }
        }
        let text = |page: &typst_layout::Page| {
            let mut out = String::new();
            walk(&page.frame, &mut out);
            out.split_whitespace().collect::<Vec<_>>().join(" ")
        };
        document.pages().iter().map(text).collect()
    }
}
