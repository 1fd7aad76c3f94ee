//! API calls and their outcomes as one line of text each, addresses in hex (`register
//! 0x00012000-0x00012fff type #3 user 0x1a2b`), for step logs and reports: a trace's JSON
//! keeps decimal numbers, a person reading a step should not have to convert them.

use pgmsim::HandlerKind;

use super::{addr, page_id_text, type_name};
use crate::call::{ApiCall, HandlerView, Operand, Outcome};

fn kind_text(kind: HandlerKind) -> &'static str {
    super::kind_name(kind)
}

/// One call as text: the API method's name, then each operand as its role reads —
/// addresses in hex, nodes as `node #i`, types as `type #i` (creation and registration
/// indices, as in the trace), flags by name when set.
pub fn call_line(call: &ApiCall) -> String {
    let mut line = call.name().to_string();
    call.visit(&mut |operand| line.push_str(&operand_text(operand)));
    line
}

fn operand_text(operand: Operand<'_, u64>) -> String {
    match operand {
        Operand::Kind(kind) => format!(" {}", kind_text(*kind)),
        Operand::Flag(label, set) => {
            if *set {
                format!(" {label}")
            } else {
                String::new()
            }
        }
        Operand::Described(set) => {
            if *set {
                " described \"custom\"".to_string()
            } else {
                String::new()
            }
        }
        Operand::Node(h) => format!(" node #{h}"),
        Operand::Type(t) => format!(" type #{t}"),
        Operand::User(u) => format!(" user {u:#x}"),
        Operand::Range(first, last) => format!(" {}-{}", addr(*first), addr(*last)),
        Operand::Handler(a) => format!(" handler {}", addr(*a)),
        Operand::Page(p) => format!(" page {}", addr(*p)),
        Operand::Addr(a) => format!(" {}", addr(*a)),
        Operand::Words(n) => format!(" bitmap {n} word(s)"),
        Operand::BitOffset(n) => format!(" offset {n}"),
        Operand::Fill(v) => {
            if *v != 0 {
                format!(" fill {v:#x}")
            } else {
                String::new()
            }
        }
        Operand::Region(r) => format!(" MMIO2 #{r}"),
        Operand::ByteOffset(o) => format!(" offset {o:#x}"),
        Operand::Host(h) => format!(" host {}", addr(h.0)),
        Operand::Accounting(with) => format!(" {} accounting", if *with { "with" } else { "without" }),
    }
}

fn handler_text(h: &HandlerView) -> String {
    format!(
        "handler {}-{} {} type #{} user {:#x} {:?} (pages {}, aliased {}, temp-off {})",
        addr(h.key),
        addr(h.key_last),
        kind_text(h.kind),
        h.ty.map_or_else(|| "?".to_string(), |t| t.to_string()),
        h.user,
        h.description,
        h.page_count,
        h.aliased_pages,
        h.temp_off_pages
    )
}

/// What a call answered, as text: the status or error name, a query's answer, the bitmap
/// words of a bitmap reset (hex).
pub fn outcome_line(outcome: &Outcome) -> String {
    let named = |r: &Result<pgmsim::Status, pgmsim::Error>| match r {
        Ok(s) => s.name().to_string(),
        Err(e) => format!("error {}", e.name()),
    };
    match outcome {
        Outcome::Status(r) => named(r),
        Outcome::Created(r) | Outcome::TypeRegistered(r) => named(&r.map(|()| pgmsim::Status::Success)),
        Outcome::Bitmap(r, words) => format!("{}, bitmap {}", named(r), words_text(words)),
        Outcome::Registered(b) => format!("registered: {b}"),
        Outcome::IsAll(Ok(b)) => format!("is_all: {b}"),
        Outcome::IsAll(Err(e)) => format!("error {}", e.name()),
        Outcome::Lookup(None) => "no handler".to_string(),
        Outcome::Lookup(Some(h)) => handler_text(h),
        Outcome::Info(Ok(n)) => match &n.registered {
            Some(h) => format!("node, registered: {}", handler_text(h)),
            None => format!(
                "node {} type #{} user {:#x} {:?}, not registered",
                kind_text(n.kind),
                n.ty.map_or_else(|| "?".to_string(), |t| t.to_string()),
                n.user,
                n.description
            ),
        },
        Outcome::Info(Err(e)) | Outcome::TypeConfig(Err(e)) => format!("error {}", e.name()),
        Outcome::TypeConfig(Ok(c)) => format!(
            "type {}{}{} {:?}",
            kind_text(c.kind),
            if c.not_in_hm { " not-in-HM" } else { "" },
            if c.keep_lock { " keep-lock" } else { "" },
            c.description
        ),
        Outcome::Page(None) => "no page".to_string(),
        Outcome::Page(Some(p)) => format!(
            "page state {} type {} backing {} id {}",
            p.handler_state.glyph(),
            type_name(p.page_type),
            addr(p.host_phys),
            page_id_text(p.page_id)
        ),
    }
}

/// Bitmap words in hex, `[0x0000000000000005, 0x0]`.
pub fn words_text(words: &[u64]) -> String {
    let w: Vec<String> = words.iter().map(|w| format!("{w:#x}")).collect();
    format!("[{}]", w.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_print_addresses_in_hex() {
        let c = ApiCall::Register {
            first: 0x12000,
            last: 0x12fff,
            ty: 3,
            user: 26,
            described: false,
        };
        assert_eq!(call_line(&c), "register 0x00012000-0x00012fff type #3 user 0x1a");
        let c = ApiCall::PageAliasMmio2 {
            addr: 0x10_0000,
            page: 0x10_1000,
            region: 1,
            offset: 0x3000,
        };
        assert_eq!(
            call_line(&c),
            "page_alias_mmio2 handler 0x00100000 page 0x00101000 MMIO2 #1 offset 0x3000"
        );
        assert_eq!(
            outcome_line(&Outcome::Status(Err(pgmsim::Error::NotFound))),
            "error NotFound"
        );
        assert_eq!(
            outcome_line(&Outcome::Bitmap(Ok(pgmsim::Status::Success), vec![5])),
            "Success, bitmap [0x5]"
        );
    }
}
