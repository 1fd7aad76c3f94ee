//! What one step touched: the guest pages (and virtual pages) whose state the incremental
//! checks re-examine. An API call's footprint is derived in exactly one place,
//! [`Touched::call`], from the call itself and the model's state before it, so a new call
//! cannot forget to record what it changes.

use pgmsim::{HandlerKind, PhysHandlerApi, PAGE_SHIFT};
use pgmsim_testkit::{ApiCall, Footprint, Names, Operand};

/// Spans longer than this many pages are recorded by their edges only.
const LARGE_SPAN_PAGES: u64 = 4096;

/// Guest pages (and handlers) one step touched, for incremental checks.
#[derive(Debug, Clone, Default)]
pub struct Touched {
    /// Guest page bases (sorted and deduplicated before the checks read them).
    pub pages: Vec<u64>,
    /// Virtual pages whose translations changed: (address space, page index).
    pub vpages: Vec<(u8, u32)>,
    /// The step may have changed anything: check everything.
    pub all: bool,
    /// A mutating API call ran (handler lists and platform events must be compared).
    pub manager: bool,
    /// A span was too large to list page by page; only its edges were listed. If the call
    /// succeeded the step is checked in full; if it failed (and so changed nothing) the
    /// edges suffice.
    pub large_span: bool,
}

impl Touched {
    /// Marks every page of `[first, last]` plus one page either side (edge recalculation
    /// reaches the neighbours' shared pages); very large spans degrade to their edges.
    pub fn span(&mut self, first: u64, last: u64) {
        let lo = (first >> PAGE_SHIFT).saturating_sub(1);
        let hi = (last.max(first) >> PAGE_SHIFT).saturating_add(1);
        if hi - lo > LARGE_SPAN_PAGES {
            self.large_span = true;
            for p in [lo, lo + 1, lo + 2, hi - 2, hi - 1, hi] {
                self.pages.push(p << PAGE_SHIFT);
            }
            return;
        }
        for p in lo..=hi {
            self.pages.push(p << PAGE_SHIFT);
        }
    }

    /// Marks the page containing `addr`.
    pub fn page(&mut self, addr: u64) {
        self.pages.push(addr & !((1 << PAGE_SHIFT) - 1));
    }

    /// Marks the range of the handler containing `addr` per `model`, or the page of `addr`.
    fn handler_at(&mut self, model: &dyn PhysHandlerApi, addr: u64) {
        match model.lookup(addr) {
            Some(h) => self.span(h.key, h.key_last),
            None => self.span(addr, addr),
        }
    }

    /// Records the footprint of `call`, from its [`Footprint`] and operands and the model's
    /// state *before* it (`names` resolves the model's nodes): the pages any outcome of the
    /// call can change. A registration's range, the range of the handler a start address,
    /// a node or a page lies in, and the page itself.
    pub fn call(&mut self, call: &ApiCall, model: &dyn PhysHandlerApi, names: &Names) {
        let spec = call.spec();
        self.manager |= spec.mutates;
        match spec.footprint {
            Footprint::Nothing => {}
            Footprint::Operands => call.visit(&mut |operand| self.operand(operand, model, names)),
            Footprint::MmioHandlers => {
                for h in model.handlers().iter().filter(|h| h.kind == HandlerKind::Mmio) {
                    self.span(h.key, h.key_last);
                }
            }
        }
    }

    fn operand(&mut self, operand: Operand<'_, u64>, model: &dyn PhysHandlerApi, names: &Names) {
        match operand {
            Operand::Range(first, last) => self.span(*first, *last),
            Operand::Handler(addr) => self.handler_at(model, *addr),
            Operand::Page(page) => {
                self.span(*page, *page);
                self.handler_at(model, *page);
            }
            Operand::Node(h) => {
                if let Some(h) = model.handler_info(names.node(*h)).ok().and_then(|n| n.registered) {
                    self.span(h.key, h.key_last);
                }
            }
            _ => {}
        }
    }

    /// Escalates to a full check when a large span's call succeeded.
    pub fn settle(&mut self, call_failed: bool) {
        if self.large_span && !call_failed {
            self.all = true;
        }
    }

    /// Forgets everything (before a step).
    pub fn clear(&mut self) {
        self.pages.clear();
        self.vpages.clear();
        self.all = false;
        self.manager = false;
        self.large_span = false;
    }
}
