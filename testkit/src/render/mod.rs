//! Readable, stable text renderings of handler-manager state, for snapshot tests and debugging.
//!
//! Everything here works through [`PhysHandlerApi`], so the production [`crate::Manager`] and
//! the reference model render the same way, plus a `&[PlatformEvent]` slice for side effects
//! (what a [`crate::RecordingPlatform`] collected). The output is deterministic and
//! diff-friendly: no heap addresses, no hash-map iteration, addresses as fixed-width hex.
//!
//! * [`page_map`] / [`page_map_range`]: one character per page for the handler state
//!   ([`crate::HandlerState::glyph`]: `.` none, `d` disabled, `W` write, `A` all), a second row for
//!   page types other than RAM, a third for the not-in-HM flag, 64 pages a line in groups of 8,
//!   each line starting with its guest-physical address; [`LEGEND`] explains the glyphs.
//! * [`handler_table`]: one aligned line per registered handler.
//! * [`events`] / [`event_line`]: the platform calls of an operation, one per line.
//! * [`bitmap`]: a dirty bitmap as `0`/`1` groups plus the list of set bits.
//! * [`StateView`]: a captured state that renders itself and describes what changed since
//!   another capture (runs of pages, handlers added / removed / changed).
//! * [`TransitionTable`]: a scenario log: for each operation its text, its result, its events,
//!   what changed, and the full state afterwards.
//! * [`page_change_lines`] / [`handler_change_lines`] / [`page_text`]: what changed on given
//!   pages and handlers (the step logs and reports of the simulator use them).
//! * [`call_line`] / [`outcome_line`]: an API call and its outcome as one line, addresses in hex.
//!
//! # Example
//!
//! ```
//! use pgmsim::{HandlerKind, HandlerTypeConfig, Manager, ManagerConfig, MemoryLayout};
//! use pgmsim_testkit::render::{self, TransitionTable};
//! use pgmsim_testkit::RecordingPlatform;
//!
//! let layout = MemoryLayout::builder().ram(0, 16).build().unwrap();
//! let mut pgm = Manager::new(layout, ManagerConfig::default(), RecordingPlatform::mapped()).unwrap();
//! let ty = pgm.register_type(HandlerTypeConfig::new(HandlerKind::Write, "fb")).unwrap();
//!
//! let mut table = TransitionTable::start("one write handler", &pgm);
//! let result = pgm.register(0x2000, 0x3fff, ty, 1, None);
//! let events = pgm.platform_mut().take();
//! table.record("register 0x2000..=0x3fff Write", &result, &events, &pgm);
//!
//! let text = table.render();
//! assert!(text.contains("result: Ok(Success)"));
//! assert!(text.contains("update PTEs 0x00002000 -> W"));
//! assert!(text.contains("flush all TLBs"));
//! assert!(text.contains("0x00000000  state  ..WW.... ........"));
//! // In a test: insta::assert_snapshot!("one_write_handler", text);
//! assert_eq!(render::page_map(&pgm).lines().nth(1), Some("  0x00000000  state  ..WW.... ........"));
//! ```

mod calls;

pub use calls::{call_line, outcome_line, words_text};

use std::fmt::{Debug, Write as _};

use pgmsim::addr::{Hpa, PAGE_SHIFT, PAGE_SIZE};
use pgmsim::api::PhysHandlerApi;
use pgmsim::handler::{HandlerId, HandlerInfo, HandlerKind};
use pgmsim::layout::{MemoryLayout, RangeKind};
use pgmsim::page::{NemProtection, PageDescriptor, PageState, PageType, PageView, NIL_PAGE_ID};
use pgmsim::platform::PlatformEvent;

/// Pages per page-map line.
pub const PAGES_PER_LINE: usize = 64;
/// Pages per space-separated group inside a page-map line.
pub const PAGES_PER_GROUP: usize = 8;

/// The legend printed under page maps.
pub const LEGEND: &str = "\
legend: state  . none  d disabled  W write  A all  - no page
        type   (blank) RAM  m MMIO  2 MMIO2  a MMIO2 alias  h special alias (host page)  r ROM  s shadow ROM  ? invalid
        nohm   n not-in-HM";

/// One character for a page type in the `type` row of a page map (RAM is a blank).
pub const fn type_glyph(page_type: PageType) -> char {
    match page_type {
        PageType::Ram => ' ',
        PageType::Mmio => 'm',
        PageType::Mmio2 => '2',
        PageType::Mmio2AliasMmio => 'a',
        PageType::SpecialAliasMmio => 'h',
        PageType::Rom => 'r',
        PageType::RomShadow => 's',
        PageType::Invalid => '?',
    }
}

/// A page type's name in tables and step logs (`RAM`, `MMIO`, `MMIO2`, `MMIO2 alias`, ...).
pub const fn type_name(page_type: PageType) -> &'static str {
    match page_type {
        PageType::Ram => "RAM",
        PageType::Mmio => "MMIO",
        PageType::Mmio2 => "MMIO2",
        PageType::Mmio2AliasMmio => "MMIO2 alias",
        PageType::SpecialAliasMmio => "special alias",
        PageType::Rom => "ROM",
        PageType::RomShadow => "shadow ROM",
        PageType::Invalid => "invalid",
    }
}

/// A guest- or host-physical address, at least eight hex digits (`0x00012000`).
pub fn addr(a: impl Into<u64>) -> String {
    let a: u64 = a.into();
    format!("{a:#010x}")
}

/// A handler node id as `node <slot> gen <generation>` (stable across runs).
pub fn handler_id(id: HandlerId) -> String {
    format!("node {} gen {}", id.slot(), id.0 >> 32)
}

/// NEM protection as `rwx` letters (`---` for none).
pub fn prot(p: NemProtection) -> String {
    let mut s = String::with_capacity(3);
    s.push(if p.can_read() { 'r' } else { '-' });
    s.push(if p.can_write() { 'w' } else { '-' });
    s.push(if p.can_execute() { 'x' } else { '-' });
    s
}

fn kind_name(kind: HandlerKind) -> &'static str {
    match kind {
        HandlerKind::Write => "Write",
        HandlerKind::All => "All",
        HandlerKind::Mmio => "Mmio",
    }
}

/// One platform event as one line of text.
pub fn event_line(event: &PlatformEvent) -> String {
    match *event {
        PlatformEvent::UpdateShadowPtes {
            gc_phys,
            state,
            flush_ptes,
        } => {
            if flush_ptes {
                format!("flush PTEs  {} (page still {})", addr(gc_phys), state.glyph())
            } else {
                format!("update PTEs {} -> {}", addr(gc_phys), state.glyph())
            }
        }
        PlatformEvent::FlushAllTlbs => "flush all TLBs".to_string(),
        PlatformEvent::InvalidatePageMapEntry { gc_phys } => {
            format!("invalidate page-map TLB entry {}", addr(gc_phys))
        }
        PlatformEvent::FlushEmulatorPhysTlbs => "flush emulator physical TLBs".to_string(),
        PlatformEvent::NemHandlerRegistered { kind, gc_phys, len } => format!(
            "NEM handler registered   {} {}-{} ({:#x} bytes)",
            kind_name(kind),
            addr(gc_phys),
            addr(gc_phys.0.wrapping_add(len).wrapping_sub(1)),
            len
        ),
        PlatformEvent::NemHandlerDeregistered { kind, gc_phys, len } => format!(
            "NEM handler deregistered {} {}-{} ({:#x} bytes)",
            kind_name(kind),
            addr(gc_phys),
            addr(gc_phys.0.wrapping_add(len).wrapping_sub(1)),
            len
        ),
        PlatformEvent::NemProtectionChanged { gc_phys, prot: p } => {
            format!("NEM protection {} -> {}", addr(gc_phys), prot(p))
        }
        PlatformEvent::NemBackingChanged {
            gc_phys,
            old_host_phys,
            new_host_phys,
            prot: p,
        } => format!(
            "NEM backing    {} host {} -> {}, prot {}",
            addr(gc_phys),
            addr(old_host_phys),
            addr(new_host_phys),
            prot(p)
        ),
    }
}

/// Platform events, one per line (each ending in a newline); `(none)` when there are none.
pub fn events(events: &[PlatformEvent]) -> String {
    if events.is_empty() {
        return "(none)\n".to_string();
    }
    let mut out = String::new();
    for e in events {
        out.push_str(&event_line(e));
        out.push('\n');
    }
    out
}

/// The first `bits` bits of a dirty bitmap: 64 bits a line in groups of 8 (bit 0 first), each
/// line prefixed by its first bit index, then the list of set bits.
pub fn bitmap(words: &[u64], bits: usize) -> String {
    let bits = bits.min(words.len() * 64);
    let is_set = |i: usize| words[i / 64] >> (i % 64) & 1 == 1;
    let mut out = String::new();
    for start in (0..bits).step_by(64) {
        let _ = write!(out, "  bit {start:4}  ");
        for i in start..(start + 64).min(bits) {
            if i > start && (i - start) % 8 == 0 {
                out.push(' ');
            }
            out.push(if is_set(i) { '1' } else { '0' });
        }
        out.push('\n');
    }
    let set: Vec<String> = (0..bits).filter(|&i| is_set(i)).map(|i| i.to_string()).collect();
    if set.is_empty() {
        out.push_str("  set bits: none\n");
    } else {
        let _ = writeln!(out, "  set bits: {}", set.join(", "));
    }
    out
}

/// One RAM range as captured by [`StateView`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeView {
    /// First guest-physical byte.
    pub first: u64,
    /// What the layout says the range is (`RAM`, `MMIO`, `MMIO2 #n`).
    pub kind: String,
    /// One view per page, in address order.
    pub pages: Vec<PageView>,
}

impl RangeView {
    /// Last guest-physical byte (inclusive).
    pub fn last(&self) -> u64 {
        self.first + ((self.pages.len() as u64) << PAGE_SHIFT) - 1
    }
}

/// One registered handler as captured by [`StateView`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerRow {
    /// The handler's public fields.
    pub info: HandlerInfo,
    /// Whether its type is not-in-HM (`None` if the type could not be read).
    pub not_in_hm: Option<bool>,
}

impl HandlerRow {
    fn kind_text(&self) -> String {
        let mut s = kind_name(self.info.kind).to_string();
        if self.not_in_hm == Some(true) {
            s.push_str("+nohm");
        }
        s
    }

    fn range_text(&self) -> String {
        format!("{}-{}", addr(self.info.key), addr(self.info.key_last))
    }
}

/// A captured, comparable copy of everything a rendering shows: every page of every RAM range,
/// the registered handlers and the number of allocated handler nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateView {
    /// RAM ranges in address order.
    pub ranges: Vec<RangeView>,
    /// Registered handlers in address order.
    pub handlers: Vec<HandlerRow>,
    /// Allocated handler nodes, registered or not.
    pub live_nodes: u32,
    hosts: HostNames,
}

/// Names host pages the way page maps and change lines do: the zero page, `MMIO2 #n page i`
/// when the page backs an MMIO2 region, else the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostNames {
    mmio2: Vec<(u64, u32)>,
    zero_page: u64,
}

impl HostNames {
    /// The names of `layout`'s host pages.
    pub fn of(layout: &MemoryLayout) -> Self {
        HostNames {
            mmio2: layout.mmio2_regions.iter().map(|r| (r.host_base.0, r.pages)).collect(),
            zero_page: layout.zero_page.0,
        }
    }

    /// Describes a host page.
    pub fn text(&self, host: Hpa) -> String {
        let host = host.0;
        if host == self.zero_page {
            return format!("zero page (host {})", addr(host));
        }
        for (i, &(base, pages)) in self.mmio2.iter().enumerate() {
            if host >= base && host < base + ((pages as u64) << PAGE_SHIFT) {
                return format!(
                    "MMIO2 #{} page {} (host {})",
                    i + 1,
                    (host - base) >> PAGE_SHIFT,
                    addr(host)
                );
            }
        }
        format!("host {}", addr(host))
    }
}

fn range_kind_text(kind: &RangeKind) -> String {
    match kind {
        RangeKind::Ram { .. } => "RAM".to_string(),
        RangeKind::Mmio => "MMIO".to_string(),
        RangeKind::Mmio2 { region } => format!("MMIO2 #{}", region.0),
    }
}

impl StateView {
    /// Captures the state of anything implementing [`PhysHandlerApi`].
    pub fn capture<A: PhysHandlerApi + ?Sized>(api: &A) -> Self {
        let layout: &MemoryLayout = api.layout();
        let ranges = layout
            .ram_ranges
            .iter()
            .map(|spec| RangeView {
                first: spec.first,
                kind: range_kind_text(&spec.kind),
                pages: (0..spec.pages as u64)
                    .map(|i| {
                        let a = spec.first + (i << PAGE_SHIFT);
                        // A page the layout has but the API cannot show renders as an
                        // invalid page (`?`), never as a plausible one.
                        let missing = PageDescriptor::new(PageType::Invalid, PageState::Zero, Hpa(0), NIL_PAGE_ID);
                        PageView::from(api.page(a).unwrap_or(missing))
                    })
                    .collect(),
            })
            .collect();
        StateView {
            ranges,
            handlers: handler_rows(api),
            live_nodes: api.live_handlers(),
            hosts: HostNames::of(layout),
        }
    }

    /// Describes a host page (see [`HostNames`]).
    fn host_text(&self, host: Hpa) -> String {
        self.hosts.text(host)
    }

    /// The page map of every RAM range (see [`page_map`]), without the legend.
    pub fn render_pages(&self) -> String {
        let mut out = String::new();
        for r in &self.ranges {
            let _ = writeln!(
                out,
                "{} {}-{} ({} pages)",
                r.kind,
                addr(r.first),
                addr(r.last()),
                r.pages.len()
            );
            render_rows(&mut out, r.first, &r.pages.iter().map(|p| Some(*p)).collect::<Vec<_>>());
        }
        let mut aliases = Vec::new();
        for r in &self.ranges {
            for (i, p) in r.pages.iter().enumerate() {
                let a = r.first + ((i as u64) << PAGE_SHIFT);
                match p.page_type {
                    PageType::Mmio2AliasMmio => {
                        aliases.push(format!("  {} -> {}", addr(a), self.host_text(p.host_phys)))
                    }
                    PageType::SpecialAliasMmio => {
                        aliases.push(format!("  {} -> special, host {}", addr(a), addr(p.host_phys)))
                    }
                    _ => {}
                }
            }
        }
        if !aliases.is_empty() {
            out.push_str("aliases:\n");
            for a in aliases {
                out.push_str(&a);
                out.push('\n');
            }
        }
        out
    }

    /// The handler table (see [`handler_table`]).
    pub fn render_handlers(&self) -> String {
        let mut out = format!(
            "handlers: {} registered, {} node{} allocated\n",
            self.handlers.len(),
            self.live_nodes,
            if self.live_nodes == 1 { "" } else { "s" }
        );
        if self.handlers.is_empty() {
            return out;
        }
        let header = ["range", "kind", "pages", "aliased", "temp-off", "user", "description"];
        let rows: Vec<[String; 7]> = self
            .handlers
            .iter()
            .map(|h| {
                [
                    h.range_text(),
                    h.kind_text(),
                    h.info.page_count.to_string(),
                    h.info.aliased_pages.to_string(),
                    h.info.temp_off_pages.to_string(),
                    format!("{:#x}", h.info.user),
                    h.info.description.to_string(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        // Numbers right-aligned, text left-aligned; the last column is not padded.
        let right = [false, false, true, true, true, false, false];
        let mut line = |cells: [&str; 7]| {
            let mut s = String::from(" ");
            for (i, cell) in cells.iter().enumerate() {
                s.push(' ');
                if i + 1 == cells.len() {
                    s.push_str(cell);
                } else if right[i] {
                    let _ = write!(s, "{cell:>w$}", w = widths[i]);
                } else {
                    let _ = write!(s, "{cell:<w$}", w = widths[i]);
                }
            }
            out.push_str(s.trim_end());
            out.push('\n');
        };
        line(header);
        for row in &rows {
            line([&row[0], &row[1], &row[2], &row[3], &row[4], &row[5], &row[6]]);
        }
        out
    }

    /// Page map, legend and handler table.
    pub fn render(&self) -> String {
        let mut out = self.render_pages();
        out.push_str(&self.render_handlers());
        out
    }

    /// What changed from `before` to `self`, one line each: runs of consecutive pages with the
    /// same change, then handlers added (`+`), removed (`-`) or changed (`~`), then the node
    /// count. Empty when nothing changed.
    pub fn changes_since(&self, before: &StateView) -> Vec<String> {
        let mut out = Vec::new();
        for (r, old) in self.ranges.iter().zip(&before.ranges) {
            let changes = r
                .pages
                .iter()
                .zip(&old.pages)
                .enumerate()
                .map(|(i, (p, q))| PageChange {
                    addr: r.first + ((i as u64) << PAGE_SHIFT),
                    before: *q,
                    after: *p,
                });
            out.extend(page_change_lines(changes, &self.hosts));
        }
        out.extend(handler_change_lines(&before.handlers, &self.handlers));
        if self.live_nodes != before.live_nodes {
            out.push(format!("nodes allocated {} -> {}", before.live_nodes, self.live_nodes));
        }
        out
    }
}

/// The registered handlers of `api` as [`HandlerRow`]s, in address order.
pub fn handler_rows<A: PhysHandlerApi + ?Sized>(api: &A) -> Vec<HandlerRow> {
    api.handlers()
        .into_iter()
        .map(|info| {
            let not_in_hm = api.type_config(info.ty).ok().map(|c| c.not_in_hm);
            HandlerRow { info, not_in_hm }
        })
        .collect()
}

/// One page's descriptor before and after an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageChange {
    /// Guest-physical address of the page.
    pub addr: u64,
    /// The descriptor before.
    pub before: PageView,
    /// The descriptor after.
    pub after: PageView,
}

/// What changed on `changes`' pages (in address order), one line per run of consecutive
/// pages with the same change: `page  0x00002000: state . -> W` or `pages 0x00002000-0x00003fff
/// (2): ...`, with every changed field before -> after (state, not-in-HM, type, allocation
/// state, backing named by `hosts`, page id). Unchanged pages are skipped.
pub fn page_change_lines(changes: impl IntoIterator<Item = PageChange>, hosts: &HostNames) -> Vec<String> {
    let mut out = Vec::new();
    let mut run: Option<(u64, u64, String)> = None;
    for c in changes {
        let d = page_diff(&c.before, &c.after, |h| hosts.text(h));
        match (&mut run, d) {
            (Some((_, last, text)), Some(d)) if *text == d && *last + PAGE_SIZE == c.addr => *last = c.addr,
            (_, d) => {
                if let Some(done) = run.take() {
                    out.push(run_text(done));
                }
                run = d.map(|d| (c.addr, c.addr, d));
            }
        }
    }
    if let Some(done) = run.take() {
        out.push(run_text(done));
    }
    out
}

/// Handlers removed (`-`), added (`+`) or changed (`~`: counts, user argument, description)
/// from `before` to `after`; a handler is the same when its range and kind are.
pub fn handler_change_lines(before: &[HandlerRow], after: &[HandlerRow]) -> Vec<String> {
    let mut out = Vec::new();
    let same = |a: &HandlerRow, b: &HandlerRow| {
        a.info.key == b.info.key && a.info.key_last == b.info.key_last && a.info.kind == b.info.kind
    };
    for old in before {
        if !after.iter().any(|h| same(h, old)) {
            out.push(format!(
                "- handler {} {} {:?}",
                old.range_text(),
                old.kind_text(),
                old.info.description
            ));
        }
    }
    for h in after {
        match before.iter().find(|old| same(h, old)) {
            None => out.push(format!(
                "+ handler {} {} {:?}",
                h.range_text(),
                h.kind_text(),
                h.info.description
            )),
            Some(old) => {
                let parts = handler_diff(&old.info, &h.info);
                if !parts.is_empty() {
                    out.push(format!("~ handler {}: {}", h.range_text(), parts.join(", ")));
                }
            }
        }
    }
    out
}

fn handler_diff(o: &HandlerInfo, n: &HandlerInfo) -> Vec<String> {
    let mut parts = Vec::new();
    if n.aliased_pages != o.aliased_pages {
        parts.push(format!("aliased {} -> {}", o.aliased_pages, n.aliased_pages));
    }
    if n.temp_off_pages != o.temp_off_pages {
        parts.push(format!("temp-off {} -> {}", o.temp_off_pages, n.temp_off_pages));
    }
    if n.user != o.user {
        parts.push(format!("user {:#x} -> {:#x}", o.user, n.user));
    }
    if n.description != o.description {
        parts.push(format!("description {:?} -> {:?}", o.description, n.description));
    }
    if n.page_count != o.page_count {
        parts.push(format!("pages {} -> {}", o.page_count, n.page_count));
    }
    parts
}

/// Every field of one page: `W  RAM  allocated  host 0x00123000  id 0x123` (`nohm` when set).
pub fn page_text(p: &PageView, hosts: &HostNames) -> String {
    format!(
        "state {}{}  type {}  {}  backing {}  id {}",
        p.handler_state.glyph(),
        if p.not_in_hm { " (not-in-HM)" } else { "" },
        type_name(p.page_type),
        page_state_name(p.state),
        hosts.text(p.host_phys),
        page_id_text(p.page_id)
    )
}

fn run_text((first, last, text): (u64, u64, String)) -> String {
    if first == last {
        format!("page  {}: {}", addr(first), text)
    } else {
        let n = ((last - first) >> PAGE_SHIFT) + 1;
        format!("pages {}-{} ({n}): {}", addr(first), addr(last | (PAGE_SIZE - 1)), text)
    }
}

fn page_state_name(s: PageState) -> &'static str {
    match s {
        PageState::Zero => "zero",
        PageState::Allocated => "allocated",
        PageState::WriteMonitored => "write-monitored",
        PageState::Shared => "shared",
        PageState::Ballooned => "ballooned",
    }
}

fn page_id_text(id: u32) -> String {
    if id == NIL_PAGE_ID {
        "nil".to_string()
    } else {
        format!("{id:#x}")
    }
}

fn page_type_text(t: PageType) -> String {
    match type_glyph(t) {
        ' ' => "RAM".to_string(),
        g => g.to_string(),
    }
}

fn page_diff(old: &PageView, new: &PageView, host_text: impl Fn(Hpa) -> String) -> Option<String> {
    let mut parts = Vec::new();
    if old.handler_state != new.handler_state {
        parts.push(format!(
            "state {} -> {}",
            old.handler_state.glyph(),
            new.handler_state.glyph()
        ));
    }
    if old.not_in_hm != new.not_in_hm {
        parts.push(format!("nohm {} -> {}", old.not_in_hm, new.not_in_hm));
    }
    if old.page_type != new.page_type {
        parts.push(format!(
            "type {} -> {}",
            page_type_text(old.page_type),
            page_type_text(new.page_type)
        ));
    }
    if old.state != new.state {
        parts.push(format!(
            "{} -> {}",
            page_state_name(old.state),
            page_state_name(new.state)
        ));
    }
    if old.host_phys != new.host_phys {
        parts.push(format!(
            "backing {} -> {}",
            host_text(old.host_phys),
            host_text(new.host_phys)
        ));
    }
    if old.page_id != new.page_id {
        parts.push(format!(
            "id {} -> {}",
            page_id_text(old.page_id),
            page_id_text(new.page_id)
        ));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Renders the rows of a page map for `pages` starting at `first` (`None`: no page there).
fn render_rows(out: &mut String, first: u64, pages: &[Option<PageView>]) {
    for (line_no, chunk) in pages.chunks(PAGES_PER_LINE).enumerate() {
        let line_addr = first + (((line_no * PAGES_PER_LINE) as u64) << PAGE_SHIFT);
        let row = |glyph: &dyn Fn(&Option<PageView>) -> char| {
            let mut s = String::new();
            for (i, p) in chunk.iter().enumerate() {
                if i > 0 && i % PAGES_PER_GROUP == 0 {
                    s.push(' ');
                }
                s.push(glyph(p));
            }
            s.trim_end().to_string()
        };
        let state = row(&|p| p.map_or('-', |p| p.handler_state.glyph()));
        let _ = writeln!(out, "  {}  state  {}", addr(line_addr), state);
        let pad = " ".repeat(addr(line_addr).len());
        let types = row(&|p| p.map_or(' ', |p| type_glyph(p.page_type)));
        if !types.is_empty() {
            let _ = writeln!(out, "  {pad}  type   {types}");
        }
        let nohm = row(&|p| {
            if p.is_some_and(|p| p.not_in_hm) {
                'n'
            } else {
                ' '
            }
        });
        if !nohm.is_empty() {
            let _ = writeln!(out, "  {pad}  nohm   {nohm}");
        }
    }
}

/// The page map of every RAM range of `api`'s layout, then the MMIO2 / host alias of every
/// aliased page, then [`LEGEND`].
///
/// Each range gets a header line (`RAM 0x00000000-0x0000ffff (16 pages)`) and, for every 64
/// pages, a `state` row (always), a `type` row (when some page is not RAM) and a `nohm` row
/// (when some page has the not-in-HM flag), in groups of 8 pages.
pub fn page_map<A: PhysHandlerApi + ?Sized>(api: &A) -> String {
    let mut out = StateView::capture(api).render_pages();
    out.push_str(LEGEND);
    out.push('\n');
    out
}

/// The page map of `pages` pages starting at the page containing `first`, whatever RAM ranges
/// they are in; a page outside every RAM range shows `-`. No header and no legend.
pub fn page_map_range<A: PhysHandlerApi + ?Sized>(api: &A, first: u64, pages: u32) -> String {
    let base = first & !(PAGE_SIZE - 1);
    let views: Vec<Option<PageView>> = (0..pages as u64)
        .map(|i| {
            base.checked_add(i << PAGE_SHIFT)
                .and_then(|a| api.page(a))
                .map(PageView::from)
        })
        .collect();
    let mut out = String::new();
    render_rows(&mut out, base, &views);
    out
}

/// The registered handlers of `api` as an aligned table: range, kind (`+nohm` for not-in-HM
/// types), pages, aliased and temp-off counts, user argument, description; preceded by the
/// numbers of registered handlers and allocated nodes.
pub fn handler_table<A: PhysHandlerApi + ?Sized>(api: &A) -> String {
    StateView::capture(api).render_handlers()
}

/// One recorded operation of a [`TransitionTable`].
#[derive(Debug, Clone)]
pub struct Transition {
    /// What was done, as the test describes it.
    pub op: String,
    /// The result, as `Debug` text (`Ok(Success)`, `Err(NotFound)`, ...).
    pub result: String,
    /// The platform events the operation produced.
    pub events: Vec<PlatformEvent>,
    /// What changed (see [`StateView::changes_since`]).
    pub changes: Vec<String>,
    /// Extra lines the test attached (query answers, bitmaps, check results).
    pub notes: Vec<String>,
    /// The state after the operation.
    pub after: StateView,
}

/// A scenario log: the initial state, then for each operation its text, result, platform
/// events, changes and the full state afterwards. Render it with [`TransitionTable::render`]
/// (or `Display`) and snapshot the text.
#[derive(Debug, Clone)]
pub struct TransitionTable {
    title: String,
    initial: StateView,
    steps: Vec<Transition>,
    preamble: Vec<String>,
}

impl TransitionTable {
    /// Starts a table titled `title` from `api`'s current state.
    pub fn start<A: PhysHandlerApi + ?Sized>(title: impl Into<String>, api: &A) -> Self {
        TransitionTable {
            title: title.into(),
            initial: StateView::capture(api),
            steps: Vec::new(),
            preamble: Vec::new(),
        }
    }

    /// Records one operation: its text, its result (any `Debug` value, usually an
    /// [`crate::OpResult`]), the events it produced, and `api`'s state afterwards.
    pub fn record<A: PhysHandlerApi + ?Sized, R: Debug>(
        &mut self,
        op: impl Into<String>,
        result: &R,
        events: &[PlatformEvent],
        api: &A,
    ) -> &mut Transition {
        let after = StateView::capture(api);
        let before = self.steps.last().map_or(&self.initial, |t| &t.after);
        let changes = after.changes_since(before);
        self.steps.push(Transition {
            op: op.into(),
            result: format!("{result:?}"),
            events: events.to_vec(),
            changes,
            notes: Vec::new(),
            after,
        });
        let last = self.steps.len() - 1;
        &mut self.steps[last]
    }

    /// Attaches a line of text to the last operation (or, before any, to the initial state).
    pub fn note(&mut self, line: impl Into<String>) {
        match self.steps.last_mut() {
            Some(t) => t.notes.push(line.into()),
            None => self.preamble.push(line.into()),
        }
    }

    /// The recorded operations.
    pub fn steps(&self) -> &[Transition] {
        &self.steps
    }

    /// The whole log as text.
    pub fn render(&self) -> String {
        let mut out = format!("# {}\n{}\n\n== initial state ==\n", self.title, LEGEND);
        for n in &self.preamble {
            let _ = writeln!(out, "note: {n}");
        }
        out.push_str(&self.initial.render());
        for (i, t) in self.steps.iter().enumerate() {
            let _ = writeln!(out, "\n== {}. {} ==", i + 1, t.op);
            let _ = writeln!(out, "result: {}", t.result);
            if t.events.is_empty() {
                out.push_str("events: none\n");
            } else {
                out.push_str("events:\n");
                for e in &t.events {
                    let _ = writeln!(out, "  {}", event_line(e));
                }
            }
            if t.changes.is_empty() {
                out.push_str("changes: none\n");
            } else {
                out.push_str("changes:\n");
                for c in &t.changes {
                    let _ = writeln!(out, "  {c}");
                }
            }
            for n in &t.notes {
                for line in n.lines() {
                    let _ = writeln!(out, "note: {line}");
                }
            }
            out.push_str("state:\n");
            out.push_str(&t.after.render());
        }
        out
    }
}

impl std::fmt::Display for TransitionTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_marks_offsets() {
        let text = bitmap(&[0b1010_0000_0001], 16);
        assert_eq!(text, "  bit    0  10000000 01010000\n  set bits: 0, 9, 11\n");
    }

    #[test]
    fn run_text_names_single_pages_and_runs() {
        assert_eq!(run_text((0x2000, 0x2000, "x".into())), "page  0x00002000: x");
        assert_eq!(
            run_text((0x2000, 0x3000, "x".into())),
            "pages 0x00002000-0x00003fff (2): x"
        );
    }
}
