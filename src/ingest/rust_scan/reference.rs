//! The original syn-based parser (syn 3 API, as in the project), kept as the
//! oracle for differential tests.
use syn::spanned::Spanned;

use super::{Node, Tree};

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub fn parse_tree(src: &str) -> Result<Tree, String> {
    let mut base = 0;
    let mut content = src;
    if let Some(rest) = content.strip_prefix('\u{feff}') {
        base += 3;
        content = rest;
    }
    if content.starts_with("#!") && !content[2..].trim_start().starts_with('[') {
        let idx = content.find('\n').unwrap_or(content.len());
        base += idx;
        content = &content[idx..];
    }
    let result = match syn::parse_str::<syn::File>(content) {
        Ok(file) => {
            let docs_end = file
                .attrs
                .iter()
                .map(|a| a.span().byte_range().end + base)
                .max();
            let items = file
                .items
                .iter()
                .map(|i| item_node(content, base, i))
                .collect();
            let start = docs_end.unwrap_or(0);
            Ok(Tree {
                start,
                docs: docs_end.map(|e| (0, e)),
                items,
            })
        }
        Err(e) => {
            let at = e.span().start();
            Err(format!(
                "Rust did not parse at line {}, column {}: {}",
                at.line + usize::from(src[..base].contains('\n')),
                at.column + 1,
                e
            ))
        }
    };
    proc_macro2::extra::invalidate_current_thread_spans();
    result
}

fn slice(content: &str, span: proc_macro2::Span) -> String {
    collapse(content.get(span.byte_range()).unwrap_or(""))
}

fn item_node(content: &str, base: usize, item: &syn::Item) -> Node {
    use syn::Item;
    let end = item.span().byte_range().end + base;
    let (label, children) = match item {
        Item::Fn(f) => (format!("fn {}", f.sig.ident), Vec::new()),
        Item::Struct(s) => (format!("struct {}", s.ident), Vec::new()),
        Item::Enum(e) => (format!("enum {}", e.ident), Vec::new()),
        Item::Union(u) => (format!("union {}", u.ident), Vec::new()),
        Item::Trait(t) => (
            format!("trait {}", t.ident),
            t.items
                .iter()
                .map(|i| trait_item_node(content, base, i))
                .collect(),
        ),
        Item::TraitAlias(t) => (format!("trait {}", t.ident), Vec::new()),
        Item::Impl(i) => {
            let ty = slice(content, i.self_ty.span());
            let label = match &i.trait_ {
                Some((path, _)) => format!(
                    "impl {}{} for {ty}",
                    if i.modifiers.polarity.is_some() {
                        "!"
                    } else {
                        ""
                    },
                    slice(content, path.span())
                ),
                None => format!("impl {ty}"),
            };
            (
                label,
                i.items
                    .iter()
                    .map(|it| impl_item_node(content, base, it))
                    .collect(),
            )
        }
        Item::Mod(m) => (
            format!("mod {}", m.ident),
            m.content
                .as_ref()
                .map(|(_, items)| items.iter().map(|i| item_node(content, base, i)).collect())
                .unwrap_or_default(),
        ),
        Item::Macro(m) => {
            let path = slice(content, m.mac.path.span());
            match &m.ident {
                Some(id) => (format!("{path}! {id}"), Vec::new()),
                None => (format!("{path}!"), Vec::new()),
            }
        }
        Item::Const(c) => (format!("const {}", c.ident), Vec::new()),
        Item::Static(s) => (format!("static {}", s.ident), Vec::new()),
        Item::Type(t) => (format!("type {}", t.ident), Vec::new()),
        Item::Use(_) => ("use".to_string(), Vec::new()),
        Item::ExternCrate(e) => (format!("extern crate {}", e.ident), Vec::new()),
        Item::ForeignMod(f) => (
            format!(
                "extern {}",
                f.abi.name.as_ref().map(|n| n.value()).unwrap_or_default()
            )
            .trim_end()
            .to_string(),
            Vec::new(),
        ),
        _ => ("item".to_string(), Vec::new()),
    };
    Node {
        end,
        label,
        children,
    }
}

fn impl_item_node(content: &str, base: usize, item: &syn::ImplItem) -> Node {
    use syn::ImplItem;
    let label = match item {
        ImplItem::Fn(f) => format!("fn {}", f.sig.ident),
        ImplItem::Const(c) => format!("const {}", c.ident),
        ImplItem::Type(t) => format!("type {}", t.ident),
        ImplItem::Macro(m) => format!("{}!", slice(content, m.mac.path.span())),
        _ => "item".to_string(),
    };
    Node {
        end: item.span().byte_range().end + base,
        label,
        children: Vec::new(),
    }
}

fn trait_item_node(content: &str, base: usize, item: &syn::TraitItem) -> Node {
    use syn::TraitItem;
    let label = match item {
        TraitItem::Fn(f) => format!("fn {}", f.sig.ident),
        TraitItem::Const(c) => format!("const {}", c.ident),
        TraitItem::Type(t) => format!("type {}", t.ident),
        TraitItem::Macro(m) => format!("{}!", slice(content, m.mac.path.span())),
        _ => "item".to_string(),
    };
    Node {
        end: item.span().byte_range().end + base,
        label,
        children: Vec::new(),
    }
}
